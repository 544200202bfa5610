#!/usr/bin/env bash
# Builds provd (release) at a git revision, for `cargo bench --bench fleet`'s
# before/after columns: FLEET_BASELINE_PROVD=$(benches/fleet-baseline.sh REV).
# The build lives under /var/tmp/provd-baseline (a detached worktree and its
# own target directory), is reused when present, and prints the binary's path.
set -euo pipefail
rev=${1:?usage: fleet-baseline.sh <git revision>}
repo=$(cd "$(dirname "$0")/.." && pwd)
commit=$(git -C "$repo" rev-parse --short=12 "$rev^{commit}")
root=/var/tmp/provd-baseline
tree=$root/$commit
bin=$root/target/release/provd-$commit
if [[ ! -x $bin ]]; then
  mkdir -p "$root"
  [[ -d $tree ]] || git -C "$repo" worktree add --detach -q "$tree" "$commit"
  CARGO_TARGET_DIR=$root/target cargo build --release --locked --quiet \
    --manifest-path "$tree/Cargo.toml" -p provd --bin provd >&2
  cp "$root/target/release/provd" "$bin"
fi
echo "$bin"
