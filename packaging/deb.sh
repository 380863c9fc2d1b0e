#!/usr/bin/env bash
# Builds the braid .deb with cargo-deb (`cargo install cargo-deb` first):
#   packaging/deb.sh            # release build, then target/debian/braid_<version>_<arch>.deb
# The shell completions and man pages are generated from the built binary into
# <target dir>/release/packaging/, where [package.metadata.deb] in Cargo.toml picks them up.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --locked --bin braid
target_dir="$(cargo metadata --format-version 1 --no-deps --locked |
  sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
out="$target_dir/release/packaging"
rm -rf "$out"
mkdir -p "$out/man"
bin="$target_dir/release/braid"
"$bin" completions bash >"$out/braid.bash"
"$bin" completions zsh >"$out/_braid"
"$bin" completions fish >"$out/braid.fish"
"$bin" man --out-dir "$out/man"
gzip -9n "$out"/man/*.1
cargo deb --no-build --locked "$@"
