#!/usr/bin/env bash
# wine.sh - provd's Wine lab: a Windows-like host on Linux (Debian 12, Wine 8.0) on which
# provd's Windows code path runs for real (SCM, msiexec, registry), plus a LAB STAND-IN agent
# package (NOT Microsoft's agent) that registers the agent's two services, and a LAB STAND-IN
# powershell.exe (NOT PowerShell) that runs only provd's agent-module scripts
# (src/backends/agent_config/scripts/*.ps1) and does in the lab what the module's cmdlets do.
#
# Usage: wine.sh COMMAND
#   up      install packages if missing, build the shim, the stand-in agent, the placeholder
#           DLLs, the MSIs, the stand-in powershell.exe and certimport.exe (a LAB STAND-IN for
#           certlm/Import-PfxCertificate: windows/certimport.c), create the prefix once, start
#           the persistent wineserver, put the stand-in over Wine's stub powershell.exe.
#           Idempotent.
#   down    stop this prefix's wineserver (and with it every wine process of the prefix)
#   status  packages, prefix, wineserver, services.exe, MSIs (exit 0 only if the lab is up)
#   env     print `export` lines for the tests:  eval "$(deploy/lab/wine.sh env)"
#   smoke   install / reinstall / upgrade / uninstall the stand-in MSIs and a failing one,
#           checking services, heartbeats, the Uninstall entry and exit codes, and the
#           stand-in powershell.exe running provd's scripts (module-info, use-gmsa,
#           add-domain, list-domains) and refusing others; leaves nothing installed.
#           Prints PASS/FAIL per check, exits non-zero on any FAIL.
#   clean   down, then delete WINE_LAB_DIR
#   tenant-emulator URL CA_FILE [HEARTBEAT_SECONDS]
#           where the stand-in powershell.exe registers the agent (Connect-AADCloudSyncAzureAD):
#           writes HKLM\SOFTWARE\ProvdLab\TenantEmulator {Url, CaPem, HeartbeatIntervalSeconds}.
#           Run it once the emulator is up (the demo and the Wine test do).
#   tenant-emulator none
#           removes that key (the stand-in's Connect then fails, saying so)
#   lab-directory URL CA_FILE BIND PASSWORD_FILE
#           where and as whom the stand-in agent counts the users of its domains (heartbeat
#           userCount): writes HKLM\SOFTWARE\ProvdLab\Directory {Url, CaPem, BindDn, Password}.
#           URL ldaps:// (or ldap://, StartTLS); CA_FILE the DC's CA, '-' for none; BIND a DN
#           or UPN. LAB shortcut: the real agent reads AD as its gMSA, which Samba 4.17 cannot
#           give a password; the lab's reader is provlabreader (lab.sh seed-users). The password
#           is the first line of PASSWORD_FILE; it reaches the registry in a mode-600 .reg file
#           that `reg import` reads and that is deleted at once: never on a command line.
#   lab-directory none
#           removes that key (the agent sends no userCount)
#   windows-server
#           LAB STAND-IN facts a Windows Server would have and Wine does not register, so
#           provd's host prerequisite checks read what a real server shows: .NET Framework 4.8
#           (NDP\v4\Full Release 528040), Windows Server 2019 Datacenter, installation type
#           Server (HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion ProductName,
#           EditionID, InstallationType; Wine's CurrentBuildNumber stays), and a stand-in
#           Credential Manager service (VaultSvc, manual start) — Wine has none. Only facts
#           provd cannot fix: TLS 1.2 and the execution policy are left for RemediateHost.
#   windows-server none
#           removes them (Wine's own values come back: no .NET, no edition, no VaultSvc)
#   package-entries install
#           the rest of the real package's Add/Remove Programs entries (how-to-automatic-
#           upgrade lists three), as LAB STAND-INs, beside the agent MSI a test installed: the
#           "Agent Updater" MSI (labupdater.wxs, one registry value), and the Burn bundle's
#           entry in the registry's 32-bit view (BundleCachePath, BundleProviderKey,
#           BundleUpgradeCode, QuietUninstallString "…\Package Cache\{id}\
#           AADConnectProvisioningAgentSetup.exe" /uninstall /quiet) whose cached exe is
#           labsetup.c: on /uninstall /quiet it runs msiexec /x for the chained ProductCodes
#           (the agent's, both versions, and the updater's) and deletes its own key. The main
#           install path (the demo, Install) stays the one agent MSI.
#   package-entries remove
#           removes them again (the updater MSI, the bundle key, the cached exe)
#
# Environment:
#   WINE_LAB_DIR   lab state (default /var/tmp/provd-wine; refused inside the repository):
#                  prefix/, tmp/ (wine's TMPDIR), packages/ (the MSIs), logs/, build/ (shim,
#                  exes, custom-action and placeholder DLLs), target-agent/ (cargo target dir
#                  of the agent and of the powershell.exe stand-in)
#   WINE_TIMEOUT   seconds any single wine command may take (default 120)
#
# Needs root for up/down/smoke/clean (packages; wine refuses a prefix owned by another user,
# and the prefix is root's). env and status work for anyone. See README.md ("Wine lab").
#
# Three things are required on Wine 8 and are not obvious (measured, see the README):
#   1. bcryptprimitives.dll shim: Rust >= 1.78 exes import bcryptprimitives!ProcessPrng,
#      which Wine 8 lacks; without it every Rust exe dies with c0000135 (wine exits 53).
#   2. a persistent wineserver (`wineserver -p`): Wine runs services as "system" processes
#      that do not keep the server alive, so services die 1-2 s after the last ordinary
#      wine process exits.
#   3. order on a new prefix: `wineboot -i`, then `wineserver -w`, then `wineserver -p`.
#      The persistent server first left two services.exe (OpenService -> 1060, MSI -> 1627).
set -euo pipefail

# ---------------------------------------------------------------------------------------------
# Fixed lab facts

readonly PACKAGES=(gcc-mingw-w64-x86-64 wine wine64 msitools wixl)
readonly RUST_TARGET=x86_64-pc-windows-gnu
readonly VERSION_GOOD=1.1.977.0      # WINE_LAB_MSI
readonly VERSION_NEWER=1.1.1000.0    # WINE_LAB_MSI_NEWER (major upgrade of the above)
readonly VERSION_BAD=1.1.999.0       # WINE_LAB_MSI_BAD (fails on purpose, rolls back)
# The stand-in bundle's entry (package-entries): its id (a Burn bundle's key is its id) and
# the name its cached exe has in the Package Cache, as Microsoft's package is named.
readonly BUNDLE_ID='{5C0B7D3E-2A41-4E8F-9B6C-1D2E3F405C01}'
readonly BUNDLE_EXE_NAME=AADConnectProvisioningAgentSetup.exe
readonly BUNDLE_DISPLAY_NAME='Microsoft Azure AD Connect Provisioning Agent Package (provd lab stand-in)'
readonly SERVICES=(AADConnectProvisioningAgent AzureADConnectAgentUpdater)
readonly DISPLAY_NAME='Microsoft Azure AD Connect Provisioning Agent (provd lab stand-in)'
readonly AGENT_DIR_NAME='Microsoft Azure AD Connect Provisioning Agent'
readonly UNINSTALL_KEY='HKLM\Software\Microsoft\Windows\CurrentVersion\Uninstall'
# Bump when the way MSIs are built changes: every MSI is then rebuilt by the next `up`.
readonly MSI_FORMAT=2
# The placeholder Newtonsoft.Json.dll the good MSIs ship (the module is built against 12), and
# the 13.x one a test swaps in to see Add-AADCloudSyncADDomain fail (azure-docs#104689).
readonly NEWTONSOFT_12=12.0.3.23909
readonly NEWTONSOFT_13=13.0.1.25517
# The powershell.exe stand-in's lab-only settings (deploy/lab/windows/powershell/src/main.rs).
readonly PS_LAB_KEY='HKLM\SOFTWARE\ProvdLab\PowerShell'
readonly EMULATOR_KEY='HKLM\SOFTWARE\ProvdLab\TenantEmulator'
# Where the stand-in agent reads AD for its user count (deploy/lab/windows/agent/src/ldap.rs).
readonly DIRECTORY_KEY='HKLM\SOFTWARE\ProvdLab\Directory'
# The Samba lab's NetBIOS domain (deploy/lab/lab.sh NETBIOS): the stand-in's
# Add-AADCloudSyncGMSA puts it before the gMSA's name (a real host is joined to its domain).
readonly LAB_NETBIOS=LAB

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
readonly SCRIPT_DIR
readonly WIN_SRC=$SCRIPT_DIR/windows
# provd's agent-module scripts, which the powershell.exe stand-in is built to run.
readonly PS_SCRIPTS=$SCRIPT_DIR/../../src/backends/agent_config/scripts
WINE_LAB_DIR=${WINE_LAB_DIR:-/var/tmp/provd-wine}
WINE_TIMEOUT=${WINE_TIMEOUT:-120}
PREFIX=$WINE_LAB_DIR/prefix
LAB_TMP=$WINE_LAB_DIR/tmp
PKGS=$WINE_LAB_DIR/packages
LOGS=$WINE_LAB_DIR/logs
BUILD=$WINE_LAB_DIR/build
AGENT_TARGET=$WINE_LAB_DIR/target-agent
READY=$WINE_LAB_DIR/prefix.ready     # written only after a prefix was fully initialised
SERVER_PID_FILE=$WINE_LAB_DIR/wineserver.pid

# The one environment every wine call runs in. TMPDIR: Debian's wineserver puts its socket
# directory under $TMPDIR, so `wineserver -k` with another TMPDIR does not find the running
# server (and an orphaned server has to be killed by PID). Keep it constant for the prefix.
# WINEDLLOVERRIDES: no wine-mono/wine-gecko install attempts (no internet, not needed), and
# no winemenubuilder (it would create ~/.config/menus and ~/.local/share/applications).
export WINEPREFIX=$PREFIX WINEARCH=win64 TMPDIR=$LAB_TMP
export WINEDEBUG=${WINEDEBUG:--all}
export WINEDLLOVERRIDES='mscoree,mshtml=;winemenubuilder.exe=d'
export DEBIAN_FRONTEND=noninteractive

# ---------------------------------------------------------------------------------------------
# Small helpers

say() { printf '[wine-lab %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() {
  say "ERROR: $*"
  exit 1
}

# Elapsed seconds since `t=$(mark)`, with one decimal; pure bash.
mark() { echo "${EPOCHREALTIME/./}"; }
since() {
  local us=$(($(mark) - $1))
  printf '%d.%d' $((us / 1000000)) $((us % 1000000 / 100000))
}

need_root() {
  [ "$(id -u)" = 0 ] || die "wine.sh $1 needs root (packages, and the prefix belongs to root): run it with sudo"
}

check_lab_dir() {
  case $WINE_LAB_DIR in
    /*) ;;
    *) die "WINE_LAB_DIR must be an absolute path (got '$WINE_LAB_DIR')" ;;
  esac
  # ~1 GB of prefix and build output: never inside the repository.
  local repo lab
  repo=$(cd "$SCRIPT_DIR/../.." && pwd -P)
  lab=$(realpath -m "$WINE_LAB_DIR")
  case $lab/ in
    "$repo"/*) die "WINE_LAB_DIR ($lab) is inside the repository ($repo); use a path outside it" ;;
  esac
  [ "$lab" != / ] || die "WINE_LAB_DIR must not be /"
}

# Serialise the commands that change state. fd 9 is closed for every wine process (see w and
# start_server): the persistent wineserver would otherwise hold the lock for ever.
take_lock() {
  mkdir -p "$WINE_LAB_DIR"
  exec 9>>"$WINE_LAB_DIR/.lock"
  flock -w 600 9 || die "another wine.sh holds $WINE_LAB_DIR/.lock"
}

# Every wine call is time-boxed and does not inherit the lock.
w() { timeout "$WINE_TIMEOUT" wine "$@" 9>&-; }

# A Linux path as Wine sees it (drive Z: is /).
winpath() { printf 'Z:%s' "${1//\//\\}"; }

sha256() { sha256sum "$1" | cut -d' ' -f1; }

# A GUID that depends only on its inputs, so the same package version always gets the same
# ProductCode (MSI wants upper-case hex).
stable_guid() {
  local h
  h=$(printf '%s' "$*" | sha256sum | cut -c1-32 | tr a-f A-F)
  printf '%s-%s-%s-%s-%s' "${h:0:8}" "${h:8:4}" "${h:12:4}" "${h:16:4}" "${h:20:12}"
}
product_code() { stable_guid "provd-lab-agent ProductCode $1 $2"; } # KIND VERSION

msi_version() { # KIND: good | newer | bad | updater
  case $1 in
    good) echo "$VERSION_GOOD" ;;
    newer) echo "$VERSION_NEWER" ;;
    bad) echo "$VERSION_BAD" ;;
    updater) echo "$VERSION_GOOD" ;;
  esac
}

msi_path() { # KIND
  case $1 in
    good) echo "$PKGS/ProvdLabAgent-$VERSION_GOOD.msi" ;;
    newer) echo "$PKGS/ProvdLabAgent-$VERSION_NEWER.msi" ;;
    bad) echo "$PKGS/ProvdLabAgentBad-$VERSION_BAD.msi" ;;
    updater) echo "$PKGS/ProvdLabAgentUpdater-$VERSION_GOOD.msi" ;;
  esac
}

# ---------------------------------------------------------------------------------------------
# Processes of this prefix. Several prefixes (several labs, other tools) may run Wine on the
# same machine, so nothing here goes by process name alone.

alive() { # PID: running and not a zombie (PID 1 of some containers never reaps)
  local st
  st=$(ps -o stat= -p "$1" 2>/dev/null) && [[ $st != Z* ]]
}

# The wineserver serving this prefix: it chdirs into <socket base>/server-<dev>-<inode> of the
# prefix directory, with <socket base> under our TMPDIR on Debian.
server_pid() {
  [ -d "$PREFIX" ] || return 1
  local dev ino want pid cwd
  read -r dev ino < <(stat -c '%d %i' "$PREFIX")
  want=$(printf 'server-%x-%x' "$dev" "$ino")
  for pid in $(pgrep -x 'wineserver(64)?' || true); do
    if ! cwd=$(readlink "/proc/$pid/cwd" 2>/dev/null); then
      # Not root: another user's cwd is unreadable. Trust the pid file `up` wrote.
      if [ "$(cat "$SERVER_PID_FILE" 2>/dev/null)" = "$pid" ] && alive "$pid"; then
        echo "$pid"
        return 0
      fi
      continue
    fi
    if [ "${cwd##*/}" = "$want" ] && [[ $cwd == "$LAB_TMP"/* ]] && alive "$pid"; then
      echo "$pid"
      return 0
    fi
  done
  return 1
}

# Is the server persistent (started with -p, without a timeout after it)?
server_persistent() {
  local args
  args=$(tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline") || return 1
  [[ $args =~ (^|\ )-p\ *$ ]]
}

# Every Wine process of this prefix, the server excluded: a process whose binary is Wine's
# (a Windows program's /proc/PID/exe is /usr/lib/wine/wine64) and whose environment names our
# prefix. Both, because a test runner started after `eval "$(wine.sh env)"` has WINEPREFIX too.
prefix_pids() {
  local d pid exe env
  for d in /proc/[0-9]*; do
    pid=${d#/proc/}
    exe=$(readlink "$d/exe" 2>/dev/null) || continue
    case ${exe##*/} in
      wine | wine64 | wine-preloader | wine64-preloader) ;;
      *) continue ;;
    esac
    # (Whole values compared, no `| grep -q`: with pipefail an early grep exit can fail the
    # pipeline through SIGPIPE.)
    env=$(tr '\0' '\n' 2>/dev/null <"$d/environ") || continue
    if [[ $'\n'$env$'\n' == *$'\n'"WINEPREFIX=$PREFIX"$'\n'* ]] && alive "$pid"; then
      echo "$pid"
    fi
  done
}

services_exe_count() {
  local pid n=0 cmd
  for pid in $(prefix_pids); do
    cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || continue
    [[ ${cmd,,} == *'system32\services.exe'* ]] && n=$((n + 1))
  done
  echo "$n"
}

start_server() {
  local pid rc
  if pid=$(server_pid); then
    if server_persistent "$pid"; then
      echo "$pid" >"$SERVER_PID_FILE"
      return 0
    fi
    # A transient server (a wine command is still running, or just ended): `wineserver -p`
    # would fail with rc 2 and change nothing. Wait until it exits by itself.
    say "waiting for the transient wineserver $pid to exit"
    timeout 60 wineserver -w 9>&- || die "the transient wineserver $pid did not exit"
  fi
  rc=0
  # Detached from our stdio: the server outlives this script, and holding a pipe we were
  # started with (`wine.sh up | tee log`) would keep the reader waiting for ever, and kill
  # the server with SIGPIPE once the reader is gone.
  wineserver -p </dev/null >>"$LOGS/wineserver.log" 2>&1 9>&- || rc=$?
  ((rc == 0)) || die "wineserver -p failed (rc $rc)"
  for _ in $(seq 1 50); do
    pid=$(server_pid) && break
    sleep 0.1
  done
  if [ -z "${pid:-}" ] || ! server_persistent "$pid"; then die "no persistent wineserver after wineserver -p"; fi
  echo "$pid" >"$SERVER_PID_FILE"
}

stop_server() {
  local pid p
  pid=$(server_pid) || pid=
  if [ -n "$pid" ]; then
    # -k makes the server kill every process of the prefix, then exit.
    wineserver -k 9>&- 2>/dev/null || true
    for _ in $(seq 1 100); do
      alive "$pid" || break
      sleep 0.1
    done
    if alive "$pid"; then
      say "wineserver $pid ignored -k: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  # Orphans (e.g. after a server was killed): by PID, only this prefix's.
  for p in $(prefix_pids); do
    say "killing leftover wine process $p ($(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | cut -c1-80))"
    kill -KILL "$p" 2>/dev/null || true
  done
  rm -f "$SERVER_PID_FILE"
}

# ---------------------------------------------------------------------------------------------
# Packages and toolchain

install_packages() {
  local p missing=() t rc=0
  for p in "${PACKAGES[@]}"; do
    [[ $(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null) == ii* ]] || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  command -v apt-get >/dev/null || die "missing packages (${missing[*]}) and no apt-get: this lab wants Debian 12"
  mkdir -p "$LOGS"
  t=$(mark)
  say "installing ${missing[*]} (log: $LOGS/apt.log)"
  # --no-install-recommends: wine64 recommends wine32 (i386 multiarch) and libwine ~25
  # X/GL/audio/font packages; everything here runs headless.
  {
    apt-get update -q &&
      apt-get install -y -q --no-install-recommends "${missing[@]}"
  } >"$LOGS/apt.log" 2>&1 || rc=$?
  ((rc == 0)) || {
    tail -n 20 "$LOGS/apt.log" >&2
    die "apt-get failed (rc $rc)"
  }
  say "packages installed in $(since "$t")s"
}

ensure_rust_target() {
  command -v cargo >/dev/null || die "cargo not found: install Rust (rustup) first"
  if [ ! -d "$(rustc --print sysroot)/lib/rustlib/$RUST_TARGET" ]; then
    command -v rustup >/dev/null || die "Rust target $RUST_TARGET missing and no rustup to add it"
    say "rustup target add $RUST_TARGET"
    rustup target add "$RUST_TARGET" >&2
  fi
}

# build_dll NAME [LIBS...]: windows/NAME.c -> build/NAME.dll with mingw, when the source changed.
build_dll() {
  local name=$1 src out
  shift
  src=$WIN_SRC/$name.c out=$BUILD/$name.dll
  [ "$out" -nt "$src" ] && return 0
  TMPDIR=$BUILD/tmp x86_64-w64-mingw32-gcc -O2 -Wall -shared -s -o "$out.tmp" "$src" "$@"
  mv "$out.tmp" "$out"
  say "built $name.dll"
}

# build_exe NAME [LIBS...]: windows/NAME.c -> build/NAME.exe (a console exe, wmain), when the
# source changed.
build_exe() {
  local name=$1 src out
  shift
  src=$WIN_SRC/$name.c out=$BUILD/$name.exe
  [ "$out" -nt "$src" ] && return 0
  TMPDIR=$BUILD/tmp x86_64-w64-mingw32-gcc -O2 -Wall -municode -s -o "$out.tmp" "$src" "$@"
  mv "$out.tmp" "$out"
  say "built $name.exe"
}

# build_placeholder FILE NAME VERSION DESCRIPTION PRODUCT: build/FILE, a DLL with no code and a
# version resource (placeholder.c + placeholder.rc.in); rebuilt only when an input changed.
build_placeholder() {
  local out=$BUILD/$1 name=$2 version=$3 desc=$4 product=$5 rc want
  want="c=$(sha256 "$WIN_SRC/placeholder.c") rc=$(sha256 "$WIN_SRC/placeholder.rc.in") $name $version $desc $product"
  if [ -f "$out" ] && [ "$(cat "$out.inputs" 2>/dev/null)" = "$want" ]; then return 0; fi
  rc=$BUILD/tmp/$1.rc
  sed -e "s/@VERSION@/$version/g" -e "s/@COMMAS@/${version//./,}/g" -e "s/@NAME@/$name/g" \
    -e "s/@DESCRIPTION@/$desc/g" -e "s/@PRODUCT@/$product/g" "$WIN_SRC/placeholder.rc.in" >"$rc"
  x86_64-w64-mingw32-windres -O coff -o "$rc.o" "$rc"
  TMPDIR=$BUILD/tmp x86_64-w64-mingw32-gcc -O2 -Wall -shared -s -o "$out.tmp" "$WIN_SRC/placeholder.c" "$rc.o"
  mv "$out.tmp" "$out"
  echo "$want" >"$out.inputs"
  say "built $1 (FileVersion $version)"
}

build_placeholders() {
  local v
  for v in "$VERSION_GOOD" "$VERSION_NEWER"; do
    build_placeholder "Microsoft.CloudSync.PowerShell-$v.dll" Microsoft.CloudSync.PowerShell.dll "$v" \
      'LAB STAND-IN placeholder for the agent PowerShell module' 'provd lab stand-in agent'
  done
  build_placeholder Newtonsoft.Json-12.dll Newtonsoft.Json.dll "$NEWTONSOFT_12" \
    'LAB STAND-IN placeholder for Json.NET 12' 'Json.NET (provd lab placeholder)'
  build_placeholder Newtonsoft.Json-13.dll Newtonsoft.Json.dll "$NEWTONSOFT_13" \
    'LAB STAND-IN placeholder for Json.NET 13' 'Json.NET (provd lab placeholder)'
}

# The powershell.exe stand-in: its own crate like the agent (own lock file, not in provd's
# workspace), sharing the agent's target dir (the same dependencies, built once). Its build.rs
# reads provd's scripts from this checkout and plans them with crates/provd-psscript.
build_powershell() {
  local t exe=$AGENT_TARGET/$RUST_TARGET/release/powershell.exe
  t=$(mark)
  (cd "$WIN_SRC/powershell" && TMPDIR=$BUILD/tmp cargo build --quiet --release --locked --target "$RUST_TARGET" \
    --target-dir "$AGENT_TARGET") >&2
  cmp -s "$exe" "$BUILD/powershell.exe" || install -m 0644 "$exe" "$BUILD/powershell.exe"
  say "powershell.exe stand-in ready ($(since "$t")s)"
}

build_agent() {
  local t exe=$AGENT_TARGET/$RUST_TARGET/release/provd-lab-agent.exe
  t=$(mark)
  # cargo reads .cargo/config.toml (linker, target) from the current directory, not from
  # --manifest-path: build from inside the crate. --locked: the crate's Cargo.lock is the
  # truth; the lab never resolves dependencies anew.
  (cd "$WIN_SRC/agent" && TMPDIR=$BUILD/tmp cargo build --quiet --release --locked --target "$RUST_TARGET" \
    --target-dir "$AGENT_TARGET") >&2
  cmp -s "$exe" "$BUILD/provd-lab-agent.exe" || install -m 0644 "$exe" "$BUILD/provd-lab-agent.exe"
  say "agent exe ready ($(since "$t")s)"
}

# build_msi KIND WXS: rebuilt only when an input changed, so an idle `up` keeps the files
# (and their sha256) stable for tests that pinned them.
build_msi() {
  local kind=$1 wxs=$2 version out stamp want
  version=$(msi_version "$kind")
  out=$(msi_path "$kind")
  stamp=$BUILD/$(basename "$out").inputs
  want="format=$MSI_FORMAT wixl=$(wixl --version) version=$version wxs=$(sha256 "$wxs")"
  want+=" exe=$(sha256 "$BUILD/provd-lab-agent.exe") dll=$(sha256 "$BUILD/failaction.dll")"
  if [ "$kind" = good ] || [ "$kind" = newer ]; then
    want+=" module=$(sha256 "$BUILD/Microsoft.CloudSync.PowerShell-$version.dll") json=$(sha256 "$BUILD/Newtonsoft.Json-12.dll")"
    # The stand-in exe.config the MSI installs beside the exe (wixl takes bare names only).
    cmp -s "$WIN_SRC/AADConnectProvisioningAgent.exe.config" "$BUILD/AADConnectProvisioningAgent.exe.config" ||
      install -m 0644 "$WIN_SRC/AADConnectProvisioningAgent.exe.config" "$BUILD/AADConnectProvisioningAgent.exe.config"
    want+=" config=$(sha256 "$BUILD/AADConnectProvisioningAgent.exe.config")"
  fi
  if [ -f "$out" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then return 0; fi
  # wixl resolves File/@Source and Binary/@SourceFile against the current directory only
  # (an absolute path fails), hence the cd and the bare file names. bad.wxs uses neither dll.
  (cd "$BUILD" && wixl -a x64 -D "Version=$version" -D "ProductCode=$(product_code "$kind" "$version")" \
    -D AgentExe=provd-lab-agent.exe -D FailDll=failaction.dll \
    -D "ModuleDll=Microsoft.CloudSync.PowerShell-$version.dll" -D NewtonsoftDll=Newtonsoft.Json-12.dll \
    -D AgentConfig=AADConnectProvisioningAgent.exe.config \
    -o "$out.tmp" "$wxs")
  mv "$out.tmp" "$out"
  echo "$want" >"$stamp"
  say "built $(basename "$out")"
}

build_all() {
  local t
  t=$(mark)
  # The builds get their own TMPDIR: each mingw link leaves zero-byte ccXXXXXX files there
  # (72 for one small crate), and this one is emptied when the builds are done.
  mkdir -p "$BUILD/tmp" "$PKGS" "$LAB_TMP"
  ensure_rust_target
  build_dll bcryptprimitives -ladvapi32
  build_dll failaction
  build_placeholders
  build_agent
  build_powershell
  build_msi good "$WIN_SRC/labagent.wxs"
  build_msi newer "$WIN_SRC/labagent.wxs"
  build_msi bad "$WIN_SRC/bad.wxs"
  build_msi updater "$WIN_SRC/labupdater.wxs"
  build_exe labsetup -ladvapi32
  build_exe certimport -lcrypt32 -ladvapi32
  rm -rf "$BUILD/tmp"
  say "builds done in $(since "$t")s"
}

# ---------------------------------------------------------------------------------------------
# The prefix

prefix_ready() { [ -f "$READY" ] && [ -f "$PREFIX/system.reg" ]; }

create_prefix() {
  local t
  stop_server
  rm -rf "$PREFIX" "$READY"
  mkdir -p "$LAB_TMP"
  # ORDER MATTERS (see the header): wineboot under a transient server, wait for that server
  # to exit, and only then start the persistent one.
  t=$(mark)
  # wineboot prints a harmless "failed to open syswow64\rundll32.exe" (no wine32).
  w wineboot -i >"$LOGS/wineboot.log" 2>&1 || die "wineboot -i failed (log: $LOGS/wineboot.log)"
  say "wineboot -i: $(since "$t")s"
  t=$(mark)
  timeout 60 wineserver -w 9>&- || die "the transient wineserver did not exit after wineboot"
  say "wineserver -w: $(since "$t")s"
  start_server
  # Wine's default profile is Windows 7 (6.1.7601); the agent needs Windows 10 / Server 2016+.
  w winecfg -v win10 >/dev/null 2>&1 || die "winecfg -v win10 failed"
  wine --version >"$READY"
}

install_shim() {
  local dst=$PREFIX/drive_c/windows/system32/bcryptprimitives.dll
  cmp -s "$BUILD/bcryptprimitives.dll" "$dst" || install -m 0644 "$BUILD/bcryptprimitives.dll" "$dst"
}

# The stand-in over Wine's stub C:\windows\system32\WindowsPowerShell\v1.0\powershell.exe.
# Wine runs its builtin only when the file there is its "fake DLL" placeholder: a real PE in
# its place is what runs, so no WINEDLLOVERRIDES entry is needed (measured; `up` checks it
# every time with `powershell.exe -?`, which must print the stand-in's banner).
install_powershell() {
  local dst=$PREFIX/drive_c/windows/system32/WindowsPowerShell/v1.0/powershell.exe
  mkdir -p "$(dirname "$dst")"
  cmp -s "$BUILD/powershell.exe" "$dst" || install -m 0755 "$BUILD/powershell.exe" "$dst"
}

# The stand-in's lab settings that need no running emulator.
write_lab_keys() {
  w reg add "$PS_LAB_KEY" /v DomainNetbiosName /t REG_SZ /d "$LAB_NETBIOS" /f >/dev/null 2>&1 ||
    die "cannot write $PS_LAB_KEY"
}

# ---------------------------------------------------------------------------------------------
# Commands

cmd_up() {
  need_root up
  take_lock
  local t0 t pid
  t0=$(mark)
  mkdir -p "$LOGS" "$LAB_TMP"
  install_packages
  build_all
  if prefix_ready; then
    start_server
  else
    say "creating the prefix $PREFIX"
    t=$(mark)
    create_prefix
    say "prefix created in $(since "$t")s"
  fi
  install_shim
  # The first wine process of a server session starts services.exe (and with it any
  # automatic service): do it now, so `up` returns a lab that is ready, and check it is one.
  t=$(mark)
  local ver
  ver=$(w cmd /c ver 2>/dev/null | tr -d '\r') || true
  [[ $ver == *'Windows 10.'* ]] || die "the prefix does not report Windows 10 (cmd /c ver: ${ver//$'\n'/ })"
  w "$(winpath "$BUILD/provd-lab-agent.exe")" --version >/dev/null 2>&1 ||
    die "a Rust exe does not start under Wine (bcryptprimitives shim missing?)"
  install_powershell
  { w powershell.exe -? 2>/dev/null || true; } | grep -q 'LAB STAND-IN' ||
    die "powershell.exe is not the stand-in (Wine ran its builtin stub?)"
  write_lab_keys
  local n
  for _ in $(seq 1 50); do
    n=$(services_exe_count)
    ((n >= 1)) && break
    sleep 0.1
  done
  ((n == 1)) || die "expected one services.exe for the prefix, found $n (broken boot order?); try: wine.sh clean && wine.sh up"
  pid=$(server_pid)
  say "OK: wineserver $pid (persistent), prefix $PREFIX, checks $(since "$t")s, up in $(since "$t0")s"
  say "next: eval \"\$($SCRIPT_DIR/wine.sh env)\""
}

cmd_down() {
  need_root down
  take_lock
  local t
  t=$(mark)
  stop_server
  say "down ($(since "$t")s)"
}

cmd_clean() {
  need_root clean
  take_lock
  stop_server
  # Keep the lock file's directory until we are done with it, then everything goes.
  find "$WINE_LAB_DIR" -mindepth 1 -maxdepth 1 ! -name .lock -exec rm -rf {} +
  rm -f "$WINE_LAB_DIR/.lock"
  rmdir "$WINE_LAB_DIR" 2>/dev/null || true
  say "removed $WINE_LAB_DIR"
}

# pem_multi_sz CA_FILE: the PEM certificate(s) of CA_FILE as a REG_MULTI_SZ for `reg add /d`,
# one line per string (reg's separator is a literal \0); dies unless it holds one.
pem_multi_sz() {
  [ -f "$1" ] || die "CA_FILE '$1' is not a file"
  grep -q 'BEGIN CERTIFICATE' "$1" || die "CA_FILE '$1' holds no PEM certificate"
  tr -d '\r' <"$1" | grep -v '^[[:space:]]*$' | sed ':a;N;$!ba;s/\n/\\0/g'
}

# open_lab_key KEY ARG: how the commands that write a lab key begin: the lock and a prefix; with
# ARG `none` the key is removed and it returns 1 (nothing more to do).
open_lab_key() {
  take_lock
  prefix_ready || die "no prefix: run wine.sh up first"
  [ "$2" = none ] || return 0
  w reg delete "$1" /f >/dev/null 2>&1 || true
  say "removed $1"
  return 1
}

cmd_tenant_emulator() {
  need_root tenant-emulator
  local url=${1:-} ca=${2:-} interval=${3:-} pem
  [ -n "$url" ] || die "usage: wine.sh tenant-emulator URL CA_FILE [HEARTBEAT_SECONDS] | wine.sh tenant-emulator none"
  open_lab_key "$EMULATOR_KEY" "$url" || return 0
  [[ $url == https://* ]] || die "URL must be https:// (got '$url')"
  [[ -z $interval || $interval =~ ^[0-9]+$ ]] || die "HEARTBEAT_SECONDS must be a number"
  pem=$(pem_multi_sz "$ca")
  w reg add "$EMULATOR_KEY" /v Url /t REG_SZ /d "$url" /f >/dev/null 2>&1 || die "cannot write $EMULATOR_KEY"
  w reg add "$EMULATOR_KEY" /v CaPem /t REG_MULTI_SZ /d "$pem" /f >/dev/null 2>&1 || die "cannot write $EMULATOR_KEY CaPem"
  if [ -n "$interval" ]; then
    w reg add "$EMULATOR_KEY" /v HeartbeatIntervalSeconds /t REG_DWORD /d "$interval" /f >/dev/null 2>&1 ||
      die "cannot write $EMULATOR_KEY HeartbeatIntervalSeconds"
  else
    w reg delete "$EMULATOR_KEY" /v HeartbeatIntervalSeconds /f >/dev/null 2>&1 || true
  fi
  say "$EMULATOR_KEY: Url=$url, CaPem from $ca${interval:+, HeartbeatIntervalSeconds=$interval}"
}

cmd_lab_directory() {
  need_root lab-directory
  local url=${1:-} ca=${2:-} bind=${3:-} password_file=${4:-} pem="" password line
  [ -n "$url" ] || die "usage: wine.sh lab-directory URL CA_FILE|- BIND PASSWORD_FILE | wine.sh lab-directory none"
  open_lab_key "$DIRECTORY_KEY" "$url" || return 0
  [[ $url =~ ^ldaps?://[^/[:space:]]+/?$ ]] || die "URL must be ldaps://HOST[:PORT] or ldap://HOST[:PORT] (got '$url')"
  [ -n "$bind" ] || die "BIND (a DN or a UPN) is empty"
  [ -r "$password_file" ] || die "PASSWORD_FILE '$password_file' cannot be read"
  [ "$ca" = - ] || pem=$(pem_multi_sz "$ca")
  # The password: the first line, as provctl's --password-file reads it. Bash builtins only
  # from here to the .reg file, so it is in no process's arguments.
  IFS= read -r line <"$password_file" || [ -n "$line" ] || die "PASSWORD_FILE '$password_file' is empty"
  password=${line%$'\r'}
  [ -n "$password" ] || die "PASSWORD_FILE '$password_file' has an empty first line"
  w reg add "$DIRECTORY_KEY" /v Url /t REG_SZ /d "$url" /f >/dev/null 2>&1 || die "cannot write $DIRECTORY_KEY"
  w reg add "$DIRECTORY_KEY" /v BindDn /t REG_SZ /d "$bind" /f >/dev/null 2>&1 || die "cannot write $DIRECTORY_KEY BindDn"
  if [ -n "$pem" ]; then
    w reg add "$DIRECTORY_KEY" /v CaPem /t REG_MULTI_SZ /d "$pem" /f >/dev/null 2>&1 || die "cannot write $DIRECTORY_KEY CaPem"
  else
    w reg delete "$DIRECTORY_KEY" /v CaPem /f >/dev/null 2>&1 || true
  fi
  # A .reg file (UTF-16LE with its BOM, as regedit writes them; \ and " escaped), mode 600 from
  # the start, read by `reg import` and removed whatever happens (the trap: on a die).
  REG_FILE=$(umask 077 && mktemp "$LAB_TMP/lab-directory.XXXXXX")
  trap 'rm -f -- "$REG_FILE"' EXIT
  password=${password//\\/\\\\}
  password=${password//\"/\\\"}
  printf '\xff\xfe' >"$REG_FILE"
  printf 'Windows Registry Editor Version 5.00\r\n\r\n[%s]\r\n"Password"="%s"\r\n' \
    "HKEY_LOCAL_MACHINE${DIRECTORY_KEY#HKLM}" "$password" | iconv -f UTF-8 -t UTF-16LE >>"$REG_FILE" ||
    die "cannot write the .reg file"
  w reg import "$(winpath "$REG_FILE")" >/dev/null 2>&1 || die "cannot write $DIRECTORY_KEY Password (reg import)"
  rm -f -- "$REG_FILE"
  say "$DIRECTORY_KEY: Url=$url, BindDn=$bind, ${pem:+CaPem from $ca, }Password from $password_file"
}

cmd_status() {
  local p rc=0 pid kind f missing=()
  echo "lab: $WINE_LAB_DIR"
  for p in "${PACKAGES[@]}"; do
    [[ $(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null) == ii* ]] || missing+=("$p")
  done
  if ((${#missing[@]})); then
    echo "packages: missing ${missing[*]}"
    rc=3
  else echo "packages: ok ($(wine --version 2>/dev/null), wixl $(wixl --version))"; fi
  if prefix_ready; then echo "prefix: $PREFIX ($(cat "$READY"))"; else
    echo "prefix: not created"
    rc=3
  fi
  if pid=$(server_pid); then
    if server_persistent "$pid"; then echo "wineserver: pid $pid, persistent"; else
      echo "wineserver: pid $pid, NOT persistent (services die when it exits)"
      rc=3
    fi
    if [ "$(id -u)" = 0 ]; then echo "services.exe: $(services_exe_count)"; else echo "services.exe: (root only)"; fi
  else
    echo "wineserver: not running"
    rc=3
  fi
  for kind in good newer bad; do
    f=$(msi_path "$kind")
    if [ -f "$f" ]; then echo "msi $kind: $f"; else
      echo "msi $kind: missing"
      rc=3
    fi
  done
  f=$PREFIX/drive_c/windows/system32/WindowsPowerShell/v1.0/powershell.exe
  if [ -f "$BUILD/powershell.exe" ] && cmp -s "$BUILD/powershell.exe" "$f" 2>/dev/null; then
    echo "powershell.exe: the lab stand-in"
  else
    echo "powershell.exe: NOT the current lab stand-in (run wine.sh up)"
    rc=3
  fi
  return "$rc"
}

cmd_env() {
  local good newer bad
  good=$(msi_path good) newer=$(msi_path newer) bad=$(msi_path bad)
  if [ ! -f "$good" ] || [ ! -f "$newer" ] || [ ! -f "$bad" ]; then die "no packages in $PKGS: run wine.sh up first"; fi
  cat <<EOF
export WINEPREFIX='$PREFIX'
export WINEARCH='win64'
export WINEDEBUG='-all'
export WINEDLLOVERRIDES='$WINEDLLOVERRIDES'
export TMPDIR='$LAB_TMP'
export WINE_LAB_DIR='$WINE_LAB_DIR'
export WINE_LAB_MSI='$good'
export WINE_LAB_MSI_SHA256='$(sha256 "$good")'
export WINE_LAB_MSI_NEWER='$newer'
export WINE_LAB_MSI_NEWER_SHA256='$(sha256 "$newer")'
export WINE_LAB_MSI_BAD='$bad'
export WINE_LAB_MSI_BAD_SHA256='$(sha256 "$bad")'
export WINE_LAB_NEWTONSOFT_12='$BUILD/Newtonsoft.Json-12.dll'
export WINE_LAB_NEWTONSOFT_13='$BUILD/Newtonsoft.Json-13.dll'
export WINE_LAB_CERTIMPORT='$BUILD/certimport.exe'
EOF
}

# ---------------------------------------------------------------------------------------------
# package-entries

cmd_package_entries() {
  need_root package-entries
  local action=${1:-} key cache exe code codes=() c
  take_lock
  prefix_ready || die "no prefix: run wine.sh up first"
  key="$UNINSTALL_KEY\\$BUNDLE_ID"
  cache="C:\\ProgramData\\Package Cache\\$BUNDLE_ID"
  exe="$cache\\$BUNDLE_EXE_NAME"
  case $action in
    install)
      [ -f "$(msi_path updater)" ] && [ -f "$BUILD/labsetup.exe" ] || die "run wine.sh up first (no updater MSI or labsetup.exe)"
      code=$(msiexec_code /i "$(winpath "$(msi_path updater)")" /quiet /norestart)
      [ "$code" = 0 ] || die "the stand-in updater MSI did not install (msiexec $code)"
      mkdir -p "$PREFIX/drive_c/ProgramData/Package Cache/$BUNDLE_ID"
      install -m 0755 "$BUILD/labsetup.exe" "$PREFIX/drive_c/ProgramData/Package Cache/$BUNDLE_ID/$BUNDLE_EXE_NAME"
      for c in "$(product_code good "$VERSION_GOOD")" "$(product_code newer "$VERSION_NEWER")" \
        "$(product_code updater "$VERSION_GOOD")"; do codes+=("{$c}"); done
      # What a 32-bit Burn writes for a per-machine bundle (32-bit view); the chain is a lab value.
      local -a values=(
        "DisplayName REG_SZ $BUNDLE_DISPLAY_NAME"
        "DisplayVersion REG_SZ $VERSION_GOOD"
        "Publisher REG_SZ provd lab (not Microsoft)"
        "BundleCachePath REG_SZ $exe"
        "BundleProviderKey REG_SZ $BUNDLE_ID"
        "BundleUpgradeCode REG_MULTI_SZ {5C0B7D3E-2A41-4E8F-9B6C-1D2E3F405C02}"
        "BundleVersion REG_SZ $VERSION_GOOD"
        "UninstallString REG_SZ \"$exe\" /uninstall"
        "QuietUninstallString REG_SZ \"$exe\" /uninstall /quiet"
        "ProvdLabChainedProductCodes REG_SZ $(IFS=';' && echo "${codes[*]}")"
      )
      local v name type data
      for v in "${values[@]}"; do
        name=${v%% *} v=${v#* } type=${v%% *} data=${v#* }
        w reg add "$key" /reg:32 /v "$name" /t "$type" /d "$data" /f >/dev/null 2>&1 || die "cannot write $key $name"
      done
      say "package entries: the updater MSI and the bundle $BUNDLE_ID (32-bit view, $exe)"
      ;;
    remove)
      msiexec_code /x "{$(product_code updater "$VERSION_GOOD")}" /quiet /norestart >/dev/null
      w reg delete "$key" /reg:32 /f >/dev/null 2>&1 || true
      rm -rf "$PREFIX/drive_c/ProgramData/Package Cache/$BUNDLE_ID"
      say "package entries removed"
      ;;
    *) die "usage: wine.sh package-entries install|remove" ;;
  esac
}

# ---------------------------------------------------------------------------------------------
# smoke

# Service state as `sc query` prints it (RUNNING, STOPPED, ...); empty if it does not exist
# (Wine's sc then prints nothing and exits 1, where Windows prints "FAILED 1060").
sc_state() { { w sc query "$1" 2>/dev/null || true; } | tr -d '\r' | awk '$1 == "STATE" { print $4 }'; }

wait_state() { # NAME STATE SECONDS
  local end=$((SECONDS + $3))
  while ((SECONDS <= end)); do
    [ "$(sc_state "$1")" = "$2" ] && return 0
    sleep 0.2
  done
  return 1
}

# `reg query KEY` as "NAME<TAB>VALUE" lines (Wine prints CRLF and 4-space separators).
reg_values() {
  { w reg query "$1" 2>/dev/null || true; } | tr -d '\r' |
    sed -n 's/^    \([^ ].*\)    REG_[A-Z_]*    \(.*\)$/\1\t\2/p; s/^    \([^ ].*\)    REG_[A-Z_]*$/\1\t/p'
}
reg_value() { reg_values "$1" | awk -F'\t' -v n="$2" '$1 == n && !seen++ { print $2 }'; }

# Uninstall subkeys (ProductCodes) whose DisplayName starts with the real agent's name, as
# provd matches them.
agent_uninstall_keys() {
  { w reg query "$UNINSTALL_KEY" /s 2>/dev/null || true; } | tr -d '\r' | awk '
    /^HKEY_/ { key = $0; sub(/.*\\/, "", key) }
    /^    DisplayName    REG_SZ    Microsoft Azure AD Connect Provisioning Agent/ { print key }'
}

heartbeat_file() { echo "$PREFIX/drive_c/ProgramData/ProvdLabAgent/$1.txt"; }
hb_field() { { cat "$(heartbeat_file "$1")" 2>/dev/null || true; } | tr -d '\r' | sed -n "s/.* $2=\\([^ ]*\\).*/\\1/p"; }

# ps_result SCRIPT REQUEST_JSON: runs provd's script SCRIPT.ps1 through the powershell.exe
# stand-in exactly as provd does (the request base64 on stdin) and prints the decoded JSON of
# its PROVD-RESULT line (nothing if there is none).
ps_result() {
  local script
  script=$(winpath "$(realpath "$PS_SCRIPTS/$1.ps1")")
  printf '%s' "$2" | base64 -w0 |
    { w powershell.exe -NoLogo -NoProfile -NonInteractive -File "$script" 2>/dev/null || true; } |
    tr -d '\r' | sed -n 's/^PROVD-RESULT //p' | { base64 -d 2>/dev/null || true; }
}

# ps_code ARGS...: the stand-in's FULL exit code (through cmd.exe, as msiexec_code) and its
# first stderr line, as "CODE|LINE".
ps_code() {
  local bat=$BUILD/powershell-code.bat out
  printf '@echo off\r\npowershell.exe %%* 2>"%%TEMP%%\\ps-smoke.err" <NUL\r\necho PS_EXIT=%%ERRORLEVEL%%\r\ntype "%%TEMP%%\\ps-smoke.err"\r\n' >"$bat"
  out=$({ w cmd /c "$(winpath "$bat")" "$@" 2>/dev/null || true; } | tr -d '\r')
  printf '%s|%s' "$(sed -n 's/^PS_EXIT=//p' <<<"$out")" "$(sed -n '/^PS_EXIT=/{n;p;q}' <<<"$out")"
}

# msiexec through cmd.exe, so the FULL exit code is seen: `wine` itself returns the Windows
# exit code mod 256 (1603 -> 67). Prints the code.
msiexec_code() {
  local bat=$BUILD/msiexec-code.bat out
  printf '@echo off\r\nmsiexec %%*\r\necho MSIEXEC_EXIT=%%ERRORLEVEL%%\r\n' >"$bat"
  out=$({ w cmd /c "$(winpath "$bat")" "$@" 2>/dev/null || true; } | tr -d '\r' | sed -n 's/^MSIEXEC_EXIT=//p')
  echo "${out:-none}"
}

# Predicates for `check`, so each check reads as one line.
eq() { [ "$1" = "$2" ]; }
empty() { [ -z "$1" ]; }
advanced() { [[ $1 =~ ^[0-9]+$ && $2 =~ ^[0-9]+$ ]] && (($2 > $1)); }
no_files() { [ -z "$(ls -A "$1" 2>/dev/null)" ]; }
service_config_ok() { # NAME: what the MSI's ServiceInstall asked for, read back from the registry
  local v
  v=$(reg_values "HKLM\\System\\CurrentControlSet\\Services\\$1")
  grep -qxF "Start	0x2" <<<"$v" && grep -qxF "ObjectName	LocalSystem" <<<"$v" &&
    grep -qF "Program Files\\$AGENT_DIR_NAME\\provd-lab-agent.exe" <<<"$v" &&
    grep -qF -- "--heartbeat " <<<"$v"
}

cmd_smoke() {
  need_root smoke
  take_lock
  local pass=0 fail=0 t t0 code rc key s pid out kind i
  local good newer bad pf code_good code_newer codes=() beats=()
  ok() {
    echo "PASS $*"
    pass=$((pass + 1))
  }
  ko() {
    echo "FAIL $*"
    fail=$((fail + 1))
  }
  check() { # DESCRIPTION COMMAND...
    local d=$1
    shift
    if "$@"; then ok "$d"; else ko "$d"; fi
  }
  # run_msiexec LABEL ARGS...: sets $code, records the code and the time.
  run_msiexec() {
    local label=$1 t
    shift
    t=$(mark)
    code=$(msiexec_code "$@")
    codes+=("$label: $code ($(since "$t")s)")
  }

  t0=$(mark)
  good=$(msi_path good) newer=$(msi_path newer) bad=$(msi_path bad)
  code_good="{$(product_code good "$VERSION_GOOD")}" code_newer="{$(product_code newer "$VERSION_NEWER")}"
  pf="$PREFIX/drive_c/Program Files/$AGENT_DIR_NAME"
  if [ ! -f "$good" ] || [ ! -f "$newer" ] || [ ! -f "$bad" ]; then die "packages missing: run wine.sh up first"; fi
  if ! pid=$(server_pid) || ! server_persistent "$pid"; then
    die "no persistent wineserver for $PREFIX: run wine.sh up first"
  fi
  mkdir -p "$LOGS/smoke"
  rm -f "$LOGS"/smoke/*.log

  # Start from nothing installed, whatever an interrupted run left behind.
  for kind in good newer bad; do
    if [ -n "$(reg_values "$UNINSTALL_KEY\\{$(product_code "$kind" "$(msi_version "$kind")")}")" ]; then
      say "pre-clean: uninstalling the leftover $kind package"
      msiexec_code /x "$(winpath "$(msi_path "$kind")")" /quiet /norestart >/dev/null
    fi
  done
  rm -rf "$PREFIX/drive_c/ProgramData/ProvdLabAgent"

  out=$(w cmd /c ver 2>/dev/null | tr -d '\r' | grep -o 'Windows [0-9.]*' || true)
  check "Windows 10 profile (cmd /c ver: $out)" eq "${out%%.*}" "Windows 10"
  out=$(w "$(winpath "$BUILD/provd-lab-agent.exe")" --version 2>/dev/null | tr -d '\r' || true)
  check "a Rust exe runs under Wine (bcryptprimitives shim): '$out'" grep -q 'lab stand-in' <<<"$out"
  check "exactly one services.exe in the prefix" eq "$(services_exe_count)" 1

  # -- install 1.1.977.0
  run_msiexec "install $VERSION_GOOD" /i "$(winpath "$good")" /quiet /norestart '/l*v' "$(winpath "$LOGS/smoke/1-install.log")"
  check "msiexec /i $(basename "$good") -> ${codes[-1]#*: }" eq "$code" 0
  check "exe installed in C:\\Program Files\\$AGENT_DIR_NAME\\" test -f "$pf/provd-lab-agent.exe"
  for s in "${SERVICES[@]}"; do
    t=$(mark) rc=0
    wait_state "$s" RUNNING 30 || rc=$?
    check "$s RUNNING (seen $(since "$t")s after msiexec returned)" eq "$rc" 0
    check "$s: automatic start, LocalSystem, exe in Program Files, --heartbeat" service_config_ok "$s"
  done
  echo "info ImagePath: $(reg_value "HKLM\\System\\CurrentControlSet\\Services\\${SERVICES[0]}" ImagePath)"
  sleep 1
  for s in "${SERVICES[@]}"; do beats+=("$(hb_field "$s" beat)"); done
  sleep 2.2
  i=0
  for s in "${SERVICES[@]}"; do
    check "$s heartbeat advances (beat ${beats[i]:-none} -> $(hb_field "$s" beat))" advanced "${beats[i]:-}" "$(hb_field "$s" beat)"
    check "$s heartbeat names the package: package_version=$(hb_field "$s" package_version)" \
      eq "$(hb_field "$s" package_version)" "$VERSION_GOOD"
    i=$((i + 1))
  done
  key=$(agent_uninstall_keys)
  check "one Uninstall entry named like the agent, key = ProductCode: $key" eq "$key" "$code_good"
  out=$(reg_value "$UNINSTALL_KEY\\$code_good" DisplayName)
  check "Uninstall DisplayName: $out" eq "$out" "$DISPLAY_NAME"
  out=$(reg_value "$UNINSTALL_KEY\\$code_good" DisplayVersion)
  check "Uninstall DisplayVersion: $out" eq "$out" "$VERSION_GOOD"

  # -- the powershell.exe stand-in, with the module files the package installed
  out=$({ w reg query "HKLM\\System\\CurrentControlSet\\Services\\${SERVICES[0]}" /v ServiceAccountManaged 2>/dev/null || true; } |
    tr -d '\r' | sed -n 's/^ *ServiceAccountManaged *//p' | tr -s ' ')
  check "${SERVICES[0]} key: ServiceAccountManaged $out" eq "$out" "REG_BINARY 01000000"
  check "placeholder Microsoft.CloudSync.PowerShell.dll and Newtonsoft.Json.dll installed" \
    test -f "$pf/Microsoft.CloudSync.PowerShell.dll" -a -f "$pf/Newtonsoft.Json.dll"
  out=$({ w powershell.exe -? 2>/dev/null || true; } | tr -d '\r' | head -n 1)
  check "powershell.exe -? is the stand-in: '$out'" grep -q 'LAB STAND-IN' <<<"$out"
  out=$(ps_result module-info '{}')
  echo "info module-info through the stand-in: $out"
  check "module-info.ps1 answers PROVD-RESULT ok, module present, version $VERSION_GOOD" \
    eq "$(jq -r '[.ok, .modulePresent, .moduleVersion] | join(" ")' <<<"${out:-null}" 2>/dev/null)" "true true $VERSION_GOOD"
  out=$(ps_result use-gmsa '{"customGmsaName":"provAgentgMSA$"}')
  check "use-gmsa.ps1 answers ok: $out" eq "$(jq -r .ok <<<"${out:-null}" 2>/dev/null)" true
  out=$(reg_value "HKLM\\System\\CurrentControlSet\\Services\\${SERVICES[0]}" ObjectName)
  check "${SERVICES[0]} logs on as $out" eq "$out" "$LAB_NETBIOS\\provAgentgMSA\$"
  out=$(ps_result add-domain '{"domainName":"lab.example.test","userName":"LAB\\Administrator","password":"x'"'"'; $(calc)","preferredDomainControllers":["dc2.lab.example.test","dc1.lab.example.test"]}')
  check "add-domain.ps1 answers ok: $out" eq "$(jq -r .ok <<<"${out:-null}" 2>/dev/null)" true
  out=$(ps_result list-domains '{}')
  check "list-domains.ps1 lists it: $out" eq "$(jq -c .domains <<<"${out:-null}" 2>/dev/null)" \
    '[{"DomainName":"lab.example.test","PreferredDomainControllers":"dc2.lab.example.test dc1.lab.example.test"}]'
  out=$(ps_code -NoLogo -NoProfile -NonInteractive -File 'C:\no\such\script.ps1')
  check "a missing -File: exit ${out%%|*}, '${out#*|}'" eq "${out%%|*}|${out#*|}" \
    "-196608|The argument 'C:\\no\\such\\script.ps1' to the -File parameter does not exist. Provide the path to an existing '.ps1' file as an argument to the -File parameter."
  printf 'Get-Date\r\n' >"$LOGS/smoke/not-provd.ps1"
  out=$(ps_code -NoLogo -NoProfile -NonInteractive -File "$(winpath "$LOGS/smoke/not-provd.ps1")")
  check "a script without provd's header is refused: exit ${out%%|*}, '${out#*|}'" grep -q "^1|LAB STAND-IN: .* is not one of provd's scripts" <<<"$out"
  { cat "$PS_SCRIPTS/module-info.ps1" && printf '# changed\n'; } >"$LOGS/smoke/module-info.ps1"
  out=$(ps_code -NoLogo -NoProfile -NonInteractive -File "$(winpath "$LOGS/smoke/module-info.ps1")")
  check "a changed script is refused: exit ${out%%|*}, '${out#*|}'" grep -q '^1|LAB STAND-IN: module-info changed since this stand-in was built' <<<"$out"

  # -- the same version again: Windows Installer sees the product installed and changes nothing
  pid=$(hb_field "${SERVICES[0]}" pid)
  run_msiexec "reinstall $VERSION_GOOD" /i "$(winpath "$good")" /quiet /norestart '/l*v' "$(winpath "$LOGS/smoke/2-reinstall.log")"
  check "msiexec /i of the installed version again -> ${codes[-1]#*: }" eq "$code" 0
  check "still one Uninstall entry, the same ProductCode" eq "$(agent_uninstall_keys)" "$code_good"
  for s in "${SERVICES[@]}"; do check "$s still RUNNING" wait_state "$s" RUNNING 30; done
  sleep 1.2
  echo "info ${SERVICES[0]} pid before/after the reinstall: $pid/$(hb_field "${SERVICES[0]}" pid) (Wine runs the whole sequence again; Windows would change nothing)"

  # -- major upgrade to 1.1.1000.0 (same UpgradeCode, new ProductCode)
  run_msiexec "upgrade to $VERSION_NEWER" /i "$(winpath "$newer")" /quiet /norestart '/l*v' "$(winpath "$LOGS/smoke/3-upgrade.log")"
  check "msiexec /i $(basename "$newer") (major upgrade) -> ${codes[-1]#*: }" eq "$code" 0
  key=$(agent_uninstall_keys)
  check "one Uninstall entry, the new ProductCode: $key" eq "$key" "$code_newer"
  out=$(reg_value "$UNINSTALL_KEY\\$code_newer" DisplayVersion)
  check "Uninstall DisplayVersion: $out" eq "$out" "$VERSION_NEWER"
  for s in "${SERVICES[@]}"; do check "$s RUNNING after the upgrade" wait_state "$s" RUNNING 30; done
  out=$(ps_result module-info '{}')
  check "module-info.ps1 reports the upgraded module: $(jq -r .moduleVersion <<<"${out:-null}" 2>/dev/null)" \
    eq "$(jq -r .moduleVersion <<<"${out:-null}" 2>/dev/null)" "$VERSION_NEWER"
  sleep 1.2
  for s in "${SERVICES[@]}"; do
    check "$s runs the new package (heartbeat package_version=$(hb_field "$s" package_version))" \
      eq "$(hb_field "$s" package_version)" "$VERSION_NEWER"
  done

  # -- downgrade: refused by the MajorUpgrade launch condition
  run_msiexec "downgrade to $VERSION_GOOD" /i "$(winpath "$good")" /quiet /norestart '/l*v' "$(winpath "$LOGS/smoke/4-downgrade.log")"
  check "msiexec /i of the older version is refused -> ${codes[-1]#*: }" eq "$code" 1603
  check "the newer version stays installed" eq "$(agent_uninstall_keys)" "$code_newer"
  check "${SERVICES[0]} still RUNNING" wait_state "${SERVICES[0]}" RUNNING 30

  # -- uninstall, by ProductCode as provd finds it under the Uninstall key
  run_msiexec "uninstall" /x "$code_newer" /quiet /norestart '/l*v' "$(winpath "$LOGS/smoke/5-uninstall.log")"
  check "msiexec /x $code_newer -> ${codes[-1]#*: }" eq "$code" 0
  for s in "${SERVICES[@]}"; do
    check "$s deleted (sc query finds nothing)" empty "$(sc_state "$s")"
    check "$s was stopped first (heartbeat state=$(hb_field "$s" state))" eq "$(hb_field "$s" state)" stopped
  done
  check "exe removed" test ! -e "$pf/provd-lab-agent.exe"
  check "no Uninstall entry named like the agent" empty "$(agent_uninstall_keys)"
  # Not checks: Wine's answers here differ from Windows (1605 for both), for the record.
  run_msiexec "uninstall again by ProductCode" /x "$code_newer" /quiet /norestart
  run_msiexec "uninstall again by package path" /x "$(winpath "$newer")" /quiet /norestart
  echo "info ${codes[-2]}; ${codes[-1]} (Windows: 1605 for both)"
  run_msiexec "install of a missing package file" /i "$(winpath "$PKGS/no-such-package.msi")" /quiet /norestart
  echo "info ${codes[-1]} (Windows: 1619)"

  # -- a package that fails on purpose, and is rolled back
  run_msiexec "install bad" /i "$(winpath "$bad")" /quiet /norestart '/l*v' "$(winpath "$LOGS/smoke/6-install-bad.log")"
  check "msiexec /i $(basename "$bad") fails -> ${codes[-1]#*: }" eq "$code" 1603
  rc=0
  w msiexec /i "$(winpath "$bad")" /quiet /norestart >/dev/null 2>&1 || rc=$?
  check "the same through plain 'wine msiexec': Unix exit status $rc (1603 mod 256)" eq "$rc" $((1603 % 256))
  check "rolled back: no Uninstall entry for it" empty "$(reg_values "$UNINSTALL_KEY\\{$(product_code bad "$VERSION_BAD")}")"
  check "rolled back: its service ProvdLabBrokenPackage does not exist" empty "$(sc_state ProvdLabBrokenPackage)"
  check "rolled back: no files in C:\\Program Files\\provd lab broken agent package\\" \
    no_files "$PREFIX/drive_c/Program Files/provd lab broken agent package"

  # -- what provd would see now
  check "nothing installed: no Uninstall entry named like the agent" empty "$(agent_uninstall_keys)"
  for s in "${SERVICES[@]}"; do check "nothing installed: no $s service" empty "$(sc_state "$s")"; done
  check "nothing installed: no files in C:\\Program Files\\$AGENT_DIR_NAME\\" no_files "$pf"

  echo "msiexec exit codes (full, via cmd.exe): $(printf '%s; ' "${codes[@]}")"
  # The heartbeats (state=stopped) stay for a failed run to look at.
  ((fail)) || rm -rf "$PREFIX/drive_c/ProgramData/ProvdLabAgent"
  echo "smoke ($(since "$t0")s): $pass passed, $fail failed"
  ((fail == 0))
}

# The Windows Server facts of `windows-server` (see the usage): the keys and values written.
readonly NDP_KEY='HKLM\SOFTWARE\Microsoft\NET Framework Setup\NDP\v4\Full'
readonly NT_KEY='HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion'

cmd_windows_server() {
  need_root windows-server
  take_lock
  prefix_ready || die "no prefix: run wine.sh up first"
  # Wine's own ProductName, kept so `none` puts it back.
  local orig="$WINE_LAB_DIR/productname.orig" v
  if [ "${1:-}" = none ]; then
    w reg delete "$NDP_KEY" /v Release /f >/dev/null 2>&1 || true
    for v in EditionID InstallationType; do
      w reg delete "$NT_KEY" /v "$v" /f >/dev/null 2>&1 || true
    done
    if [ -s "$orig" ]; then
      w reg add "$NT_KEY" /v ProductName /t REG_SZ /d "$(cat "$orig")" /f >/dev/null 2>&1 || true
    fi
    w sc delete VaultSvc >/dev/null 2>&1 || true
    say "Windows Server stand-in facts removed"
    return
  fi
  if [ ! -s "$orig" ]; then
    reg_value "$NT_KEY" ProductName >"$orig" || true
  fi
  w reg add "$NDP_KEY" /v Release /t REG_DWORD /d 528040 /f >/dev/null 2>&1 || die "cannot write $NDP_KEY"
  w reg add "$NT_KEY" /v ProductName /t REG_SZ /d "Windows Server 2019 Datacenter" /f >/dev/null 2>&1 ||
    die "cannot write $NT_KEY"
  w reg add "$NT_KEY" /v EditionID /t REG_SZ /d ServerDatacenter /f >/dev/null 2>&1 || die "cannot write $NT_KEY"
  w reg add "$NT_KEY" /v InstallationType /t REG_SZ /d Server /f >/dev/null 2>&1 || die "cannot write $NT_KEY"
  # Wine's sc has no `config`: made afresh, manual start (what a server has).
  w sc delete VaultSvc >/dev/null 2>&1 || true
  w sc create VaultSvc 'binPath=' 'C:\windows\system32\svchost.exe -k LocalSystemNetworkRestricted' \
    'start=' demand >/dev/null 2>&1 || die "cannot create the stand-in VaultSvc"
  say "Windows Server stand-in facts written (.NET 4.8, Windows Server 2019 Datacenter, VaultSvc manual)"
}

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0" >&2; }

main() {
  local cmd=${1:-}
  (($#)) && shift
  check_lab_dir
  case $cmd in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    env) cmd_env ;;
    smoke) cmd_smoke ;;
    clean) cmd_clean ;;
    tenant-emulator) cmd_tenant_emulator "$@" ;;
    lab-directory) cmd_lab_directory "$@" ;;
    windows-server) cmd_windows_server "$@" ;;
    package-entries) cmd_package_entries "$@" ;;
    -h | --help | help | "") usage ;;
    *)
      say "unknown command '$cmd'"
      usage
      exit 64
      ;;
  esac
}

main "$@"
