#!/usr/bin/env bash
# tenant-smoke.sh - the LAB STAND-IN agent's tenant heartbeat under Wine, by hand.
#
# Starts provd-tenant-emulator on Linux (--inactive-after 5), signs in through the lab
# device-code approve flow, registers an agent (CSR from openssl), installs the lab MSI in the
# Wine prefix and writes registration.json the way provd does (temp + rename). Checks that the
# AADConnectProvisioningAgent service heartbeats with the registered client certificate (the
# emulator lists the agent "active"), the heartbeat file's tenant= field (unregistered / ok /
# error:http-403 for another agent's id), "inactive" after `net stop`, "active" again after
# `net start`, the C:\users\Public fallback (Wine services' %ProgramData%), and "unregistered"
# once registration.json is gone. Uninstalls the MSI, removes the files and stops the
# emulator at the end, pass or fail. Prints PASS/FAIL per check; exit 0 iff all pass.
#
# Usage (root, after `deploy/lab/wine.sh up`, which builds the agent and the MSIs):
#   cargo build --bin provd-tenant-emulator --bin provd
#   deploy/lab/windows/agent/tenant-smoke.sh
# Environment: EMU, PROVD (default: target/debug/ of the repository), WORK (scratch dir,
# default a new one under $WINE_LAB_DIR), WINE_LAB_DIR (see wine.sh).
# Needs curl, jq, openssl. Refuses to run if the agent is installed already.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../../.." && pwd -P)
EMU=${EMU:-$REPO/target/debug/provd-tenant-emulator}
PROVD=${PROVD:-$REPO/target/debug/provd}
for tool in curl jq openssl "$EMU" "$PROVD"; do
  command -v "$tool" >/dev/null || {
    echo "missing: $tool" >&2
    exit 2
  }
done
eval "$(bash "$REPO/deploy/lab/wine.sh" env)"
# wine.sh's lock: no `wine.sh smoke` (or another run of this) in the prefix meanwhile. fd 9 is
# closed for every process started here, as wine.sh does.
exec 9>>"$WINE_LAB_DIR/.lock"
flock -w 600 9 || {
  echo "another wine.sh holds $WINE_LAB_DIR/.lock" >&2
  exit 2
}
if [ -n "${WORK:-}" ]; then own_work=false; else
  WORK=$(mktemp -d "$WINE_LAB_DIR/tenant-smoke.XXXX")
  own_work=true
fi
mkdir -p "$WORK"

SVC=AADConnectProvisioningAgent
DATA=$WINEPREFIX/drive_c/ProgramData/ProvdLabAgent
PUBLIC_DATA=$WINEPREFIX/drive_c/users/Public/ProvdLabAgent
HB=$DATA/$SVC.txt
HB_UPD=$DATA/AzureADConnectAgentUpdater.txt
MSI_WIN="Z:${WINE_LAB_MSI//\//\\}"
EMU_PID=
pass=0 fail=0

ok() {
  echo "PASS $*"
  pass=$((pass + 1))
}
ko() {
  echo "FAIL $*"
  fail=$((fail + 1))
}
w() { timeout 120 wine "$@" 9>&-; }
field() { { tr -d '\r' <"$1" 2>/dev/null || true; } | sed -n "s/.* $2=\\([^ ]*\\).*/\\1/p"; }
sc_state() { { w sc query "$1" 2>/dev/null || true; } | tr -d '\r' | awk '$1 == "STATE" { print $4 }'; }
wait_for() { # SECONDS COMMAND...: poll until the command succeeds
  local end=$((SECONDS + $1))
  shift
  until "$@"; do
    ((SECONDS < end)) || return 1
    sleep 0.3
  done
}
hb_is() { [ "$(field "$HB" "$1")" = "$2" ]; }
# Replace a file the way provd does: temp file + rename.
put() { # SRC DST
  mkdir -p "$(dirname "$2")"
  cp "$1" "$2.tmp"
  mv "$2.tmp" "$2"
}

# -- the emulator, driven with curl
ecurl() { curl -sS --max-time 10 --cacert "$WORK/pki/ca.pem" "$@"; }
emu_start() {
  "$PROVD" pki init --server-ip 127.0.0.1 "$WORK/pki" >/dev/null
  "$EMU" --listen 127.0.0.1:0 --tls-cert "$WORK/pki/server.pem" --tls-key "$WORK/pki/server.key" \
    --inactive-after 5 --poll-interval 1 >"$WORK/emulator.out" 2>"$WORK/emulator.err" 9>&- &
  EMU_PID=$!
  wait_for 20 grep -q '^listening on' "$WORK/emulator.out" || {
    echo "the emulator did not start (see $WORK/emulator.err)" >&2
    exit 1
  }
  EMU_URL=$(sed -n 's/^listening on //p' "$WORK/emulator.out")
  echo "info emulator pid $EMU_PID at $EMU_URL"
}
emu_token() {
  local code client=1950a258-227b-4e31-a9cf-717495945fc2
  code=$(ecurl -X POST "$EMU_URL/common/oauth2/v2.0/devicecode" -d "client_id=$client" \
    --data-urlencode 'scope=https://graph.microsoft.com/.default offline_access')
  ecurl -X POST "$EMU_URL/_lab/device/approve" -H 'content-type: application/json' \
    -d "$(jq -c '{user_code, user: "admin@lab.example.test"}' <<<"$code")" >/dev/null
  ecurl -X POST "$EMU_URL/common/oauth2/v2.0/token" -d "client_id=$client" \
    -d grant_type=urn:ietf:params:oauth:grant-type:device_code \
    -d "device_code=$(jq -r .device_code <<<"$code")" | jq -r .access_token
}
emu_register() { # MACHINE OUT: registration.json as provd writes it; prints the agent id
  local resp
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/agent.key" \
    -subj "/CN=$1" -out "$WORK/agent.csr" 2>/dev/null
  resp=$(ecurl -X POST "$EMU_URL/_agent/register" -H "authorization: Bearer $TOKEN" \
    -H 'content-type: application/json' \
    -d "$(jq -n --arg m "$1" --rawfile csr "$WORK/agent.csr" '{machineName: $m, csr: $csr}')")
  jq -n --argjson r "$resp" --arg m "$1" --arg url "$EMU_URL" --rawfile key "$WORK/agent.key" \
    --rawfile ca "$WORK/pki/ca.pem" \
    '{agentId: $r.agentId, machineName: $m, serviceUrl: $url, certificatePem: $r.certificate,
      privateKeyPem: $key, serviceCaPem: $ca, heartbeatIntervalSeconds: 2}' >"$2"
  jq -r .agentId "$2"
}
agent_status() {
  ecurl -H "authorization: Bearer $TOKEN" "$EMU_URL/beta/onPremisesPublishingProfiles/provisioning/agents" |
    jq -r --arg id "$ID" '.value[] | select(.id == $id) | .status'
}
is_status() { [ "$(agent_status)" = "$1" ]; }

cleanup() {
  w msiexec /x "$MSI_WIN" /quiet /norestart >/dev/null 2>&1 || true
  rm -rf "$DATA" "$PUBLIC_DATA"
  if [ -n "$EMU_PID" ]; then kill "$EMU_PID" 2>/dev/null || true; fi
  EMU_PID=
}
trap cleanup EXIT

[ -z "$(sc_state $SVC)" ] || {
  echo "$SVC is installed already: uninstall it first (wine.sh smoke leaves nothing installed)" >&2
  exit 2
}
rm -rf "$DATA" "$PUBLIC_DATA"
emu_start
TOKEN=$(emu_token)
ID=$(emu_register winehost.lab.example.test "$WORK/registration.json")
echo "info registered agent $ID"

# Installed without registration.json: tenant=unregistered, nothing sent.
if w msiexec /i "$MSI_WIN" /quiet /norestart >/dev/null 2>&1; then ok "msiexec /i $(basename "$WINE_LAB_MSI")"; else ko "msiexec /i"; fi
if wait_for 30 hb_is state running; then ok "$SVC running"; else ko "$SVC: state=$(field "$HB" state)"; fi
if wait_for 5 hb_is tenant unregistered; then ok "no registration.json: tenant=unregistered"; else ko "no registration.json: tenant=$(field "$HB" tenant)"; fi
if wait_for 10 is_status inactive; then ok "emulator: inactive (registration aged out, no beats)"; else ko "emulator: $(agent_status)"; fi

# provd writes registration.json: the agent beats with its certificate.
put "$WORK/registration.json" "$DATA/registration.json"
t=$SECONDS
if wait_for 10 hb_is tenant ok; then ok "registration.json written: tenant=ok after $((SECONDS - t))s"; else ko "tenant=$(field "$HB" tenant)"; fi
if wait_for 10 is_status active; then ok "emulator: active"; else ko "emulator: $(agent_status)"; fi
sleep 7 # longer than --inactive-after: only beats keep it active
if is_status active; then ok "emulator: still active 7s later (a beat every 2s)"; else ko "emulator 7s later: $(agent_status)"; fi
echo "info $(tr -d '\r' <"$HB")"
echo "info $(tr -d '\r' <"$HB_UPD")"
if [ "$(field "$HB_UPD" tenant)" = - ]; then ok "the updater does not talk to the tenant (tenant=-)"; else ko "updater: tenant=$(field "$HB_UPD" tenant)"; fi

# This certificate for another agent id: 403.
jq '.agentId = "00000000-0000-4000-8000-000000000000"' "$WORK/registration.json" >"$WORK/other.json"
put "$WORK/other.json" "$DATA/registration.json"
if wait_for 10 hb_is tenant error:http-403; then ok "another agent's id: tenant=error:http-403"; else ko "another id: tenant=$(field "$HB" tenant)"; fi
put "$WORK/registration.json" "$DATA/registration.json"
if wait_for 10 hb_is tenant ok; then ok "restored: tenant=ok"; else ko "restored: tenant=$(field "$HB" tenant)"; fi

# Stopped: prompt, and inactive. Started again: active.
t=$EPOCHREALTIME
w net stop $SVC >/dev/null 2>&1 || true
if wait_for 15 hb_is state stopped; then ok "net stop: state=stopped ($(awk -v a="$t" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')s)"; else ko "net stop: state=$(field "$HB" state)"; fi
if [ "$(sc_state $SVC)" = STOPPED ]; then ok "sc query: STOPPED"; else ko "sc query: $(sc_state $SVC)"; fi
if wait_for 10 is_status inactive; then ok "emulator: inactive after the stop"; else ko "emulator after the stop: $(agent_status)"; fi
w net start $SVC >/dev/null 2>&1 || true
if wait_for 10 is_status active; then ok "net start: active again"; else ko "net start: $(agent_status)"; fi

# Where provd running as a Wine service puts it if it follows %ProgramData% (C:\users\Public).
rm -f "$DATA/registration.json"
if wait_for 5 hb_is tenant unregistered; then ok "registration.json removed: tenant=unregistered"; else ko "removed: tenant=$(field "$HB" tenant)"; fi
put "$WORK/registration.json" "$PUBLIC_DATA/registration.json"
if wait_for 10 hb_is tenant ok; then ok 'C:\users\Public\ProvdLabAgent\registration.json is found too: tenant=ok'; else ko "users/Public: tenant=$(field "$HB" tenant)"; fi
rm -f "$PUBLIC_DATA/registration.json"
if wait_for 5 hb_is tenant unregistered; then ok "deleted while running: tenant=unregistered"; else ko "deleted: tenant=$(field "$HB" tenant)"; fi
if wait_for 10 is_status inactive; then ok "emulator: inactive without registration.json"; else ko "emulator: $(agent_status)"; fi

cleanup
trap - EXIT
if [ -z "$(sc_state $SVC)" ]; then ok "uninstalled: no $SVC service"; else ko "$SVC still installed"; fi
if $own_work && ((fail == 0)); then rm -rf "$WORK"; fi
echo "tenant smoke: $pass passed, $fail failed"
((fail == 0))
