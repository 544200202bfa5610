#!/usr/bin/env bash
# The README's test command. Installs what the checks need (Debian's mingw
# for the Windows target; rustup components; the Samba AD lab, which needs
# root), then runs, in order: rustfmt, clippy (-D warnings), `cargo check`
# for x86_64-pc-windows-gnu, and every test. Safe to re-run; installs are
# skipped when present.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
command -v x86_64-w64-mingw32-gcc >/dev/null || missing+=(gcc-mingw-w64-x86-64)
if ((${#missing[@]})); then
  echo "==> installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
rustup component add rustfmt clippy >/dev/null
rustup target list --installed | grep -qx x86_64-pc-windows-gnu || rustup target add x86_64-pc-windows-gnu

echo "==> Samba AD lab (deploy/lab/lab.sh up)"
as_root deploy/lab/lab.sh up

echo "==> cargo fmt --check"
cargo fmt --all --check
echo "==> cargo clippy"
cargo clippy --locked --all-targets -- -D warnings
echo "==> cargo check (x86_64-pc-windows-gnu)"
cargo check --locked --target x86_64-pc-windows-gnu
echo "==> cargo test"
cargo test --locked
