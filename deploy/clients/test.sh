#!/usr/bin/env bash
# The client tests: the Python client (deploy/clients/python) and the Ansible collection
# (deploy/ansible) against real provd daemons and the Samba AD lab.
#
#   deploy/clients/test.sh [PYTEST_ARGS...]
#
# 1. a venv (PROVD_PY_VENV, default /var/tmp/provd-py-venv) with the pinned packages of
#    deploy/clients/python/requirements-test.txt; kept between runs and rebuilt only when
#    that file or the Python changes (python3-venv is apt-installed if missing: root)
# 2. the provd-client package installed into it (pip builds it: setup.py generates the
#    gRPC stubs from proto/ with grpcio-tools; the generated provd/v1/ is never committed)
# 3. target/debug/provd and provctl (`cargo build --bins` only when missing; PROVD_BIN
#    names another provd, PROVCTL_BIN another provctl, by default the one beside PROVD_BIN)
# 4. the Samba lab up (deploy/lab/lab.sh status, else `lab.sh up`, which needs root)
# 5. pytest over deploy/clients/python/tests and deploy/ansible/tests (lab tests required:
#    PROVD_REQUIRE_LAB=1, so a missing lab fails instead of skipping)
# Prints the time of each step. Extra arguments go to pytest (e.g. -k rollout, -x).
set -euo pipefail
cd "$(dirname "$0")/../.."

VENV=${PROVD_PY_VENV:-/var/tmp/provd-py-venv}
CLIENT=deploy/clients/python
REQUIREMENTS=$CLIENT/requirements-test.txt

now_us() { echo "${EPOCHREALTIME/./}"; }
secs() { # seconds since a now_us mark, one decimal
  local us=$(($(now_us) - $1))
  printf '%d.%d' $((us / 1000000)) $((us % 1000000 / 100000))
}
T0=$(now_us)
TIMES=()
STEP_T=$T0
STEP=""
step() {
  [ -z "$STEP" ] || TIMES+=("$(printf '%6s s  %s' "$(secs "$STEP_T")" "$STEP")")
  STEP=$1
  STEP_T=$(now_us)
  [ -z "$STEP" ] || printf '==> %s\n' "$STEP"
}
summary() {
  local rc=$?
  step ""
  printf '\n'
  printf '%s\n' "${TIMES[@]}"
  printf '%6s s  total (exit %d)\n' "$(secs "$T0")" "$rc"
}
trap summary EXIT

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# A Python >= 3.11 (tomllib) that can make a venv: Debian's, else the first python3 on PATH.
pick_python() {
  local candidate
  for candidate in /usr/bin/python3 "$(command -v python3 || true)"; do
    if [ -z "$candidate" ] || [ ! -x "$candidate" ]; then continue; fi
    if "$candidate" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

step "python venv ($VENV)"
if ! PYTHON=$(pick_python); then
  echo "    installing python3-venv python3-pip"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3 python3-venv python3-pip
  PYTHON=$(pick_python) || { echo "no Python >= 3.11 with venv after installing python3-venv" >&2; exit 1; }
fi
STAMP="$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1) $("$PYTHON" -c 'import sys; print(sys.executable, sys.version.split()[0])')"
if [ -x "$VENV/bin/python" ] && [ "$(cat "$VENV/.provd-stamp" 2>/dev/null)" = "$STAMP" ] &&
  "$VENV/bin/python" -c 'import grpc, grpc_tools, grpc_status, google.rpc, yaml, pytest, ansible' 2>/dev/null; then
  echo "    up to date ($PYTHON)"
else
  echo "    creating with $PYTHON, installing $REQUIREMENTS"
  rm -f "$VENV/.provd-stamp"
  "$PYTHON" -m venv --clear "$VENV"
  pip_t=$(now_us)
  "$VENV/bin/python" -m pip install --disable-pip-version-check -q -r "$REQUIREMENTS"
  echo "    pip install: $(secs "$pip_t") s"
  echo "$STAMP" >"$VENV/.provd-stamp"
fi

step "provd-client package (stubs generated from proto/)"
# --no-build-isolation: setuptools and grpcio-tools come from the venv (no download).
"$VENV/bin/python" -m pip install --disable-pip-version-check -q --no-deps --no-build-isolation --force-reinstall "./$CLIENT"
rm -rf "$CLIENT/build" "$CLIENT"/*.egg-info
"$VENV/bin/python" -c 'import provd, provd.v1.configuration_pb2_grpc; print("    provd", provd.__version__, "from", provd.__file__)'

step "provd binaries"
if [ -n "${PROVD_BIN:-}" ]; then
  echo "    PROVD_BIN=$PROVD_BIN PROVCTL_BIN=${PROVCTL_BIN:-$(dirname "$PROVD_BIN")/provctl}"
elif [ -x target/debug/provd ] && [ -x target/debug/provctl ]; then
  echo "    target/debug/provd and provctl present"
else
  cargo build --locked --bins
fi

step "Samba lab"
if ! deploy/lab/lab.sh status >/dev/null 2>&1; then
  as_root deploy/lab/lab.sh up
fi
deploy/lab/lab.sh status | sed 's/^/    /'

step "pytest (python client + ansible)"
# No bytecode or cache files in the work tree; the daemons' state lives under pytest's tmp.
PYTHONDONTWRITEBYTECODE=1 PROVD_REQUIRE_LAB=1 \
  "$VENV/bin/python" -m pytest -p no:cacheprovider -c "$CLIENT/pyproject.toml" --rootdir deploy \
  "$CLIENT/tests" deploy/ansible/tests "$@"
