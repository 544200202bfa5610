#!/usr/bin/env bash
# The README's main command. Today: builds provd, creates a PKI, starts the
# daemon on 127.0.0.1:18443 and drives it with provctl over mTLS — gRPC and
# the same API as HTTP/JSON — then stops it. Later work grows this into the
# full lab (Samba AD, tenant emulator, Wine Windows host).
set -euo pipefail
cd "$(dirname "$0")/.."

DEMO=.demo
PORT=${DEMO_PORT:-18443}
rm -rf "$DEMO" && mkdir -p "$DEMO"

echo "==> building provd and provctl"
cargo build --release --locked --bins
PROVD=target/release/provd
PROVCTL=target/release/provctl

echo "==> provd pki init $DEMO/pki"
$PROVD pki init "$DEMO/pki" --server-dns localhost --server-ip 127.0.0.1 >/dev/null
ls "$DEMO/pki"

echo "==> starting provd on 127.0.0.1:$PORT"
$PROVD serve --listen "127.0.0.1:$PORT" --state-dir "$DEMO/state" \
  --tls-cert "$DEMO/pki/server.pem" --tls-key "$DEMO/pki/server.key" \
  --tls-client-ca "$DEMO/pki/ca.pem" 2>"$DEMO/provd.log" &
PID=$!
trap 'kill $PID 2>/dev/null || true; wait $PID 2>/dev/null || true' EXIT

ctl() { $PROVCTL --endpoint "https://localhost:$PORT" --pki-dir "$DEMO/pki" "$@"; }
for _ in $(seq 100); do ctl --role viewer health >/dev/null 2>&1 && break; sleep 0.1; done

echo; echo "==> provctl health (viewer certificate)"
ctl --role viewer health
echo; echo "==> provctl agent get"
ctl --role viewer agent get

echo; echo "==> provctl agent install --wait (a stand-in package; this Linux host cannot install it)"
head -c 1048576 /dev/urandom > "$DEMO/AADConnectProvisioningAgentSetup.msi"
SHA=$(sha256sum "$DEMO/AADConnectProvisioningAgentSetup.msi" | cut -d' ' -f1)
ctl --role admin agent install --source "file://$PWD/$DEMO/AADConnectProvisioningAgentSetup.msi" \
  --sha256 "$SHA" --accept-license --request-id demo-1 --wait || echo "(install ended non-zero as expected on Linux)"

echo; echo "==> the viewer may not install (role table)"
ctl --role viewer agent install --source "file://$PWD/$DEMO/x.msi" --sha256 "$SHA" --accept-license || true

echo; echo "==> provctl ops list --output json"
ctl --role viewer --output json ops list

echo; echo "==> the same API as HTTP/JSON (curl with the operator certificate)"
curl -sS --cacert "$DEMO/pki/ca.pem" --cert "$DEMO/pki/client-operator.pem" --key "$DEMO/pki/client-operator.key" \
  -H 'content-type: application/json' -d '{}' "https://localhost:$PORT/provd.v1.AgentService/GetAgent"
echo
echo; echo "==> without a client certificate the handshake is refused"
curl -sS --cacert "$DEMO/pki/ca.pem" "https://localhost:$PORT/healthz" || true

echo; echo "Done. Logs: $DEMO/provd.log; certificates: $DEMO/pki; state: $DEMO/state."
echo "Tear down: the daemon stops with this script; rm -rf $DEMO removes the rest."
