#!/usr/bin/env bash
# tenant-smoke.sh - the LAB STAND-IN agent's tenant heartbeat under Wine, by hand.
#
# Starts provd-tenant-emulator on Linux (--inactive-after 5), signs in through the lab
# device-code approve flow, registers an agent through /register/RegisterConnector (CSR from
# openssl, a registration-audience token), installs the lab MSI in the Wine prefix and writes
# identity.json as the powershell.exe stand-in does (temp + rename). Checks that the
# AADConnectProvisioningAgent service heartbeats with the registered client certificate (the
# emulator lists the agent "active"), the heartbeat file's tenant= field (unregistered / ok /
# error:http-403 for another agent's id), "inactive" after `net stop`, "active" again after
# `net start`, "unregistered" once identity.json is gone, and that provd's old
# registration.json is ignored. Then the identity the lab's powershell.exe stand-in stores:
# connect-tenant.ps1 with a Graph token is refused (audience), with a registration token it
# writes identity.json and the agent heartbeats with it; add-domain.ps1's domain reaches the emulator through the heartbeat
# (a published resource). With the Samba lab up (deploy/lab/lab.sh up), the user count: no
# HKLM\SOFTWARE\ProvdLab\Directory, the agent's log says the count is unknown; after
# `wine.sh lab-directory` (the lab's reader, LDAPS to dc1, the lab CA) it logs the count,
# at least LAB_USER_COUNT, and a heartbeat carrying it that the emulator took. Uninstalls the
# MSI, removes the files, the stand-in's emulator and directory keys and stops the emulator
# at the end, pass or fail. Prints PASS/FAIL per check; exit 0 iff all pass.
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
LOG=$DATA/$SVC.log
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
emu_token() { # [CLIENT SCOPE]: an access token for that client and scope (default: Graph)
  local code client=${1:-1950a258-227b-4e31-a9cf-717495945fc2}
  local scope=${2:-https://graph.microsoft.com/.default offline_access}
  code=$(ecurl -X POST "$EMU_URL/common/oauth2/v2.0/devicecode" -d "client_id=$client" \
    --data-urlencode "scope=$scope")
  ecurl -X POST "$EMU_URL/_lab/device/approve" -H 'content-type: application/json' \
    -d "$(jq -c '{user_code, user: "admin@lab.example.test"}' <<<"$code")" >/dev/null
  ecurl -X POST "$EMU_URL/common/oauth2/v2.0/token" -d "client_id=$client" \
    -d grant_type=urn:ietf:params:oauth:grant-type:device_code \
    -d "device_code=$(jq -r .device_code <<<"$code")" | jq -r .access_token
}
emu_register() { # MACHINE OUT: registers through RegisterConnector (as the module does) and
  # writes OUT in identity.json's shape; prints the agent id
  local resp cert token
  token=$(emu_token 55747057-9b5d-4bd4-b387-abf52a8bd489 'https://proxy.cloudwebappproxy.net/registerapp/user_impersonation offline_access')
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/agent.key" \
    -subj "/CN=$1" -outform DER -out "$WORK/agent.csr.der" 2>/dev/null
  resp=$(ecurl -X POST "$EMU_URL/register/RegisterConnector" -H 'content-type: application/xml; charset=utf-8' \
    --data-binary "<RegistrationRequest xmlns=\"http://schemas.datacontract.org/2004/07/Microsoft.ApplicationProxy.Common.Registration\"><Base64Csr>$(base64 -w0 "$WORK/agent.csr.der")</Base64Csr><AuthenticationToken>$token</AuthenticationToken><FeatureString>SyncFabric</FeatureString><RegistrationRequestSettings><SystemSettings><MachineName>$1</MachineName></SystemSettings></RegistrationRequestSettings><TenantId>00000000-0000-4000-8000-00000000beef</TenantId><UserAgent>tenant-smoke</UserAgent></RegistrationRequest>")
  sed -n 's:.*<Certificate>\([^<]*\)</Certificate>.*:\1:p' <<<"$resp" | base64 -d >"$WORK/agent.crt.der"
  cert=$(openssl x509 -inform DER -in "$WORK/agent.crt.der")
  jq -n --arg cert "$cert" --arg m "$1" --arg url "$EMU_URL" --rawfile key "$WORK/agent.key" \
    --rawfile ca "$WORK/pki/ca.pem" \
    --arg id "$(openssl x509 -inform DER -in "$WORK/agent.crt.der" -noout -subject -nameopt multiline | sed -n 's/^ *commonName *= *//p')" \
    '{agentId: $id, machineName: $m, serviceUrl: $url, certificatePem: $cert,
      privateKeyPem: $key, serviceCaPem: $ca, heartbeatIntervalSeconds: 2}' >"$2"
  jq -r .agentId "$2"
}
agent_status() {
  ecurl -H "authorization: Bearer $TOKEN" "$EMU_URL/beta/onPremisesPublishingProfiles/provisioning/agents" |
    jq -r --arg id "$ID" '.value[] | select(.id == $id) | .status'
}
is_status() { [ "$(agent_status)" = "$1" ]; }
has_resource() { # DOMAIN: the emulator lists a published resource for it
  ecurl -H "authorization: Bearer $TOKEN" "$EMU_URL/beta/onPremisesPublishingProfiles/provisioning/publishedResources" |
    jq -e --arg d "$1" 'any(.value[]; .resourceName == $d)' >/dev/null
}

# -- the powershell.exe stand-in (deploy/lab/windows/powershell), run as provd runs it
EMU_KEY='HKLM\SOFTWARE\ProvdLab\TenantEmulator'
DIR_KEY='HKLM\SOFTWARE\ProvdLab\Directory'
AGENT_KEY='HKLM\SOFTWARE\Microsoft\Azure AD Connect Agents\Azure AD Connect Provisioning Agent'
ps_run() { # SCRIPT REQUEST_JSON: the decoded PROVD-RESULT of provd's script SCRIPT.ps1
  local script="Z:${REPO//\//\\}\\src\\backends\\agent_config\\scripts\\$1.ps1"
  printf '%s' "$2" | base64 -w0 |
    { w powershell.exe -NoLogo -NoProfile -NonInteractive -File "$script" 2>/dev/null || true; } |
    tr -d '\r' | sed -n 's/^PROVD-RESULT //p' | { base64 -d 2>/dev/null || true; }
}
connect_request() { # TOKEN
  jq -nc --arg t "$1" '{accessToken: $t, tenantId: "00000000-0000-4000-8000-00000000beef", userPrincipalName: "admin@lab.example.test"}'
}

cleanup() {
  w msiexec /x "$MSI_WIN" /quiet /norestart >/dev/null 2>&1 || true
  w reg delete "$EMU_KEY" /f >/dev/null 2>&1 || true
  w reg delete "$DIR_KEY" /f >/dev/null 2>&1 || true
  w reg delete "$AGENT_KEY" /v TenantID /f >/dev/null 2>&1 || true
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
ID=$(emu_register winehost.lab.example.test "$WORK/identity.json")
echo "info registered agent $ID"

# Installed without identity.json: tenant=unregistered, nothing sent.
if w msiexec /i "$MSI_WIN" /quiet /norestart >/dev/null 2>&1; then ok "msiexec /i $(basename "$WINE_LAB_MSI")"; else ko "msiexec /i"; fi
if wait_for 30 hb_is state running; then ok "$SVC running"; else ko "$SVC: state=$(field "$HB" state)"; fi
if wait_for 5 hb_is tenant unregistered; then ok "no identity.json: tenant=unregistered"; else ko "no identity.json: tenant=$(field "$HB" tenant)"; fi
if wait_for 10 is_status inactive; then ok "emulator: inactive (registration aged out, no beats)"; else ko "emulator: $(agent_status)"; fi

# identity.json appears (as the stand-in's Connect writes it): the agent beats with its certificate.
put "$WORK/identity.json" "$DATA/identity.json"
t=$SECONDS
if wait_for 10 hb_is tenant ok; then ok "identity.json written: tenant=ok after $((SECONDS - t))s"; else ko "tenant=$(field "$HB" tenant)"; fi
if wait_for 10 is_status active; then ok "emulator: active"; else ko "emulator: $(agent_status)"; fi
sleep 7 # longer than --inactive-after: only beats keep it active
if is_status active; then ok "emulator: still active 7s later (a beat every 2s)"; else ko "emulator 7s later: $(agent_status)"; fi
echo "info $(tr -d '\r' <"$HB")"
echo "info $(tr -d '\r' <"$HB_UPD")"
if [ "$(field "$HB_UPD" tenant)" = - ]; then ok "the updater does not talk to the tenant (tenant=-)"; else ko "updater: tenant=$(field "$HB_UPD" tenant)"; fi

# This certificate for another agent id: 403.
jq '.agentId = "00000000-0000-4000-8000-000000000000"' "$WORK/identity.json" >"$WORK/other.json"
put "$WORK/other.json" "$DATA/identity.json"
if wait_for 10 hb_is tenant error:http-403; then ok "another agent's id: tenant=error:http-403"; else ko "another id: tenant=$(field "$HB" tenant)"; fi
put "$WORK/identity.json" "$DATA/identity.json"
if wait_for 10 hb_is tenant ok; then ok "restored: tenant=ok"; else ko "restored: tenant=$(field "$HB" tenant)"; fi

# Stopped: prompt, and inactive. Started again: active.
t=$EPOCHREALTIME
w net stop $SVC >/dev/null 2>&1 || true
if wait_for 15 hb_is state stopped; then ok "net stop: state=stopped ($(awk -v a="$t" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')s)"; else ko "net stop: state=$(field "$HB" state)"; fi
if [ "$(sc_state $SVC)" = STOPPED ]; then ok "sc query: STOPPED"; else ko "sc query: $(sc_state $SVC)"; fi
if wait_for 10 is_status inactive; then ok "emulator: inactive after the stop"; else ko "emulator after the stop: $(agent_status)"; fi
w net start $SVC >/dev/null 2>&1 || true
if wait_for 10 is_status active; then ok "net start: active again"; else ko "net start: $(agent_status)"; fi

# provd's registration.json (before issue 14) is not read any more, in either folder.
rm -f "$DATA/identity.json"
if wait_for 5 hb_is tenant unregistered; then ok "identity.json removed: tenant=unregistered"; else ko "removed: tenant=$(field "$HB" tenant)"; fi
put "$WORK/identity.json" "$DATA/registration.json"
put "$WORK/identity.json" "$PUBLIC_DATA/registration.json"
sleep 3
if hb_is tenant unregistered; then ok "registration.json (either folder) is ignored: tenant=unregistered"; else ko "registration.json read: tenant=$(field "$HB" tenant)"; fi
rm -f "$DATA/registration.json" "$PUBLIC_DATA/registration.json"
if wait_for 10 is_status inactive; then ok "emulator: inactive without identity.json"; else ko "emulator: $(agent_status)"; fi

# The identity the stand-in powershell.exe stores when provd runs connect-tenant.ps1.
if [ "$(ecurl -o /dev/null -w '%{http_code}' -X POST "$EMU_URL/register/RegisterConnector" -d x)" = 404 ]; then
  echo "info this emulator has no /register/RegisterConnector (before issue 14): stand-in checks skipped"
else
  pem=$(tr -d '\r' <"$WORK/pki/ca.pem" | grep -v '^[[:space:]]*$' | sed ':a;N;$!ba;s/\n/\\0/g')
  w reg add "$EMU_KEY" /v Url /t REG_SZ /d "$EMU_URL" /f >/dev/null 2>&1
  w reg add "$EMU_KEY" /v CaPem /t REG_MULTI_SZ /d "$pem" /f >/dev/null 2>&1
  w reg add "$EMU_KEY" /v HeartbeatIntervalSeconds /t REG_DWORD /d 2 /f >/dev/null 2>&1
  out=$(ps_run connect-tenant "$(connect_request "$TOKEN")")
  if grep -q 'not for the registration service' <<<"$(jq -r .error.message <<<"${out:-null}")"; then
    ok "connect-tenant.ps1 with a Graph token: refused ($(jq -r .error.message <<<"$out"))"
  else ko "connect-tenant.ps1 with a Graph token: $out"; fi
  REG_TOKEN=$(emu_token 55747057-9b5d-4bd4-b387-abf52a8bd489 'https://proxy.cloudwebappproxy.net/registerapp/user_impersonation offline_access')
  out=$(ps_run connect-tenant "$(connect_request "$REG_TOKEN")")
  if [ "$(jq -r .ok <<<"${out:-null}")" = true ] && [ -f "$DATA/identity.json" ]; then
    ok "connect-tenant.ps1 with a registration token: ok, identity.json written"
  else ko "connect-tenant.ps1: $out"; fi
  ID=$(jq -r .agentId "$DATA/identity.json" 2>/dev/null || true)
  echo "info the stand-in registered agent $ID"
  t=$SECONDS
  if wait_for 10 hb_is tenant ok; then ok "identity.json: tenant=ok after $((SECONDS - t))s"; else ko "identity.json: tenant=$(field "$HB" tenant)"; fi
  if wait_for 10 is_status active; then ok "emulator: the stand-in's agent is active"; else ko "emulator: $(agent_status)"; fi
  out=$(ps_run add-domain '{"domainName":"lab.example.test","userName":"LAB\\Administrator","password":"x","preferredDomainControllers":["dc2.lab.example.test","dc1.lab.example.test"]}')
  if [ "$(jq -r .ok <<<"${out:-null}")" = true ]; then ok "add-domain.ps1: ok"; else ko "add-domain.ps1: $out"; fi
  if wait_for 10 has_resource lab.example.test; then ok "the heartbeat reported the domain: published resource lab.example.test"; else ko "no published resource for lab.example.test"; fi
  if [ "$(field "$HB" tenant)" = ok ]; then ok "heartbeats with domains: tenant=ok"; else ko "heartbeats with domains: tenant=$(field "$HB" tenant)"; fi

  # The user count: the agent counts on its first beat and every 10th, so each step restarts
  # the service rather than waiting up to 20 s.
  if ! bash "$REPO/deploy/lab/lab.sh" status >/dev/null 2>&1; then
    echo "info the Samba lab is not up (deploy/lab/lab.sh up): user count checks skipped"
  else
    eval "$(bash "$REPO/deploy/lab/lab.sh" env)"
    logged() { grep -qF "$1" "$LOG" 2>/dev/null; }
    restart() { w net stop $SVC >/dev/null 2>&1 || true; w net start $SVC >/dev/null 2>&1 || true; }
    w reg delete "$DIR_KEY" /f >/dev/null 2>&1 || true
    rm -f "$LOG"
    restart
    if wait_for 15 logged "user count lab.example.test: unknown, no userCount sent: no $DIR_KEY"; then
      ok "no $DIR_KEY: the agent's log says the count is unknown"
    else ko "no $DIR_KEY: log: $(tail -n 3 "$LOG" 2>/dev/null | tr -d '\r')"; fi
    # wine.sh takes its lock, which this script holds: let go of it for that one call.
    flock -u 9
    bash "$REPO/deploy/lab/wine.sh" lab-directory "ldaps://$LAB_DC1_IP" "$LAB_CA_PEM" "$LAB_READER_UPN" \
      "$LAB_READER_PASSWORD_FILE" 9>&- 2>/dev/null && rc=0 || rc=$?
    flock -w 600 9
    if [ "$rc" = 0 ]; then ok "wine.sh lab-directory ldaps://$LAB_DC1_IP (CA, $LAB_READER_UPN, password file)"; else ko "wine.sh lab-directory: exit $rc"; fi
    restart
    if wait_for 20 logged "heartbeat with userCount lab.example.test="; then
      n=$(tr -d '\r' <"$LOG" | sed -n 's/.*heartbeat with userCount lab\.example\.test=\([0-9]*\).*/\1/p' | tail -n 1)
      if ((n >= LAB_USER_COUNT)); then
        ok "the agent counted $n users as $LAB_READER_UPN and the emulator took a heartbeat with userCount $n (at least $LAB_USER_COUNT)"
      else ko "userCount $n, expected at least $LAB_USER_COUNT"; fi
    else ko "no heartbeat with userCount; log: $(tail -n 3 "$LOG" 2>/dev/null | tr -d '\r')"; fi
    echo "info agent log: $(grep -F 'user count lab.example.test:' "$LOG" | tail -n 1 | tr -d '\r')"
  fi
fi

cleanup
trap - EXIT
if [ -z "$(sc_state $SVC)" ]; then ok "uninstalled: no $SVC service"; else ko "$SVC still installed"; fi
if $own_work && ((fail == 0)); then rm -rf "$WORK"; fi
echo "tenant smoke: $pass passed, $fail failed"
((fail == 0))
