#!/usr/bin/env bash
# End-to-end bench through the SOCKS5 port of the default simulated network (`braid sim --serve`),
# with curl, each figure beside the same transfer done directly (no proxy):
#   - 64 MiB download throughput, median of 3
#   - time to first byte of a 1 KiB fetch on a warm circuit, median of 20
#   - time to first byte of a 1 KiB fetch on a fresh circuit (new SOCKS credentials), median of 20
#   - peak RSS of the simulator process (8 relays + proxy + HTTP server) and of one idle
#     `braid relay` process.
# Each braid figure is taken once per strand count K in $KS (default "1 3"), in each of $ROUNDS
# rounds (default 1; the Ks alternate, so slow spells of a shared machine hit them alike):
# K = 1 carries each stream on one circuit, K > 1 splits it over K circuits to one exit. The
# last lines compare every other K with the first, by the median over the rounds.
# RELAY_RATE / EXIT_RATE (bytes/s, unset: unlimited) cap every non-exit relay / every exit, as
# home relays are capped by their uplink; with capped middles a stream's K strands add up.
# BRAID / HTTP (paths to a `braid` binary and the bench's `http_server` example) bench those
# builds instead of building this tree: how two commits are compared on the same machine.
# Usage: [KS="1 3"] [ROUNDS=N] [RELAY_RATE=N] [EXIT_RATE=N] [BRAID=... HTTP=...] simulations/bench.sh
#        (builds in release first unless BRAID is set; needs curl)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${BRAID:-}" ]; then
  cargo build --release --quiet --bin braid
  cargo build --release --quiet -p braid-simulations --example http_server
  BRAID=target/release/braid
  HTTP=target/release/examples/http_server
fi
HTTP=${HTTP:?set HTTP beside BRAID}
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
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
speed() { curl -s -o /dev/null -w '%{speed_download}\n' "$@"; }
ttfb() { curl -s -o /dev/null -w '%{time_starttransfer}\n' "$@"; }

big="http://$H/bytes/$((64 << 20))"
small="http://$H/bytes/1024"
d_tp=$(for i in 1 2 3; do speed "$big"; done | median)
d_ttfb=$(for i in $(seq 20); do ttfb "$small"; done | median)

KS=${KS:-"1 3"}
rows=""
for _ in $(seq "${ROUNDS:-1}"); do
for K in $KS; do
  cat >"$tmp/k$K.toml" <<TOML
name = "bench-k$K"
relays = 8
exits = 3
hops = 3
strands = $K
${RELAY_RATE:+relay_rate = $RELAY_RATE}
${EXIT_RATE:+exit_rate = $EXIT_RATE}
TOML
  "$BRAID" sim "$tmp/k$K.toml" --serve >"$tmp/sim$K.out" 2>"$tmp/sim$K.err" & SIM=$!; pids+=($SIM)
  wait_line "$tmp/sim$K.out" "ready socks5="
  S=$(sed -n 's/^ready socks5=\([^ ]*\).*/\1/p' "$tmp/sim$K.out")
  p_tp=$(for i in 1 2 3; do speed --socks5-hostname "$S" -U warm:x "$big"; done | median)
  ttfb --socks5-hostname "$S" -U warm:x "$small" >/dev/null
  w_ttfb=$(for i in $(seq 20); do ttfb --socks5-hostname "$S" -U warm:x "$small"; done | median)
  f_ttfb=$(for i in $(seq 20); do ttfb --socks5-hostname "$S" -U "fresh$i:x" "$small"; done | median)
  sim_rss=$(awk '/VmHWM/ {print $2}' /proc/$SIM/status)
  kill "$SIM"; wait "$SIM" 2>/dev/null || true
  rows="$rows$K $p_tp $w_ttfb $f_ttfb $sim_rss
"
done
done

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

echo "relay caps: non-exit ${RELAY_RATE:-unlimited}, exit ${EXIT_RATE:-unlimited} (bytes/s)"
printf "%s" "$rows" | awk -v dt="$d_tp" -v dd="$d_ttfb" -v rrss="$relay_rss" '
NR == 1 {
  printf "direct (no proxy): 64 MiB %.1f MB/s (median of 3), 1 KiB TTFB %.3f ms (median of 20)\n", dt/1e6, dd*1e3
  printf "%-3s %24s %26s %26s %10s\n", "K", "64 MiB MB/s (ratio)", "warm TTFB ms (added)", "fresh TTFB ms (added)", "sim RSS"
}
{
  printf "%-3s %14.1f (%7.3f) %15.3f (+%7.3f) %15.3f (+%7.3f) %7.1f MiB\n", $1, $2/1e6, $2/dt, $3*1e3, ($3-dd)*1e3, $4*1e3, ($4-dd)*1e3, $5/1024
}
{ n[$1]++; tp[$1, n[$1]] = $2; w[$1, n[$1]] = $3; f[$1, n[$1]] = $4; if (first == "") first = $1 }
function med(a, k,   i, j, t, v, c) {
  c = n[k]; for (i = 1; i <= c; i++) v[i] = a[k, i]
  for (i = 2; i <= c; i++) for (j = i; j > 1 && v[j - 1] > v[j]; j--) { t = v[j]; v[j] = v[j - 1]; v[j - 1] = t }
  return v[int((c + 1) / 2)]
}
END {
  # Every other K against the first (K = 1 with the default KS): what the strands cost.
  for (k in n) if (k != first)
    printf "K = %s vs K = %s (medians of %d rounds): throughput x%.3f, warm TTFB %+.3f ms, fresh TTFB %+.3f ms\n", k, first, n[k], med(tp, k) / med(tp, first), (med(w, k) - med(w, first)) * 1e3, (med(f, k) - med(f, first)) * 1e3
  printf "idle relay process peak RSS: %.1f MiB\n", rrss/1024
}'
