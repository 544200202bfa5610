#!/usr/bin/env bash
# The README's test command. Installs what the checks need (Debian's mingw
# for the Windows target and prometheus for the test of deploy/otel/; rustup
# components; the Samba AD lab, which needs root), then runs, in order: rustfmt, clippy (-D warnings, Linux and
# x86_64-pc-windows-gnu), the unit and hermetic tests, the lab tier, the Python client and Ansible tests
# (deploy/clients/test.sh: a venv, pytest, ansible-core), and then a second stage on the Wine
# lab host: provd.exe cross-built and run as a Windows service, and installed, upgraded and
# uninstalled from its MSI; last, a check that no lab stage
# left ACEs of deleted accounts on the domain root. Safe to re-run; installs are skipped when
# present, and the Samba lab is reset to its snapshot first.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
command -v x86_64-w64-mingw32-gcc >/dev/null || missing+=(gcc-mingw-w64-x86-64)
# deploy/otel/'s alert rules and dashboard are tested in a real Prometheus
# (tests/otel/prometheus.rs, lab tier), which brings promtool.
command -v promtool >/dev/null || missing+=(prometheus)
# Kerberos binds (ldap3's gssapi through libgssapi): MIT's headers and krb5-config, and
# libclang for the bindings (bindgen); libclang-common for its stddef.h.
command -v krb5-config >/dev/null || missing+=(libkrb5-dev)
dpkg-query -W -f='${Status}' libclang-common-14-dev 2>/dev/null | grep -q 'ok installed' ||
  missing+=(libclang1-14 libclang-common-14-dev)
if ((${#missing[@]})); then
  echo "==> installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  # The package enables and starts its own server on :9090; the test runs
  # its own on free ports, so that one only holds a port: stop it.
  if [[ " ${missing[*]} " == *" prometheus "* ]] && command -v systemctl >/dev/null; then
    as_root systemctl disable --now prometheus.service >/dev/null 2>&1 || true
  fi
fi
rustup component add rustfmt clippy >/dev/null
rustup target list --installed | grep -qx x86_64-pc-windows-gnu || rustup target add x86_64-pc-windows-gnu

# reset, not up: every run starts from the provisioned snapshot, whatever an
# earlier run or demo left in the directory (a full provision the first time).
echo "==> Samba AD lab (deploy/lab/lab.sh reset)"
as_root deploy/lab/lab.sh reset

echo "==> cargo fmt --check"
cargo fmt --all --check
echo "==> cargo clippy"
cargo clippy --locked --workspace --all-targets -- -D warnings
echo "==> cargo clippy (x86_64-pc-windows-gnu)"
cargo clippy --locked --workspace --target x86_64-pc-windows-gnu -- -D warnings
echo "==> cargo test (unit + hermetic tier: no root, no lab)"
cargo test --locked --workspace
echo "==> lab tier: the Samba AD tests and the Prometheus test of deploy/otel/ (ignored above)"
# MIT krb5 reads its configuration from the environment only: the lab's names its KDCs.
KRB5_CONFIG=$(deploy/lab/lab.sh env | sed -n "s/^export LAB_KRB5_CONFIG='\(.*\)'$/\1/p")
export KRB5_CONFIG
cargo test --locked -p provd --test integration --test otel -- --ignored --test-threads 1 --skip lab_hygiene
echo "==> thin clients: Python package and Ansible collection against running daemons"
deploy/clients/test.sh

# Stage 2: the Windows path for real, on the Wine lab host.
echo "==> Wine Windows host (deploy/lab/wine.sh up)"
as_root deploy/lab/wine.sh up
# A demo left running (demo.sh ends that way) keeps its provd service in the
# Wine host, and provd.exe started by the Wine tests then never serves.
if [ -d .demo ]; then
  echo "==> stopping the demo left running (deploy/demo.sh down; the labs keep running)"
  as_root deploy/demo.sh down
fi
echo "==> cross-build provd.exe"
CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc \
  cargo build --locked --target x86_64-pc-windows-gnu --bin provd
# provd's MSI around that exe, twice: this build (0.1.<commits>) and a newer one
# (0.1.<commits+1>), which the Wine test upgrades to. wixl comes with wine.sh up.
echo "==> provd's MSI (deploy/windows/build-msi.sh)"
win_out="$PWD/target/x86_64-pc-windows-gnu/debug"
msi_build=$(git rev-list --count HEAD 2>/dev/null || echo 1)
msi_base=$(sed -n 's/^version = "\([0-9]*\.[0-9]*\)\.[0-9]*"$/\1/p' Cargo.toml | head -1)
PROVD_WINE_MSI=$(deploy/windows/build-msi.sh "$msi_base.$msi_build" "$win_out/provd.exe" "$win_out/provd-$msi_base.$msi_build.msi")
PROVD_WINE_MSI_NEWER=$(deploy/windows/build-msi.sh "$msi_base.$((msi_build + 1))" "$win_out/provd.exe" "$win_out/provd-$msi_base.$((msi_build + 1)).msi")
export PROVD_WINE_MSI PROVD_WINE_MSI_NEWER
echo "==> Wine tests (provd.exe as a Windows service and from its MSI; the agent module's failure modes)"
PROVD_WINE_EXE="$win_out/provd.exe" \
  cargo test --locked --test wine -- --ignored
echo "==> the agent-config contract against the Windows runner (a Windows test binary under Wine)"
(
  eval "$(deploy/lab/wine.sh env)"
  wine msiexec /i "$WINE_LAB_MSI" /quiet # the module the scripts import
  trap 'wine msiexec /x "$WINE_LAB_MSI" /quiet || true' EXIT
  CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc \
    CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER=wine \
    cargo test --locked --target x86_64-pc-windows-gnu --test agent_contract_wine -- --ignored
)
echo "==> the lab stages left no orphaned ACE on the domain root"
cargo test --locked -p provd --test integration -- --ignored --exact lab_hygiene::no_orphaned_ace_on_the_domain_root
