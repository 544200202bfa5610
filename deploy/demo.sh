#!/usr/bin/env bash
# The README's main command: the whole agent-host setup, end to end, on one Debian 12 machine.
#
#   ./deploy/demo.sh                 run the demo (as root); leaves it running for you to poke at
#   ./deploy/demo.sh down [--labs]   uninstall the agent, remove provd's Windows service, stop
#                                    the tenant emulator; --labs also stops the Samba DCs and
#                                    the wineserver (deploy/lab/{lab,wine}.sh down)
#   ./deploy/demo.sh tenant-agents   the tenant emulator's Graph list of provisioning agents
#
# What the run does, one `==>` section each, timed:
#   1. the lab: Samba AD with two DCs (deploy/lab/lab.sh up) and a Wine "Windows host" with a
#      stand-in agent MSI (deploy/lab/wine.sh up); both install their own packages
#   2. builds, debug (the same build the tests use): provd, provctl, provd-tenant-emulator, and
#      provd.exe cross-built for x86_64-pc-windows-gnu
#   3. tears down what an earlier run left (agent, provd service, emulator)
#   4. a demo PKI (provd pki init; a server certificate for the emulator from the same CA)
#   5. provd-tenant-emulator, the LAB stand-in for Entra/Graph, on https://127.0.0.1:18444;
#      where the stand-in agent registers (wine.sh tenant-emulator) and reads AD for its user
#      count (wine.sh lab-directory: the lab's reader account, a LAB shortcut for its gMSA)
#   6. provd.exe as a Windows service under Wine on https://localhost:18443 (mTLS), deployed
#      as administrators deploy it: provd's own MSI (deploy/windows/build-msi.sh) installed with
#      msiexec /i ... LISTEN= CERT_THUMBPRINT= CLIENT_CA_STORE=, its server certificate (RSA) in
#      LocalMachine\My and the demo CA in a LocalMachine store (certimport.exe, a LAB STAND-IN
#      for certlm); the demo's provd.toml is the MSI's C:\ProgramData\provd\provd.toml
#   7. the lab admin's prerequisites on the Samba domain (lab.sh prepare-host: KDS root key,
#      this host's computer account, minPwdAge 0), and the Windows Server facts Wine lacks
#      (wine.sh windows-server: LAB STAND-IN .NET 4.8, Server edition, VaultSvc)
#   8. RemediateHost's plan over HTTP/JSON (TLS 1.2 is off on Wine), then `provctl apply` of a
#      desired-state document (deploy/examples/agent-host.toml, lab values): the [host]
#      prerequisite fixes (TLS 1.2), install + device-code sign-in + registration through the agent's module (run by the
#      lab's powershell.exe stand-in), domain + DC priority, gMSA, permissions,
#      writeback, and the domain's cloud sync configuration through Graph (tenant flag,
#      application from the template, jobs, secrets, start). A background loop plays the
#      person who signs in with the code.
#   9. the tenant lists the agent in the domain's group (published from the agent's
#      heartbeat after add-domain, no shortcut), the agent's heartbeat carries the domain's
#      user count (its log says the emulator took it), the emulator's sync job runs and
#      exports those users (`provctl cloud-sync get`), `provctl plan` and `provctl host plan`
#      (nothing left to do), and
#      `provctl verify` (every check must PASS, tenant.sync.* included, but host.logon_right:
#      Wine's LSA is a stub), and Verify bound as this host (VM$) retrieves the gMSA's
#      password from Samba 4.22 (host.gmsa.retrievable proof=retrieved)
# Exit status non-zero unless all of that succeeded; on a failure it prints what it can.
#
# Environment: DEMO_PORT (provd, 18443), DEMO_TENANT_PORT (emulator, 18444).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

DEMO=$REPO/.demo
PORT=${DEMO_PORT:-18443}
TENANT_PORT=${DEMO_TENANT_PORT:-18444}
TENANT_URL=https://127.0.0.1:$TENANT_PORT
# The emulator's tenant id, the person who signs in there, and the public client provd uses.
TENANT_ID=00000000-0000-4000-8000-00000000beef
TENANT_USER=admin@lab.example.test
CLIENT_ID=14d82eec-204b-4c2f-b7e8-296a70dab67e
GMSA=provAgentgMSA

PROVD=$REPO/target/debug/provd
PROVCTL=$REPO/target/debug/provctl
EMULATOR=$REPO/target/debug/provd-tenant-emulator
EXE=$REPO/target/x86_64-pc-windows-gnu/debug/provd.exe
DOC=$DEMO/agent-host.toml
PASSWORD_FILE=$DEMO/lab-admin.password
# provd's own MSI (deploy/windows/build-msi.sh) and the LocalMachine store its client CA is in.
MSI_VERSION=0.1.1
CLIENT_CA_STORE=provd-demo-clients

# ---------------------------------------------------------------------------------------------
# Output and timing

now_us() { echo "${EPOCHREALTIME/./}"; }
secs() { # seconds since a now_us mark, one decimal
  local us=$(($(now_us) - $1))
  printf '%d.%d' $((us / 1000000)) $((us % 1000000 / 100000))
}
say() { echo "    $*"; }
die() {
  echo "ERROR: $*" >&2
  exit 1
}

T0=$(now_us)
CURRENT=""
CURRENT_T=0
TIMES=()
section() {
  end_section
  CURRENT=$1
  CURRENT_T=$(now_us)
  printf '\n==> %s\n' "$1"
}
end_section() {
  [ -n "$CURRENT" ] || return 0
  local s
  s=$(secs "$CURRENT_T")
  say "($s s)"
  TIMES+=("$(printf '%6s s  %s' "$s" "$CURRENT")")
  CURRENT=""
}

# wait_for WHAT SECONDS CMD...: until CMD succeeds (quietly), or die after SECONDS.
wait_for() {
  local what=$1 limit=$2 deadline
  shift 2
  deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "timed out after ${limit}s waiting for $what"
    sleep 0.5
  done
}

# ---------------------------------------------------------------------------------------------
# Tools

# provctl as the admin client (.demo/provctl.toml), with a time limit: ctl_t SECONDS ARGS...
ctl_t() {
  local limit=$1
  shift
  timeout "$limit" "$PROVCTL" --config "$DEMO/provctl.toml" "$@"
}
ctl() { ctl_t 60 "$@"; }
# The commands that take the lab admin get ADMIN=(--username UPN --password-file FILE): the
# password is read from a mode-600 file, never given as a flag.
ADMIN=()

# curl to the tenant emulator (its certificate is from the demo CA).
tcurl() { curl -fsS --max-time 10 --cacert "$DEMO/pki/ca.pem" "$@"; }

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A Linux path as Wine's drive Z: sees it.
z() {
  local p
  p=$(realpath -m "$1")
  echo "Z:${p//\//\\}"
}

# wine with the lab's environment (WINEPREFIX, TMPDIR: the persistent wineserver's socket).
WINE_ENV=""
load_wine_env() {
  WINE_ENV=$(deploy/lab/wine.sh env) || die "deploy/lab/wine.sh env failed"
  eval "$(grep '^export WINE_LAB_' <<<"$WINE_ENV")"
}
w() { (
  eval "$WINE_ENV"
  timeout 120 wine "$@"
); }

# The prefix's C:\ProgramData, where the MSI's service reads its configuration.
program_data() { (eval "$WINE_ENV" && echo "$WINEPREFIX/drive_c/ProgramData"); }

# msiexec's FULL exit code (wine returns it mod 256): through cmd.exe, as deploy/lab/wine.sh.
msiexec_code() {
  local bat=$DEMO/msiexec-code.bat
  printf '@echo off\r\nmsiexec %%*\r\necho MSIEXEC_EXIT=%%ERRORLEVEL%%\r\n' >"$bat"
  { w cmd /c "$(z "$bat")" "$@" 2>/dev/null || true; } | tr -d '\r' | sed -n 's/^MSIEXEC_EXIT=//p'
}

# `certimport.exe ARGS` (deploy/lab/windows/certimport.c, the LAB STAND-IN for certlm); its
# last line (a thumbprint for pfx and ca).
certimport() { w "$(z "$WINE_LAB_CERTIMPORT")" "$@" | tr -d '\r' | sed '/^$/d' | tail -n 1; }

# provd's server certificate and key into LocalMachine\My through a PFX whose one-run password
# travels in the environment only; the demo CA into LocalMachine\$CLIENT_CA_STORE. Wine's store
# takes RSA keys only (provd pki makes ECDSA ones): an RSA-2048 key and a certificate for
# localhost from the demo CA, as an enterprise CA would issue it. Prints the thumbprint.
import_server_certificate() {
  local pfx=$DEMO/pki/server-store.pfx key=$DEMO/pki/server-store.key cert=$DEMO/pki/server-store.pem
  local thumbprint
  openssl req -new -newkey rsa:2048 -nodes -keyout "$key" -subj "/O=provd demo/CN=localhost" \
    -out "$DEMO/pki/server-store.csr" 2>/dev/null || return 1
  openssl x509 -req -in "$DEMO/pki/server-store.csr" -CA "$DEMO/pki/ca.pem" -CAkey "$DEMO/pki/ca.key" \
    -set_serial "0x$(openssl rand -hex 16)" -days 90 -sha256 -out "$cert" -extfile <(printf '%s\n' \
      "subjectAltName=DNS:localhost,IP:127.0.0.1" "basicConstraints=critical,CA:FALSE" \
      "keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth") \
    2>/dev/null || return 1
  PROVD_LAB_PFX_PASSWORD=$(openssl rand -hex 18)
  export PROVD_LAB_PFX_PASSWORD
  openssl pkcs12 -export -inkey "$key" -in "$cert" -out "$pfx" \
    -passout env:PROVD_LAB_PFX_PASSWORD || return 1
  rm -f "$key" "$DEMO/pki/server-store.csr" # the key lives in the store now
  # /fresh-key: Wine keeps the first key of its one PFX container; this run's key must land.
  thumbprint=$(certimport pfx "$(z "$pfx")" My /fresh-key) || return 1
  unset PROVD_LAB_PFX_PASSWORD
  rm -f "$pfx"
  openssl x509 -in "$DEMO/pki/ca.pem" -outform DER -out "$DEMO/pki/ca.der" || return 1
  certimport clear "$CLIENT_CA_STORE" >/dev/null || return 1
  certimport ca "$(z "$DEMO/pki/ca.der")" "$CLIENT_CA_STORE" >/dev/null || return 1
  echo "$thumbprint"
}

emulator_pid() { # the demo's running emulator: pid file, then /proc exe and certificate
  local pid exe
  pid=$(cat "$DEMO/emulator.pid" 2>/dev/null) || return 1
  exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1 # gone (or a zombie)
  case $exe in */provd-tenant-emulator*) ;; *) return 1 ;; esac
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$DEMO/pki/tenant-emulator.pem" || return 1
  echo "$pid"
}

# The tenant's agents as Graph lists them, read with a device-code sign-in of our own.
graph_agents() {
  local code token
  code=$(tcurl -d "client_id=$CLIENT_ID" --data-urlencode "scope=https://graph.microsoft.com/.default offline_access" \
    "$TENANT_URL/$TENANT_ID/oauth2/v2.0/devicecode")
  tcurl -H 'content-type: application/json' \
    -d "$(jq -nc --arg c "$(jq -r .user_code <<<"$code")" --arg u "$TENANT_USER" '{user_code: $c, user: $u}')" \
    "$TENANT_URL/_lab/device/approve" >/dev/null
  token=$(tcurl -d grant_type=urn:ietf:params:oauth:grant-type:device_code -d "client_id=$CLIENT_ID" \
    -d "device_code=$(jq -r .device_code <<<"$code")" "$TENANT_URL/$TENANT_ID/oauth2/v2.0/token" | jq -r .access_token)
  tcurl -H "authorization: Bearer $token" \
    "$TENANT_URL/beta/onPremisesPublishingProfiles/provisioning/agents?\$expand=agentGroups"
}

# ---------------------------------------------------------------------------------------------
# Teardown (the start of every run, and `down`)

teardown() {
  local exe="" out msi
  # The agent, through provd while it still answers (any version it installed).
  if [ -f "$DEMO/provctl.toml" ] && [ -x "$PROVCTL" ] && ctl_t 5 health >/dev/null 2>&1; then
    if ctl_t 120 agent uninstall --wait >"$DEMO/teardown-uninstall.log" 2>&1; then
      say "agent uninstalled through provd"
    else
      say "agent uninstall through provd failed ($DEMO/teardown-uninstall.log); msiexec /x follows"
    fi
  fi
  if [ -n "$WINE_ENV" ]; then
    # provd's MSI: stops and removes the service; PURGE=1 deletes C:\ProgramData\provd (the
    # demo's state is under .demo). Then its certificate and client CA leave the stores.
    if [ -f "$DEMO/provd.msi" ]; then
      out=$(msiexec_code /x "$(z "$DEMO/provd.msi")" PURGE=1 /quiet)
      say "msiexec /x provd.msi PURGE=1: ${out:-?}"
    fi
    if [ -s "$DEMO/server.thumbprint" ] && [ -f "${WINE_LAB_CERTIMPORT:-}" ]; then
      certimport remove My "$(cat "$DEMO/server.thumbprint")" >/dev/null 2>&1 || true
      certimport clear "$CLIENT_CA_STORE" >/dev/null 2>&1 || true
    fi
    # A service an older demo installed without the MSI (the SCM stops it, then it is deleted).
    if [ -f "$DEMO/provd.exe" ]; then exe=$DEMO/provd.exe; elif [ -f "$EXE" ]; then exe=$EXE; fi
    if [ -n "$exe" ]; then
      if out=$(w "$(z "$exe")" service uninstall 2>&1); then
        say "provd service stopped and removed"
      elif grep -q 'not installed' <<<"$out"; then
        say "no provd service installed"
      else
        say "provd service uninstall: $(tr -d '\r' <<<"$out" | tail -n 1)"
      fi
    fi
    # The lab packages, whichever is installed (a no-op, exit 0, for one that is not).
    for msi in "${WINE_LAB_MSI:-}" "${WINE_LAB_MSI_NEWER:-}"; do
      if [ -f "$msi" ]; then w msiexec /x "$(z "$msi")" /quiet >/dev/null 2>&1 || true; fi
    done
    # The identity the stand-in's Connect-AADCloudSyncAzureAD stored (a new emulator would
    # refuse its certificate), the domains its Add-AADCloudSyncADDomain recorded and the
    # agent's log (its user counts), and where that Connect registers (this emulator's URL
    # and CA) and the agent reads AD.
    rm -f "$(eval "$WINE_ENV" && echo "$WINEPREFIX")"/drive_c/ProgramData/ProvdLabAgent/{{identity,domains}.json,AADConnectProvisioningAgent.log}
    say "lab agent packages removed (msiexec /x)"
    deploy/lab/wine.sh tenant-emulator none >/dev/null 2>&1 || true
    deploy/lab/wine.sh lab-directory none >/dev/null 2>&1 || true
    say "the stand-ins' emulator and directory keys removed (wine.sh tenant-emulator none, lab-directory none)"
  fi
  local pid
  if pid=$(emulator_pid); then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do readlink "/proc/$pid/exe" >/dev/null 2>&1 || break; sleep 0.1; done
    if readlink "/proc/$pid/exe" >/dev/null 2>&1; then kill -KILL "$pid" 2>/dev/null || true; fi
    say "tenant emulator (pid $pid) stopped"
  fi
  rm -f "$DEMO/emulator.pid"
}

cmd_down() {
  [ "$(id -u)" = 0 ] || die "run as root: sudo ./deploy/demo.sh down"
  local labs=0
  case ${1:-} in
    --labs) labs=1 ;;
    "") ;;
    *) die "usage: deploy/demo.sh down [--labs]" ;;
  esac
  echo "==> tearing the demo down"
  if deploy/lab/wine.sh status >/dev/null 2>&1; then load_wine_env; else say "Wine lab not up: nothing to remove there"; fi
  teardown
  if ((labs)); then
    echo "==> stopping the labs"
    deploy/lab/lab.sh down
    deploy/lab/wine.sh down
  else
    say "the labs keep running (deploy/demo.sh down --labs stops them)"
  fi
  say "files stay in $DEMO (the next run replaces them)"
}

cmd_tenant_agents() {
  emulator_pid >/dev/null || die "the tenant emulator is not running (./deploy/demo.sh)"
  graph_agents | jq .
}

# ---------------------------------------------------------------------------------------------
# On failure: what went wrong, from every side we can see.

PERSON_PID=""
stop_person() {
  if [ -n "$PERSON_PID" ]; then
    kill "$PERSON_PID" 2>/dev/null || true
    wait "$PERSON_PID" 2>/dev/null || true
    PERSON_PID=""
  fi
}

diagnose() {
  echo
  echo "==> FAILED in: ${CURRENT:-?} (after $(secs "$T0") s). What there is to see:"
  if [ -s "$DEMO/emulator.log" ]; then
    echo "---- last lines of the tenant emulator's log ($DEMO/emulator.log) ----"
    tail -n 20 "$DEMO/emulator.log"
  fi
  if [ -f "$DEMO/provctl.toml" ] && ctl_t 5 health >/dev/null 2>&1; then
    local id
    id=$(ctl_t 10 --output json ops list --page-size 1 2>/dev/null | jq -r '.operations[0].id // empty' 2>/dev/null || true)
    if [ -n "$id" ] && [[ $CURRENT != "provctl apply"* ]]; then
      echo "---- provd's last operation, its events replayed (provctl ops watch $id) ----"
      ctl_t 20 ops watch "$id" 2>&1 | tail -n 40 || true
    fi
  elif [ -f "$DEMO/provd.toml" ] && [ -f "$DEMO/provd.exe" ] && [ -n "$WINE_ENV" ] && ! port_in_use "$PORT"; then
    # A Windows service has no stderr (under Wine it is services.exe's /dev/null): run the
    # same exe and config in the foreground for a few seconds to see what it says.
    echo "---- provd.exe does not answer; the same exe and config in the foreground for 8 s ----"
    (
      eval "$WINE_ENV"
      timeout 8 wine "$(z "$DEMO/provd.exe")" serve --config "$(z "$DEMO/provd.toml")" \
        --listen "127.0.0.1:$PORT" --tls-cert-thumbprint "$(cat "$DEMO/server.thumbprint" 2>/dev/null)" \
        --tls-client-ca-store "$CLIENT_CA_STORE"
    ) 2>&1 | tail -n 25 || true
  fi
  local logs
  logs=$(find "$DEMO/state" -name '*.log' -newer "$DEMO/provd.toml" 2>/dev/null | head -n 5 || true)
  [ -z "$logs" ] || echo "installer logs (msiexec /l*v): $logs"
  echo "Left running for a look: ./deploy/demo.sh down tears it down."
}

on_exit() {
  local rc=$?
  stop_person
  if ((rc != 0)) && [ "${RUNNING:-0}" = 1 ]; then diagnose >&2 || true; fi
  exit "$rc"
}

# ---------------------------------------------------------------------------------------------
# The person in front of the browser: approves every device code provd asks for.

person() {
  set +e
  local seen=" " codes code body
  while :; do
    codes=$(tcurl "$TENANT_URL/_lab/device/pending" 2>/dev/null | jq -r '.value[].user_code' 2>/dev/null)
    for code in $codes; do
      [[ $seen == *" $code "* ]] && continue
      seen="$seen$code "
      sleep 1 # reads the code off the screen
      body=$(jq -nc --arg c "$code" --arg u "$TENANT_USER" '{user_code: $c, user: $u}')
      if tcurl -H 'content-type: application/json' -d "$body" "$TENANT_URL/_lab/device/approve" >/dev/null; then
        echo "[person] opens $TENANT_URL/devicelogin, enters $code, signs in as $TENANT_USER"
      else
        echo "[person] could not approve $code"
      fi
    done
    sleep 1
  done
}

# ---------------------------------------------------------------------------------------------
# The demo

cmd_run() {
  [ "$(id -u)" = 0 ] || die "run as root (the labs bind AD ports on 127.0.0.x and own a Wine prefix): sudo ./deploy/demo.sh"
  command -v cargo >/dev/null || die "needs a Rust toolchain (rustup, cargo) on PATH"
  RUNNING=1
  trap on_exit EXIT
  trap 'exit 130' INT TERM

  local missing=()
  command -v curl >/dev/null || missing+=(curl)
  command -v jq >/dev/null || missing+=(jq)
  if ((${#missing[@]})); then
    echo "==> installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi

  # -- 1. the lab
  section "Samba AD lab, two DCs (deploy/lab/lab.sh up)"
  deploy/lab/lab.sh up
  eval "$(deploy/lab/lab.sh env)"
  ADMIN=(--username "$LAB_ADMIN_UPN" --password-file "$PASSWORD_FILE")

  section "Wine Windows host with the stand-in agent MSI (deploy/lab/wine.sh up)"
  deploy/lab/wine.sh up
  load_wine_env
  say "agent package: $WINE_LAB_MSI"

  # -- 2. builds
  section "build (debug, shared with the tests): provd, provctl, provd-tenant-emulator; provd.exe"
  cargo build --locked --bins
  "$PROVCTL" apply --help >/dev/null 2>&1 || die "this provctl has no 'apply': rebuild (cargo build --bins)"
  # As deploy/test.sh prepares the Windows target.
  if ! command -v x86_64-w64-mingw32-gcc >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends gcc-mingw-w64-x86-64 >/dev/null
  fi
  rustup target list --installed | grep -qx x86_64-pc-windows-gnu || rustup target add x86_64-pc-windows-gnu
  CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc \
    cargo build --locked --target x86_64-pc-windows-gnu --bin provd

  # -- 3. what an earlier run left
  section "clean slate: an earlier run's agent, provd service and emulator"
  teardown
  rm -rf "$DEMO"
  mkdir -p "$DEMO"
  cp "$EXE" "$DEMO/provd.exe" # the service's image: a later cargo build does not touch it
  for p in "$PORT" "$TENANT_PORT"; do
    ! port_in_use "$p" || die "port $p is taken by something else (ss -ltnp 'sport = :$p'); set DEMO_PORT / DEMO_TENANT_PORT"
  done

  # -- 4. PKI
  section "demo PKI: provd pki init (CA, provd's server certificate, a client per role)"
  "$PROVD" pki init "$DEMO/pki" --server-dns localhost --server-ip 127.0.0.1 >/dev/null
  "$PROVD" pki issue --ca-dir "$DEMO/pki" --out "$DEMO/pki" --name tenant-emulator \
    --server-dns localhost --server-ip 127.0.0.1 >/dev/null
  say "$(cd "$DEMO/pki" && echo *.pem)"
  say "client-ROLE.pem carry urn:provd:role:ROLE; provctl --pki-dir .demo/pki --role admin picks client-admin.*"
  # provctl's connection file: the admin client (relative paths are relative to the file).
  printf '%s\n' "endpoint = \"https://localhost:$PORT\"" 'ca = "pki/ca.pem"' \
    'cert = "pki/client-admin.pem"' 'key = "pki/client-admin.key"' >"$DEMO/provctl.toml"
  (
    umask 077
    printf '%s\n' "$LAB_PASSWORD" >"$PASSWORD_FILE"
  )

  # -- 5. the tenant
  section "tenant emulator (LAB stand-in for Entra ID and Graph) on $TENANT_URL"
  NO_COLOR=1 RUST_LOG=info setsid "$EMULATOR" --listen "127.0.0.1:$TENANT_PORT" --tenant "$TENANT_ID" \
    --tls-cert "$DEMO/pki/tenant-emulator.pem" --tls-key "$DEMO/pki/tenant-emulator.key" \
    --poll-interval 1 --inactive-after 30 </dev/null >"$DEMO/emulator.out" 2>"$DEMO/emulator.log" &
  echo $! >"$DEMO/emulator.pid"
  wait_for "the emulator's 'listening on' line" 20 grep -q '^listening on https://' "$DEMO/emulator.out"
  emulator_pid >/dev/null || die "the tenant emulator exited: $(tail -n 5 "$DEMO/emulator.log")"
  say "$(head -n 1 "$DEMO/emulator.out") (pid $(cat "$DEMO/emulator.pid"), log $DEMO/emulator.log)"
  tcurl "$TENANT_URL/healthz" >/dev/null
  # Where the stand-in powershell.exe's Connect-AADCloudSyncAzureAD registers the agent (a real
  # module knows Microsoft's service), with a 2 s heartbeat.
  deploy/lab/wine.sh tenant-emulator "$TENANT_URL" "$DEMO/pki/ca.pem" 2 >/dev/null ||
    die "deploy/lab/wine.sh tenant-emulator $TENANT_URL failed"
  say "wine.sh tenant-emulator $TENANT_URL $DEMO/pki/ca.pem 2 (HKLM\\SOFTWARE\\ProvdLab\\TenantEmulator)"
  # Where and as whom the stand-in agent counts the domain's users for its heartbeat's
  # userCount: dc1 over LDAPS, the lab CA, the lab's reader account (a LAB shortcut: the real
  # agent reads as its gMSA, whose password the stand-in does not retrieve). The password goes
  # from the lab's file to the registry without a command line.
  deploy/lab/wine.sh lab-directory "ldaps://$LAB_DC1_IP" "$LAB_CA_PEM" "$LAB_READER_UPN" \
    "$LAB_READER_PASSWORD_FILE" >/dev/null || die "deploy/lab/wine.sh lab-directory failed"
  say "wine.sh lab-directory ldaps://$LAB_DC1_IP $LAB_CA_PEM $LAB_READER_UPN $LAB_READER_PASSWORD_FILE (HKLM\\SOFTWARE\\ProvdLab\\Directory)"

  # -- 6. provd.exe as a Windows service, deployed as administrators deploy it: provd's MSI
  #    with properties, its certificate and client CA in the LocalMachine certificate stores.
  section "provd.msi (msiexec /i, LISTEN, CERT_THUMBPRINT, CLIENT_CA_STORE): service provd, https://localhost:$PORT (mTLS)"
  local dns s thumbprint
  deploy/windows/build-msi.sh "$MSI_VERSION" "$DEMO/provd.exe" "$DEMO/provd.msi" >/dev/null ||
    die "deploy/windows/build-msi.sh failed"
  say "deploy/windows/build-msi.sh $MSI_VERSION .demo/provd.exe .demo/provd.msi"
  thumbprint=$(import_server_certificate) || die "importing provd's certificate into LocalMachine\\My failed"
  echo "$thumbprint" >"$DEMO/server.thumbprint"
  say "server certificate in LocalMachine\\My, thumbprint $thumbprint; the demo CA in LocalMachine\\$CLIENT_CA_STORE"
  # shellcheck disable=SC2086 # one server per word
  printf -v dns '"%s", ' $LAB_DNS_SERVERS
  cat >"$DEMO/provd.toml" <<EOF
# provd.exe's configuration for the demo (written by deploy/demo.sh; keys:
# deploy/config/provd.example.toml). Paths are Windows paths: Z: is Wine's view of /.
# The MSI's service reads it as C:\ProgramData\provd\provd.toml (the MSI keeps an existing
# one); the listen address and the certificate stores are the MSI's properties, which
# become the service's flags (--listen, --tls-cert-thumbprint, --tls-client-ca-store).
state_dir = '$(z "$DEMO/state")'

[log]
filter = "info"
# A Windows service's stderr goes nowhere: provd.exe logs here.
file = '$(z "$DEMO/provd.log")'

[directory]
# The Samba lab: its CA, and its DCs as DNS servers (the host's resolver does not know them).
ca_file = '$(z "$LAB_CA_PEM")'
dns_servers = [${dns%, }]

[tenant]
# Everything Entra at the LAB tenant emulator, whose certificate is from the demo CA.
tenant = "$TENANT_ID"
authority = "$TENANT_URL"
graph = "$TENANT_URL"
ca_file = '$(z "$DEMO/pki/ca.pem")'

[reachability]
# Verify's outbound checks probe the LAB tenant emulator, never Microsoft's endpoints: its HTTPS
# port stands in for the TLS ones, plain HTTP on the same port for the CRL hosts (port 80). Its
# certificate is from the demo CA ("provd CA", provd pki init): the lab's CA, not Microsoft's.
endpoints = ["$TENANT_URL", "http://127.0.0.1:$TENANT_PORT/crl/lab.crl"]
expected_issuers = ["provd CA"]
EOF
  mkdir -p "$(program_data)/provd"
  cp "$DEMO/provd.toml" "$(program_data)/provd/provd.toml"
  say "config $DEMO/provd.toml, as C:\\ProgramData\\provd\\provd.toml"
  s=$(msiexec_code /i "$(z "$DEMO/provd.msi")" "LISTEN=127.0.0.1:$PORT" "CERT_THUMBPRINT=$thumbprint" \
    "CLIENT_CA_STORE=$CLIENT_CA_STORE" /quiet /l*v "$(z "$DEMO/provd-msi.log")")
  [ "$s" = 0 ] || die "msiexec /i provd.msi exited $s (log: $DEMO/provd-msi.log)"
  say "wine msiexec /i .demo/provd.msi LISTEN=127.0.0.1:$PORT CERT_THUMBPRINT=$thumbprint CLIENT_CA_STORE=$CLIENT_CA_STORE /quiet: 0"
  wait_for "provd.exe to answer provctl health over mTLS" 90 ctl_t 5 health
  say "provctl health: $(ctl health 2>&1 | tr '\n' ' ' | sed 's/ *$//')"
  if [ "$(ctl --output json agent get | jq -r '.installed // false')" = true ]; then
    say "an agent is still installed: uninstalling it through provd first"
    ctl_t 120 agent uninstall --wait >/dev/null
  fi
  echo
  ctl agent get

  # -- 7. the lab admin's part
  local host
  host=$(hostname)
  host=${host%%.*}
  host=${host:0:15}
  host=${host^^}
  section "the domain admin's prerequisites for host $host (deploy/lab/lab.sh prepare-host $host)"
  deploy/lab/lab.sh prepare-host "$host" | sed 's/^/    /'
  section "the Windows host: what Wine does not register (deploy/lab/wine.sh windows-server)"
  # LAB STAND-IN facts a Windows Server has and Wine lacks (.NET 4.8, the Server edition, a
  # Credential Manager service); TLS 1.2 and the execution policy stay for RemediateHost.
  deploy/lab/wine.sh windows-server 2>&1 | sed 's/^/    /'

  # -- 8. apply
  section "host prerequisites: RemediateHost's plan (HTTP/JSON, as curl sends it); [host] below fixes them"
  local host_api="https://localhost:$PORT/provd.v1.HostService"
  tcurl -H 'content-type: application/json' --cert "$DEMO/pki/client-viewer.pem" \
    --key "$DEMO/pki/client-viewer.key" -d '{}' "$host_api/PlanHostRemediation" |
    jq -r '.fixes[]? | "    plan: \(.step): \(.changes | join("; "))\(if .rebootRequired then " (restart required, never made)" else "" end)"'

  section "desired state: .demo/agent-host.toml (deploy/examples/agent-host.toml with the lab's values)"
  local dcs="" n
  for n in 1 2; do
    s=LAB_DC${n}_HOST
    [ -z "${!s:-}" ] || dcs+="\"${!s}\", "
  done
  cat >"$DOC" <<EOF
# The lab's instance of deploy/examples/agent-host.toml (see there for every key).
[host]
remediate = ["tls12", "vault-service-manual", "execution-policy-remote-signed", "service-account-managed"]

[agent]
source = "file:///Z:$WINE_LAB_MSI"
sha256 = "$WINE_LAB_MSI_SHA256"
accept_license = true

[[domains]]
domain = "$LAB_DOMAIN"
preferred_domain_controllers = [${dcs%, }]

# The cloud sync configuration, made through Graph (scope: all users).
[domains.cloud_sync]
enabled = true
password_hash_sync = true
notification_email = "sync-alerts@$LAB_DOMAIN"
[domains.cloud_sync.accidental_deletes]
threshold = 500

[service_account]
domain = "$LAB_DOMAIN"
permissions = ["basic_read"]
[service_account.create]
name = "$GMSA"
principals = ["$host\$"]

[writeback]
enabled = true
EOF
  sed 's/^/    /' "$DOC"

  section "provctl apply .demo/agent-host.toml (the plan, then the operation followed to its end)"
  say "provctl --config .demo/provctl.toml apply .demo/agent-host.toml --username $LAB_ADMIN_UPN --password-file .demo/lab-admin.password"
  echo
  person &
  PERSON_PID=$!
  ctl_t 600 apply "$DOC" "${ADMIN[@]}" || die "provctl apply did not succeed"
  stop_person
  local machine account
  machine=$(ctl --output json agent get | jq -r '.tenant.machineName // empty')
  account=${machine%%.*}
  account=${account:0:15}
  account=${account^^}
  [ "$account" = "$host" ] ||
    die "provd registered the machine as '$machine' (account $account\$), not $host\$: run deploy/lab/lab.sh prepare-host $account"

  # -- 9. the tenant side, idempotence, verify
  section "the tenant side: the agent, told its domain by add-domain, joins the domain's group"
  # No shortcut: Add-AADCloudSyncADDomain (run by apply) tells the agent its
  # domain; the agent's heartbeat reports it and the tenant publishes it.
  local agents="" line=""
  active() {
    agents=$(graph_agents) &&
      line=$(jq -er --arg m "$machine" '.value[] | select(.machineName == $m and .status == "active"
          and (.agentGroups | length) > 0)
        | "agent \(.id) (\(.machineName)) \(.status), groups: \([.agentGroups[].displayName] | join(", "))"' <<<"$agents")
  }
  wait_for "the tenant to list the agent active in its domain's group" 60 active
  say "Graph: $line"

  section "cloud sync: the job runs and exports the users the agent counted in $LAB_DOMAIN"
  # The emulator's job runs only while an active agent of the domain's group
  # heartbeats; it exports the user count the agent read over LDAP.
  local job=""
  syncing() {
    job=$(ctl --output json cloud-sync get --domain "$LAB_DOMAIN" |
      jq -er '.domains[0].jobs[] | select(.templateId == "AD2AADProvisioning"
          and .state == "CLOUD_SYNC_JOB_STATE_ACTIVE"
          and ((.synchronizedByType.user // "0") | tonumber) >= 20)
        | "job \(.id): \(.state | sub("CLOUD_SYNC_JOB_STATE_"; "") | ascii_downcase), \(.synchronizedByType.user) users synchronized, last run \(.lastRun.state | sub("CLOUD_SYNC_RUN_STATE_"; "") | ascii_downcase) (\(.lastRun.countImported) imported, \(.lastRun.countExported // "0") exported)"')
  }
  wait_for "the cloud sync job to run and export the lab's users" 90 syncing
  say "provctl cloud-sync get: $job"
  ctl cloud-sync get --domain "$LAB_DOMAIN" | sed 's/^/    /'
  # The agent counts the domain's users (as the lab reader) and its heartbeat carries
  # userCount; its own log says so once the emulator took such a heartbeat.
  local agent_log count
  agent_log=$(eval "$WINE_ENV" && echo "$WINEPREFIX")/drive_c/ProgramData/ProvdLabAgent/AADConnectProvisioningAgent.log
  wait_for "the agent's heartbeat with the user count of $LAB_DOMAIN ($agent_log)" 60 \
    grep -q "heartbeat with userCount $LAB_DOMAIN=" "$agent_log"
  count=$(tr -d '\r' <"$agent_log" | sed -n "s/.*heartbeat with userCount $LAB_DOMAIN=\([0-9]*\).*/\1/p" | tail -n 1)
  ((count >= LAB_USER_COUNT)) || die "the agent counted $count users in $LAB_DOMAIN, the lab has $LAB_USER_COUNT"
  say "agent: $(tr -d '\r' <"$agent_log" | grep -F "user count $LAB_DOMAIN:" | tail -n 1 | cut -d' ' -f2-)"
  say "agent: heartbeat with userCount $LAB_DOMAIN=$count taken by the tenant (agent log)"

  section "provctl plan (again): nothing left to do"
  local plan
  plan=$(ctl_t 120 plan "$DOC" "${ADMIN[@]}")
  echo "$plan"
  grep -q '^plan: no changes' <<<"$plan" || die "a second plan still lists changes"

  section "host prerequisites after the apply: provctl host plan (nothing left to fix)"
  local left
  left=$(ctl host plan)
  echo "$left" | sed 's/^/    /'
  grep -q '^no fixes' <<<"$left" || die "the apply's [host] section left a fix undone"

  section "provctl verify (every check must PASS but host.logon_right, which Wine cannot answer)"
  local rc=0 others
  ctl_t 300 verify "${ADMIN[@]}" | tee "$DEMO/verify.out" || rc=$?
  ((rc == 0 || rc == 1)) || die "provctl verify exited $rc"
  # Wine's LSA is a stub that lists no holder of any right, so host.logon_right cannot PASS
  # under Wine (tests/integration/workflows/host_prereq.rs runs it on the recorded LSA fake).
  # Every other check must PASS.
  others=$(grep -E '^(WARN|FAIL|SKIP) ' "$DEMO/verify.out" | grep -Ev '^FAIL +host\.logon_right ' || true)
  [ -z "$others" ] || die "verify: not every check passed:
$others"
  grep -Eq '^result: [A-Z]+ +\([0-9]+ passed, 0 warned, [01] failed, 0 skipped' "$DEMO/verify.out" ||
    die "verify: unexpected result ($(grep '^result:' "$DEMO/verify.out"))"
  end_section

  # Wine's machine name is VM, the lab's VM$: bound as this host (its published lab password),
  # the DC (Samba 4.22) hands Verify the gMSA's password, which it decodes and never shows.
  section "host.gmsa.retrievable bound as this host ($LAB_HOST_ACCOUNT): the password retrieved"
  local proof
  (umask 077 && printf '%s' "$LAB_HOST_PASSWORD" >"$DEMO/host.password")
  # verify exits 1 (host.logon_right, as above): only this check's line is read.
  proof=$({ ctl_t 300 --output json verify --username "$LAB_HOST_ACCOUNT@$LAB_DOMAIN" \
    --password-file "$DEMO/host.password" || true; } |
    jq -c 'select(.check?.id == "host.gmsa.retrievable") | .check')
  say "$(jq -r '"\(.status | sub("CHECK_STATUS_"; "")) proof=\(.attributes.proof): \(.message)"' <<<"$proof")"
  [ "$(jq -r .attributes.proof <<<"$proof")" = retrieved ] ||
    die "host.gmsa.retrievable as $LAB_HOST_ACCOUNT did not retrieve the password: $proof"
  end_section

  # -- where to look next
  local P="target/debug/provctl --config .demo/provctl.toml" A="--username $LAB_ADMIN_UPN --password-file .demo/lab-admin.password"
  cat <<EOF

==> the demo is up and stays running
  provd.exe     Windows service "provd" under Wine, https://localhost:$PORT (mTLS; client certificates in .demo/pki)
  the agent     $(ctl --output json agent get | jq -r '"\(.version) installed, services: \([.services[] | "\(.name) \(.state | sub("SERVICE_STATE_"; "") | ascii_downcase) as \(.account)"] | join("; "))"')
  tenant        provd-tenant-emulator $TENANT_URL (pid $(cat "$DEMO/emulator.pid")), agent $(ctl --output json agent get | jq -r .tenant.agentId)

Try (from $REPO):
  $P agent get
  $P ops list
  $P plan .demo/agent-host.toml $A      # no changes
  $P verify $A
  $P writeback get $A
  target/debug/provctl --endpoint https://localhost:$PORT --pki-dir .demo/pki --role viewer dc get-priority $LAB_DOMAIN
  curl --cacert .demo/pki/ca.pem --cert .demo/pki/client-viewer.pem --key .demo/pki/client-viewer.key \\
       -H 'content-type: application/json' -d '{}' https://localhost:$PORT/provd.v1.AgentService/GetAgent
  ./deploy/demo.sh tenant-agents        # the emulator's Graph agent list (with a sign-in of its own)

Where things are:
  .demo/provd.toml (as C:\ProgramData\provd\provd.toml), .demo/provd.msi and its log .demo/provd-msi.log,
  .demo/state/ (provd.redb; staged packages and msiexec logs), .demo/pki/, .demo/agent-host.toml
  provd's certificate: LocalMachine\My, thumbprint in .demo/server.thumbprint; client CA: LocalMachine\$CLIENT_CA_STORE
  provd.exe's log: .demo/provd.log ([log] file; a service's stderr goes nowhere); every
    operation's events: $P ops watch ID
  emulator log  .demo/emulator.log
  agent         $(eval "$WINE_ENV" && echo "$WINEPREFIX")/drive_c/ProgramData/ProvdLabAgent/*.txt (heartbeats),
                AADConnectProvisioningAgent.log (its user counts),
                identity (written by the stand-in's Connect-AADCloudSyncAzureAD) in
                drive_c/ProgramData/ProvdLabAgent/identity.json
Tear down:
  ./deploy/demo.sh down                 # agent, provd service, emulator (labs keep running)
  ./deploy/demo.sh down --labs          # and stop the Samba DCs and the wineserver

section times:
EOF
  printf '  %s\n' "${TIMES[@]}"
  echo "demo done in $(secs "$T0") s"
}

case ${1:-run} in
  run) cmd_run ;;
  down)
    shift
    cmd_down "$@"
    ;;
  tenant-agents) cmd_tenant_agents ;;
  -h | --help | help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0" ;;
  *) die "unknown command '$1' (run, down [--labs], tenant-agents, help)" ;;
esac
