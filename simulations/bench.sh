#!/usr/bin/env bash
# End-to-end bench through the SOCKS5 port of the default simulated network (`braid sim --serve`),
# with curl, each figure beside the same transfer done directly (no proxy):
#   - 64 MiB download throughput, median of 3
#   - time to first byte of a 1 KiB fetch on a warm circuit, median of 20
#   - time to first byte of a 1 KiB fetch on a fresh circuit (new SOCKS credentials), median of 20
#   - peak RSS of the simulator process (8 relays + proxy + HTTP server) and of one idle
#     `braid relay` process.
# Usage: simulations/bench.sh   (builds in release first; needs curl)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin braid
cargo build --release --quiet -p braid-simulations --example http_server
BRAID=target/release/braid
HTTP=target/release/examples/http_server
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT

wait_line() { # file pattern
  for _ in $(seq 300); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "timed out waiting for $2 in $1" >&2; return 1
}

"$HTTP" 127.0.0.1:0 >"$tmp/http.out" & pids+=($!)
wait_line "$tmp/http.out" "ready http="
H=$(sed -n 's/ready http=//p' "$tmp/http.out")
"$BRAID" sim --serve >"$tmp/sim.out" 2>"$tmp/sim.err" & SIM=$!; pids+=($SIM)
wait_line "$tmp/sim.out" "ready socks5="
S=$(sed -n 's/ready socks5=//p' "$tmp/sim.out")

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
speed() { curl -s -o /dev/null -w '%{speed_download}\n' "$@"; }
ttfb() { curl -s -o /dev/null -w '%{time_starttransfer}\n' "$@"; }

big="http://$H/bytes/$((64 << 20))"
small="http://$H/bytes/1024"
d_tp=$(for i in 1 2 3; do speed "$big"; done | median)
p_tp=$(for i in 1 2 3; do speed --socks5-hostname "$S" -U warm:x "$big"; done | median)
d_ttfb=$(for i in $(seq 20); do ttfb "$small"; done | median)
ttfb --socks5-hostname "$S" -U warm:x "$small" >/dev/null
w_ttfb=$(for i in $(seq 20); do ttfb --socks5-hostname "$S" -U warm:x "$small"; done | median)
f_ttfb=$(for i in $(seq 20); do ttfb --socks5-hostname "$S" -U "fresh$i:x" "$small"; done | median)
sim_rss=$(awk '/VmHWM/ {print $2}' /proc/$SIM/status)

# One idle relay as its own process.
mkdir -p "$tmp/relay"
cat >"$tmp/relay.toml" <<TOML
nickname = "benchidle"
data_dir = "$tmp/relay"
listen = ["/ip4/127.0.0.1/udp/0/quic-v1", "/ip4/127.0.0.1/tcp/0"]
TOML
"$BRAID" relay --config "$tmp/relay.toml" >"$tmp/relay.out" 2>/dev/null & R=$!; pids+=($R)
wait_line "$tmp/relay.out" "ready descriptor="
sleep 3
relay_rss=$(awk '/VmHWM/ {print $2}' /proc/$R/status)

awk -v dt="$d_tp" -v pt="$p_tp" -v dd="$d_ttfb" -v wt="$w_ttfb" -v ft="$f_ttfb" \
    -v srss="$sim_rss" -v rrss="$relay_rss" 'BEGIN {
  printf "%-34s %12s %12s %10s\n", "measure", "direct", "braid", "ratio"
  printf "%-34s %9.1f MB/s %7.1f MB/s %9.3f\n", "64 MiB throughput (median of 3)", dt/1e6, pt/1e6, pt/dt
  printf "%-34s %9.3f ms %9.3f ms %9.2f  (+%.3f ms)\n", "1 KiB TTFB, warm circuit (med 20)", dd*1e3, wt*1e3, wt/dd, (wt-dd)*1e3
  printf "%-34s %9.3f ms %9.3f ms %9.2f  (+%.3f ms)\n", "1 KiB TTFB, fresh circuit (med 20)", dd*1e3, ft*1e3, ft/dd, (ft-dd)*1e3
  printf "peak RSS: simulator process (8 relays + proxy + http) %.1f MiB; idle relay process %.1f MiB\n", srss/1024, rrss/1024
}'
