#!/usr/bin/env bash
# lab.sh - a throw-away Samba AD lab on loopback for provd's integration tests.
#
# THIS IS A LAB TOOL. Fixed, published password; self-made CA; never production.
#
# Usage: lab.sh COMMAND
#   up          install packages if missing, provision + snapshot once, start every DC,
#               wait until each answers LDAPS and DNS. Idempotent: a healthy lab just says OK.
#   down        stop every DC (SIGTERM by verified PID, SIGKILL after LAB_STOP_TIMEOUT)
#   reset       stop -> restore the pristine snapshot -> start -> wait ready (seconds)
#   status      each DC: running pid / stopped, ready or not (exit 0 only if all ready)
#   env         print `export` lines for the tests:  eval "$(deploy/lab/lab.sh env)"
#   smoke       quick end-to-end checks against the running lab (LDAPS, SRV, replication)
#   stop-dc N   stop DC N and wait until all its processes are gone
#   start-dc N  start DC N and wait until it is ready
#   logs [N]    tail DC N's samba log (default 1)
#   exec CMD..  run CMD as root inside the lab's name-resolution view (dcN.lab.example.test
#               resolves, DNS = the DCs), e.g. `lab.sh exec kinit Administrator`
#   prepare-host NAME
#               what a domain admin does before the agent wizard runs on host NAME (its
#               NetBIOS name, e.g. AGENT1): an effective KDS root key, the computer account
#               NAME$, minPwdAge 0 (writeback). Idempotent; over LDAPS as Administrator
#   seed-users  the sample directory (already in the snapshot `up` and `reset` restore):
#               OU=SyncPilot with syncpilot01..20 and the group SyncPilotGroup (3 of them),
#               OU=Staff with staff01..05, the computers VM$ (the lab host; its keys in
#               LAB_HOST_KEYTAB) and OTHER$, and the reader account provlabreader (LAB
#               shortcut for the lab agent's user count). Idempotent; over LDAPS as Administrator
#   clean       down, then delete everything lab.sh created under LAB_DIR
#
# Environment:
#   LAB_DIR           state directory (default /var/tmp/provd-lab; refused inside the repo)
#   LAB_DCS           number of DCs, 1 or 2. `up` defaults to 2; the other commands default
#                     to what the last `up` built.
#   LAB_TIMEOUT       seconds to wait for a DC to become ready (default 120)
#   LAB_STOP_TIMEOUT  seconds to wait after SIGTERM before SIGKILL (default 20)
#   LAB_NO_NS=1       do not start samba in a private mount namespace (1 DC only; replication
#                     between two DCs needs the namespace's resolv.conf)
#
# Needs root for everything except env/status/smoke/logs: LDAP (389/636), DNS (53) and
# Kerberos (88) on 127.0.0.x, and mount namespaces. Debian 12 with Samba 4.22 from
# bookworm-backports (pinned to Samba's own packages; an in-place upgrade of a 4.17). See README.md.
set -euo pipefail

# ---------------------------------------------------------------------------------------------
# The lab's identity. Fixed on purpose: tests and static fixtures may rely on every value.
readonly DOMAIN=lab.example.test
readonly REALM=LAB.EXAMPLE.TEST
readonly NETBIOS=LAB
readonly BASE_DN=DC=lab,DC=example,DC=test
readonly DOMAIN_SID=S-1-5-21-1111111111-2222222222-3333333333
readonly ADMIN_PASSWORD='Passw0rd!Lab1'
readonly ADMIN_UPN="Administrator@$DOMAIN"
readonly ADMIN_DN="CN=Administrator,CN=Users,$BASE_DN"
readonly MAX_DCS=2

# The sample directory `seed-users` makes (and every snapshot holds): who the lab agent counts
# and what cloud sync scopes can name. Passwords fixed and published, like the admin's.
readonly SYNCPILOT_OU="OU=SyncPilot,$BASE_DN"
readonly STAFF_OU="OU=Staff,$BASE_DN"
readonly SYNCPILOT_USERS=20 # syncpilot01..20 in OU=SyncPilot
readonly STAFF_USERS=5      # staff01..05 in OU=Staff
readonly SYNCPILOT_GROUP="CN=SyncPilotGroup,$SYNCPILOT_OU"
readonly SYNCPILOT_GROUP_MEMBERS=(syncpilot01 syncpilot02 syncpilot03)
readonly USER_PASSWORD='Passw0rd!User1' # every sample user's
# LAB shortcut: the real agent reads AD as its gMSA; the lab agent (a Linux-built stand-in that
# never retrieves a gMSA password) reads as this ordinary account (deploy/lab/windows/agent/src/ldap.rs).
readonly READER=provlabreader
readonly READER_PASSWORD='Passw0rd!Reader1'
readonly READER_UPN="$READER@$DOMAIN"
readonly READER_DN="CN=$READER,CN=Users,$BASE_DN"
# What `(&(objectCategory=person)(objectClass=user)(!(isCriticalSystemObject=TRUE)))` finds
# under the domain root of a pristine lab: the sample users and the reader (Administrator,
# Guest and krbtgt are critical system objects).
readonly USER_COUNT=$((SYNCPILOT_USERS + STAFF_USERS + 1))
readonly USER_FILTER='(&(objectCategory=person)(objectClass=user)(!(isCriticalSystemObject=TRUE)))'
# The lab host's computer account: what a domain-joined server authenticates as, and the
# principal a gMSA lets retrieve its password. OTHER$ is a computer that is never a principal.
# Password fixed and published; its keys are exported to HOST_KEYTAB for Kerberos binds.
readonly HOST_ACCOUNT=VM
readonly OTHER_ACCOUNT=OTHER
readonly HOST_PASSWORD='Passw0rd!Vm1'

# Samba 4.22 (bookworm-backports): KDS root keys and msDS-ManagedPassword, which 4.17 lacks.
# bind9-dnsutils (dig), krb5-user (kinit, klist) and openssl (our CA) are used by this script.
readonly SAMBA_SERIES=4.22
readonly PACKAGES=(samba-ad-dc samba-ad-provision ldap-utils bind9-dnsutils krb5-user openssl)
readonly BACKPORTS_SOURCE=/etc/apt/sources.list.d/provd-lab-backports.sources
readonly BACKPORTS_PIN=/etc/apt/preferences.d/provd-lab-samba

# Ports a DC binds on its own IP. Anything already answering there (e.g. a distro smbd on
# 0.0.0.0:445) would make samba fail half-way, so `start` refuses early with a clear message.
readonly DC_PORTS=(53 88 135 139 389 445 464 636 3268 3269)

# Bump when the provisioned layout changes: every existing snapshot is then rebuilt.
# 2: the sample directory (seed-users) is part of the snapshot.
# 3: Samba 4.22 at functional level 2016, replication references both ways, VM$ and OTHER$.
readonly SNAPSHOT_FORMAT=3

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
readonly SCRIPT_DIR
LAB_DIR=${LAB_DIR:-/var/tmp/provd-lab}
LAB_TIMEOUT=${LAB_TIMEOUT:-120}
LAB_STOP_TIMEOUT=${LAB_STOP_TIMEOUT:-20}
TLS_DIR=$LAB_DIR/tls
NETCFG=$LAB_DIR/netcfg
LOGS=$LAB_DIR/logs
STATE_FILE=$LAB_DIR/dcs          # how many DCs the dcN/ directories currently hold
HOST_KEYTAB=$LAB_DIR/vm.keytab   # VM$'s keys, exported from dc1 (every enctype, its kvno)
NDCS=                            # set by main() once we know the command

# ---------------------------------------------------------------------------------------------
# Small helpers

say() { printf '[lab %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

# Elapsed seconds since a start mark taken with `t=$(mark)`; pure bash, no fork per call.
mark() { echo "${EPOCHREALTIME/./}"; }
since() {
  local us=$(($(mark) - $1))
  printf '%d.%d' $((us / 1000000)) $((us % 1000000 / 100000))
}

need_root() {
  [ "$(id -u)" = 0 ] || die "lab.sh $1 needs root (ports 53/88/389/636 on 127.0.0.x, mount namespaces): run it with sudo"
}

dc_ip() { echo "127.0.0.$(($1 + 1))"; } # dc1 -> 127.0.0.2, dc2 -> 127.0.0.3
dc_host() { echo "dc$1.$DOMAIN"; }
dc_dir() { echo "$LAB_DIR/dc$1"; }
dc_list() { seq 1 "$NDCS"; }
snapshot_tar() { echo "$LAB_DIR/snapshot-$1dc.tar"; }

# Single-quote a value for the `env` output (the password contains '!').
shq() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

check_lab_dir() {
  case $LAB_DIR in
    /*) ;;
    *) die "LAB_DIR must be an absolute path (got '$LAB_DIR')" ;;
  esac
  # The lab holds 45 MB per DC plus snapshots and private keys: never inside the repository.
  local repo lab
  repo=$(cd "$SCRIPT_DIR/../.." && pwd -P)
  lab=$(realpath -m "$LAB_DIR")
  case $lab/ in
    "$repo"/*) die "LAB_DIR ($lab) is inside the repository ($repo); use a path outside it" ;;
  esac
  [ "$lab" != / ] || die "LAB_DIR must not be /"
}

# Serialise the commands that change state: two test jobs calling `up` at once must not both
# provision. fd 9 is closed for samba itself (see start_dc), or the daemon would hold the lock.
take_lock() {
  mkdir -p "$LAB_DIR"
  exec 9>>"$LAB_DIR/.lock"
  flock -w 900 9 || die "another lab.sh holds $LAB_DIR/.lock"
}

# ---------------------------------------------------------------------------------------------
# Packages

# Debian 12 ships Samba 4.17; its backports carry 4.22. Only Samba's own packages are pinned
# there (without the pin, `-t bookworm-backports` would also take bind9 9.20). Written only when
# the content differs, so a second run changes nothing.
write_if_changed() { # FILE CONTENT
  [ "$(cat "$1" 2>/dev/null)" = "$2" ] && return 1
  printf '%s\n' "$2" >"$1"
}
add_backports() {
  local changed=0
  write_if_changed "$BACKPORTS_SOURCE" "$(printf '%s\n' "Types: deb" \
    "URIs: http://deb.debian.org/debian" "Suites: bookworm-backports" "Components: main" \
    "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg")" && changed=1
  write_if_changed "$BACKPORTS_PIN" "$(printf '%s\n' \
    "# provd lab (deploy/lab/lab.sh): only Samba $SAMBA_SERIES and its own libraries from bookworm-backports." \
    "Package: samba samba-* python3-samba winbind libwbclient0 libsmbclient0 libnss-winbind libpam-winbind smbclient libldb2 python3-ldb ldb-tools libtalloc2 python3-talloc libtdb1 python3-tdb tdb-tools libtevent0 python3-tevent" \
    "Pin: release n=bookworm-backports" "Pin-Priority: 990")" && changed=1
  ((changed)) && say "apt: bookworm-backports added, pinned to Samba's packages ($BACKPORTS_PIN)"
  return 0
}

samba_version() { dpkg-query -W -f='${Version}' samba 2>/dev/null || true; }

install_packages() {
  local p missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^ii' || missing+=("$p")
  done
  # Present is not enough: a 4.17 from Debian 12 itself is upgraded in place (the two cannot be
  # installed side by side), and its snapshot is rebuilt because snapshot_meta names the version.
  [[ $(samba_version) == 2:$SAMBA_SERIES.* ]] || [[ " ${missing[*]} " == *" samba-ad-dc "* ]] || missing+=(samba-ad-dc)
  ((${#missing[@]})) || return 0
  command -v apt-get >/dev/null || die "missing packages (${missing[*]}) and no apt-get: this lab wants Debian 12"
  add_backports

  local t log=$LOGS/apt.log rc=0 policy=/usr/sbin/policy-rc.d ours='# provd-lab: temporary'
  t=$(mark)
  mkdir -p "$LOGS"
  say "installing ${missing[*]} (log: $log)"
  # The samba package's postinst would start the distro smbd/nmbd on a systemd host. smbd on
  # 0.0.0.0:445 blocks the lab's DCs, so ask invoke-rc.d not to start anything during the
  # install, unless the machine already has its own policy (containers often do).
  local added_policy=0
  if [ ! -e "$policy" ] || grep -qF "$ours" "$policy"; then
    printf '#!/bin/sh\n%s\nexit 101\n' "$ours" >"$policy"
    chmod 755 "$policy"
    added_policy=1
  fi
  {
    apt-get update &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
  } >"$log" 2>&1 || rc=$?
  ((added_policy)) && rm -f "$policy"
  if ((rc)); then
    tail -n 25 "$log" >&2
    die "apt-get failed (exit $rc); full log: $log. To go back to Debian 12's Samba: rm $BACKPORTS_SOURCE $BACKPORTS_PIN; apt-get update; apt-get install --allow-downgrades samba-ad-dc/bookworm samba/bookworm"
  fi
  [[ $(samba_version) == 2:$SAMBA_SERIES.* ]] ||
    die "samba is $(samba_version) after the install, not $SAMBA_SERIES (apt-cache policy samba; $BACKPORTS_PIN)"
  say "packages installed in $(since "$t")s"
}

# ---------------------------------------------------------------------------------------------
# Name resolution seen by samba.
#
# DRS replication finds its partner as <ntds-guid>._msdcs.lab.example.test through the host
# resolver, which cannot see the DCs' DNS. Rather than touch the host's /etc/resolv.conf, each
# samba runs in a private mount namespace where /etc/hosts and /etc/resolv.conf are bind mounts
# of files under $NETCFG (pointing at the DCs, own DC first).

write_netcfg() {
  local n m
  mkdir -p "$NETCFG"
  {
    echo "127.0.0.1 localhost $(cat /proc/sys/kernel/hostname)"
    echo "::1 localhost ip6-localhost ip6-loopback"
    for n in $(dc_list); do echo "$(dc_ip "$n") $(dc_host "$n") dc$n"; done
  } >"$NETCFG/hosts"
  for n in $(dc_list); do
    mkdir -p "$NETCFG/dc$n"
    {
      echo "search $DOMAIN"
      echo "nameserver $(dc_ip "$n")"
      for m in $(dc_list); do [ "$m" = "$n" ] || echo "nameserver $(dc_ip "$m")"; done
      echo "options timeout:1 attempts:2"
    } >"$NETCFG/dc$n/resolv.conf"
  done
  # For kinit and provd's Kerberos binds from the host (KRB5_CONFIG): its own config names the
  # KDCs and service names are used as given, so no DNS lookup leaves for the host's resolver.
  {
    printf '[libdefaults]\n\tdefault_realm = %s\n\tdns_lookup_realm = false\n' "$REALM"
    printf '\tdns_lookup_kdc = false\n\trdns = false\n\tdns_canonicalize_hostname = false\n' 
    printf '\n[realms]\n\t%s = {\n' "$REALM"
    for n in $(dc_list); do printf '\t\tkdc = %s\n' "$(dc_ip "$n")"; done
    printf '\t\tadmin_server = %s\n\t}\n\n[domain_realm]\n' "$(dc_ip 1)"
    printf '\t.%s = %s\n\t%s = %s\n' "$DOMAIN" "$REALM" "$DOMAIN" "$REALM"
  } >"$LAB_DIR/krb5.conf"
  chmod 644 "$LAB_DIR/krb5.conf" "$NETCFG/hosts" "$NETCFG"/dc*/resolv.conf
}

# The reader's password as a file (mode 600, root's), for what must not put it on a command
# line: `wine.sh lab-directory URL CA BIND PASSWORD_FILE` (deploy/demo.sh). No newline, so
# that `ldapsearch -y` takes it as it is.
reader_password_file() { echo "$LAB_DIR/reader.password"; }
write_reader_password() {
  local f
  f=$(reader_password_file)
  (
    umask 077
    printf '%s' "$READER_PASSWORD" >"$f.tmp"
  )
  mv "$f.tmp" "$f"
}

USE_NS=
decide_namespace() {
  if [ "${LAB_NO_NS:-0}" = 1 ]; then
    USE_NS=0
    ((NDCS == 1)) || say "warning: LAB_NO_NS=1 with $NDCS DCs: replication between DCs will fail"
  elif unshare --mount --propagation private true 2>/dev/null; then
    USE_NS=1
  elif ((NDCS == 1)); then
    say "note: no mount namespaces here (need CAP_SYS_ADMIN); fine for 1 DC"
    USE_NS=0
  else
    die "cannot create a mount namespace (need CAP_SYS_ADMIN); 2 DCs need it for replication. Use LAB_DCS=1."
  fi
}

# in_lab_ns N CMD...: run CMD with DC N's view of hosts/resolv.conf (or plainly, without ns).
in_lab_ns() {
  local n=$1
  shift
  if [ "$USE_NS" = 1 ]; then
    # shellcheck disable=SC2016 # $1/$2 expand inside the inner sh, on purpose
    unshare --mount --propagation private -- sh -c \
      'mount --bind "$1" /etc/hosts && mount --bind "$2" /etc/resolv.conf && shift 2 && exec "$@"' \
      lab-ns "$NETCFG/hosts" "$NETCFG/dc$n/resolv.conf" "$@"
  else
    "$@"
  fi
}

# ---------------------------------------------------------------------------------------------
# Certificates.
#
# Samba's auto-generated certificate has a CN only, no subjectAltName: OpenSSL refuses it for
# an IP, and rustls/webpki ignores CNs altogether. So the lab has its own CA and gives each DC
# a certificate with SANs for its FQDN, the domain name and its IP.

make_ca() {
  [ -s "$TLS_DIR/ca.pem" ] && [ -s "$TLS_DIR/ca.key" ] && return 0
  mkdir -p "$TLS_DIR"
  chmod 755 "$TLS_DIR" # tests run by a non-root user read ca.pem
  openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 \
    -subj "/O=provd lab/CN=provd lab CA (TEST ONLY)" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$TLS_DIR/ca.key" -out "$TLS_DIR/ca.pem" 2>"$LOGS/openssl.log"
  chmod 600 "$TLS_DIR/ca.key"
  chmod 644 "$TLS_DIR/ca.pem"
}

ca_fingerprint() { openssl x509 -noout -fingerprint -sha256 -in "$TLS_DIR/ca.pem" | cut -d= -f2; }

# Installs into samba's default paths (private/tls/{key,cert,ca}.pem), so smb.conf needs no
# tls options and samba never auto-generates its own (which also costs ~3 s on first start).
make_dc_cert() {
  local n=$1 d
  d=$(dc_dir "$n")/private/tls
  mkdir -p "$d"
  openssl req -newkey rsa:2048 -nodes -sha256 -subj "/O=provd lab/CN=$(dc_host "$n")" \
    -keyout "$d/key.pem" -out "$d/req.csr" 2>>"$LOGS/openssl.log"
  openssl x509 -req -in "$d/req.csr" -CA "$TLS_DIR/ca.pem" -CAkey "$TLS_DIR/ca.key" \
    -set_serial "0x$(openssl rand -hex 16)" -days 3650 -sha256 -out "$d/cert.pem" \
    -extfile <(printf '%s\n' \
      "subjectAltName=DNS:$(dc_host "$n"),DNS:$DOMAIN,IP:$(dc_ip "$n")" \
      "basicConstraints=critical,CA:FALSE" \
      "keyUsage=critical,digitalSignature,keyEncipherment" \
      "extendedKeyUsage=serverAuth" \
      "subjectKeyIdentifier=hash" \
      "authorityKeyIdentifier=keyid") 2>>"$LOGS/openssl.log"
  rm -f "$d/req.csr"
  cp "$TLS_DIR/ca.pem" "$d/ca.pem"
  # samba refuses to start with a group/world-readable key (CVE-2013-4476 check).
  chmod 600 "$d/key.pem"
  chmod 644 "$d/cert.pem" "$d/ca.pem"
}

# ---------------------------------------------------------------------------------------------
# Processes.
#
# PID 1 on some machines (this VM included) does not reap orphans, so a dead samba can linger
# as a zombie and its pid can be reused. A pid file is only trusted when /proc/PID/exe is the
# expected binary; zombies have no exe and count as gone.

pid_is() { # pid_is PID BINARY-NAME
  local exe comm
  [ -n "$1" ] && [ -d "/proc/$1" ] || return 1
  if exe=$(readlink "/proc/$1/exe" 2>/dev/null); then
    case $exe in */sbin/"$2" | */sbin/"$2"" (deleted)") return 0 ;; esac
    return 1
  fi
  # Non-root callers (status) cannot read another user's exe link; fall back to the name,
  # and treat zombies as dead.
  read -r comm 2>/dev/null <"/proc/$1/comm" || return 1
  [ "${comm%% *}" = "$2" ] || [ "${comm#"$2"}" != "$comm" ] || return 1
  ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}

pid_from_file() { # prints the pid in FILE if it is a live BINARY, else nothing
  local p
  [ -r "$1" ] || return 0
  p=$(tr -dc 0-9 <"$1")
  if pid_is "$p" "$2"; then echo "$p"; fi
}

dc_pid() { pid_from_file "$(dc_dir "$1")/run/samba.pid" samba; }

# Live (non-zombie) processes whose session id is one of the given ids. samba -D is a session
# leader (setsid) and so is the smbd it spawns; every prefork worker stays in one of the two.
session_members() {
  local f line rest state sid s p
  for f in /proc/[0-9]*/stat; do
    read -r line 2>/dev/null <"$f" || continue
    rest=${line##*) }
    read -r state _ _ sid _ <<<"$rest"
    [ "$state" = Z ] && continue
    for s in "$@"; do
      if [ "$sid" = "$s" ]; then
        p=${f#/proc/}
        echo "${p%/stat}"
      fi
    done
  done
}

session_of() {
  local line rest sid
  read -r line 2>/dev/null <"/proc/$1/stat" || return 0
  rest=${line##*) }
  read -r _ _ _ sid _ <<<"$rest"
  echo "$sid"
}

# Something other than our samba answering on a DC port would make samba die half-started.
check_ports_free() {
  local n=$1 ip port busy=()
  ip=$(dc_ip "$n")
  for port in "${DC_PORTS[@]}"; do
    # shellcheck disable=SC2016
    if timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$ip" "$port" 2>/dev/null; then busy+=("$port"); fi
  done
  ((${#busy[@]} == 0)) && return 0
  die "dc$n: TCP port(s) ${busy[*]} on $ip already answer but dc$n is not running (a distro smbd/named on 0.0.0.0? a samba from another LAB_DIR?). Free them first."
}

start_dc() {
  local n=$1 d p
  d=$(dc_dir "$n")
  [ -f "$d/etc/smb.conf" ] || die "dc$n is not provisioned ($d); run: lab.sh up"
  p=$(dc_pid "$n")
  if [ -n "$p" ]; then
    say "dc$n already running (pid $p)"
    return 0
  fi
  check_ports_free "$n"
  mkdir -p "$d/run" "$d/log"
  # A stale pid file would make wait_ready look at a dead pid; samba writes a fresh one.
  rm -f "$d/run/samba.pid" "$d/run/smbd.pid"
  # prefork: samba's default, and the only model that works with two DCs (with -M single a DC
  # blocks on its own DNS during replication and both DCs stop answering).
  # Close stdio and the lock fd: the daemon must not keep a caller's pipe or our lock open.
  in_lab_ns "$n" samba -D -M prefork -s "$d/etc/smb.conf" -l "$d/log" \
    </dev/null >>"$d/log/samba.stdout" 2>&1 9>&- ||
    { tail_log "$n" >&2; die "dc$n: samba failed to start"; }
}

# One probe, short timeouts: LDAPS simple bind as Administrator verifying the lab CA and the IP
# SAN, then the DC's DNS must serve the DC locator SRV record.
probe_ready() {
  local ip
  ip=$(dc_ip "$1")
  LDAPTLS_CACERT=$TLS_DIR/ca.pem LDAPTLS_REQCERT=demand \
    ldapsearch -x -LLL -o nettimeout=3 -H "ldaps://$ip" -D "$ADMIN_UPN" -w "$ADMIN_PASSWORD" \
    -s base -b "" dnsHostName >/dev/null 2>&1 || return 1
  [ -n "$(dig +short +time=1 +tries=1 @"$ip" "_ldap._tcp.dc._msdcs.$DOMAIN" SRV 2>/dev/null)" ]
}

wait_ready() {
  local n=$1 t deadline seen=0
  t=$(mark)
  deadline=$((SECONDS + LAB_TIMEOUT))
  until probe_ready "$n"; do
    # samba -D returns before the daemon writes its pid file: a missing pid means "died" only
    # once we saw it, or after a grace period.
    if [ -n "$(dc_pid "$n")" ]; then
      seen=1
    elif ((seen)) || (($(since "$t" | cut -d. -f1) >= 10)); then
      tail_log "$n" >&2
      die "dc$n ($(dc_ip "$n")) exited while starting; log above, full: $(dc_dir "$n")/log/log.samba"
    fi
    if ((SECONDS >= deadline)); then
      tail_log "$n" >&2
      die "dc$n ($(dc_ip "$n")) not ready after ${LAB_TIMEOUT}s (LDAPS bind + DNS SRV); log above"
    fi
    sleep 0.2
  done
  say "dc$n ready on $(dc_ip "$n") after $(since "$t")s"
}

stop_dc() {
  local n=$1 d p smbd sessions left t
  d=$(dc_dir "$n")
  p=$(dc_pid "$n")
  [ -n "$p" ] || return 0
  t=$(mark)
  sessions=("$(session_of "$p")")
  smbd=$(pid_from_file "$d/run/smbd.pid" smbd)
  [ -n "$smbd" ] && sessions+=("$(session_of "$smbd")")
  kill -TERM "$p" 2>/dev/null || true
  local deadline=$((SECONDS + LAB_STOP_TIMEOUT)) killed=0
  while left=$(session_members "${sessions[@]}") && [ -n "$left" ]; do
    if ((SECONDS >= deadline)); then
      ((killed)) && die "dc$n: processes survive SIGKILL: $(echo "$left" | tr '\n' ' ')"
      say "dc$n: still running ${LAB_STOP_TIMEOUT}s after SIGTERM; SIGKILL"
      # shellcheck disable=SC2086 # one pid per word
      kill -KILL $left 2>/dev/null || true
      killed=1
      deadline=$((SECONDS + 10))
    fi
    sleep 0.1
  done
  say "dc$n stopped in $(since "$t")s"
}

stop_all() {
  local n pids=()
  # In parallel: each DC takes ~1.3 s to shut down.
  for n in $(seq 1 "$MAX_DCS"); do
    stop_dc "$n" &
    pids+=($!)
  done
  for n in "${pids[@]}"; do wait "$n"; done
}

tail_log() {
  local f
  f=$(dc_dir "$1")/log/log.samba
  if [ -f "$f" ]; then
    echo "---- last lines of $f ----"
    tail -n "${2:-30}" "$f"
    echo "----"
  fi
}

# ---------------------------------------------------------------------------------------------
# The lab admin over LDAPS (prepare-host, seed-users and the snapshot's sample directory)

# The first DC that is ready, as an LDAPS URL.
ready_dc_url() {
  local n
  for n in $(dc_list); do
    if probe_ready "$n"; then
      echo "ldaps://$(dc_ip "$n")"
      return 0
    fi
  done
  return 1
}

# admin_ldap URL TOOL ARGS...: an ldap-utils TOOL bound as the lab admin, the lab CA verified.
admin_ldap() {
  local url=$1 tool=$2
  shift 2
  LDAPTLS_CACERT=$TLS_DIR/ca.pem LDAPTLS_REQCERT=demand \
    "$tool" -x -o nettimeout=10 -H "$url" -D "$ADMIN_UPN" -w "$ADMIN_PASSWORD" "$@"
}

# admin_add URL LDIF: 0 when added or already there (68), else dies with the error.
admin_add() {
  local out rc=0
  out=$(admin_ldap "$1" ldapadd <<<"$2" 2>&1) || rc=$?
  [ "$rc" = 0 ] || [ "$rc" = 68 ] || die "ldapadd on $1 failed (rc $rc): $out"
}

# admin_modify URL LDIF: dies on any error.
admin_modify() {
  local out rc=0
  out=$(admin_ldap "$1" ldapmodify <<<"$2" 2>&1) || rc=$?
  [ "$rc" = 0 ] || die "ldapmodify on $1 failed (rc $rc): $out"
}

# AD's unicodePwd value: the password in double quotes, UTF-16LE, base64 (LDAPS only).
unicode_pwd() { printf '"%s"' "$1" | iconv -f UTF-8 -t UTF-16LE | base64 -w0; }

# user_ldif CN CONTAINER PASSWORD DESCRIPTION [GIVEN SN]: an enabled user (512), UPN CN@domain.
user_ldif() {
  printf '%s\n' "dn: CN=$1,$2" "objectClass: user" "cn: $1" "sAMAccountName: $1" \
    "userPrincipalName: $1@$DOMAIN" "description: $4" "unicodePwd:: $(unicode_pwd "$3")" \
    "userAccountControl: 512"
  if [ -n "${5:-}" ]; then printf '%s\n' "givenName: $5" "sn: $6" "displayName: $5 $6"; fi
  echo
}

# A domain member's computer account (userAccountControl 4096, WORKSTATION_TRUST_ACCOUNT) with
# the lab host password, under CN=Computers.
computer_dn() { echo "CN=$1,CN=Computers,$BASE_DN"; }
computer_ldif() { # NAME
  printf '%s\n' "dn: $(computer_dn "$1")" "objectClass: computer" "sAMAccountName: $1\$" \
    "dNSHostName: ${1,,}.$DOMAIN" "userAccountControl: 4096" \
    "description: provd lab host account (published password)" \
    "unicodePwd:: $(unicode_pwd "$HOST_PASSWORD")"
  echo
}

# The sample users' names: syncpilot01..20, staff01..05.
sample_users() { # PREFIX COUNT
  local i
  for i in $(seq 1 "$2"); do printf '%s%02d\n' "$1" "$i"; done
}

# count_users URL: what the lab agent counts (USER_FILTER under the domain root, paged).
count_users() {
  admin_ldap "$1" ldapsearch -LLL -o ldif-wrap=no -E pr=500/noprompt -b "$BASE_DN" "$USER_FILTER" 1.1 |
    grep -c '^dn: ' || true
}

# seed_users URL: the sample directory on that DC, what is missing only (and the reader's
# password and enabled state set again, so the lab agent can bind). Prints what it did.
seed_users() {
  local url=$1 out rc=0 present ldif="" name dn missing=() created=0 members=()
  # Every DN seed-users makes that is there already (lower case, one per line).
  out=$(admin_ldap "$url" ldapsearch -LLL -o ldif-wrap=no -b "$BASE_DN" \
    "(|(ou=SyncPilot)(ou=Staff)(cn=SyncPilotGroup)(sAMAccountName=$READER)(sAMAccountName=syncpilot*)(sAMAccountName=staff*)(sAMAccountName=$HOST_ACCOUNT\$)(sAMAccountName=$OTHER_ACCOUNT\$))" \
    1.1 2>&1) || rc=$?
  [ "$rc" = 0 ] || die "cannot search $BASE_DN on $url (rc $rc): $out"
  present=$(sed -n 's/^dn: //p' <<<"$out" | tr '[:upper:]' '[:lower:]')
  has() { grep -Fxq "${1,,}" <<<"$present"; }

  for dn in "$SYNCPILOT_OU" "$STAFF_OU"; do
    if has "$dn"; then echo "${dn%%,*}: present"; else
      ldif+=$(printf '%s\n' "dn: $dn" "objectClass: organizationalUnit" "")$'\n\n'
      echo "${dn%%,*}: created"
    fi
  done
  for name in $(sample_users syncpilot "$SYNCPILOT_USERS"); do
    has "CN=$name,$SYNCPILOT_OU" && continue
    ldif+=$(user_ldif "$name" "$SYNCPILOT_OU" "$USER_PASSWORD" "provd lab sample user (cloud sync pilot)" SyncPilot "User ${name#syncpilot}")$'\n\n'
    created=$((created + 1))
  done
  for name in $(sample_users staff "$STAFF_USERS"); do
    has "CN=$name,$STAFF_OU" && continue
    ldif+=$(user_ldif "$name" "$STAFF_OU" "$USER_PASSWORD" "provd lab sample user" Staff "User ${name#staff}")$'\n\n'
    created=$((created + 1))
  done
  echo "users: $SYNCPILOT_USERS in OU=SyncPilot, $STAFF_USERS in OU=Staff ($created created)"
  if has "$READER_DN"; then
    echo "reader $READER_UPN: present (password and account enabled set again)"
  else
    ldif+=$(user_ldif "$READER" "CN=Users,$BASE_DN" "$READER_PASSWORD" \
      "LAB shortcut: the lab agent reads AD as this account (the real agent uses its gMSA)")$'\n\n'
    echo "reader $READER_UPN: created"
  fi
  for name in "$HOST_ACCOUNT" "$OTHER_ACCOUNT"; do
    if has "$(computer_dn "$name")"; then echo "computer $name\$: present"; else
      ldif+=$(computer_ldif "$name")$'\n\n'
      echo "computer $name\$: created"
    fi
  done
  for name in "${SYNCPILOT_GROUP_MEMBERS[@]}"; do members+=("member: CN=$name,$SYNCPILOT_OU"); done
  if ! has "$SYNCPILOT_GROUP"; then
    # groupType -2147483646: a global security group.
    ldif+=$(printf '%s\n' "dn: $SYNCPILOT_GROUP" "objectClass: group" "cn: SyncPilotGroup" \
      "sAMAccountName: SyncPilotGroup" "groupType: -2147483646" \
      "description: provd lab sample group (cloud sync pilot scope)" "${members[@]}" "")$'\n\n'
    echo "group ${SYNCPILOT_GROUP%%,*}: created, members ${SYNCPILOT_GROUP_MEMBERS[*]}"
  fi
  [ -z "$ldif" ] || admin_add "$url" "$ldif"

  if has "$SYNCPILOT_GROUP"; then
    # Present: the members it must have (a member that is there already is left alone).
    out=$(admin_ldap "$url" ldapsearch -LLL -o ldif-wrap=no -s base -b "$SYNCPILOT_GROUP" member 2>&1) ||
      die "cannot read $SYNCPILOT_GROUP on $url: $out"
    missing=()
    for name in "${SYNCPILOT_GROUP_MEMBERS[@]}"; do
      grep -Fxqi "member: CN=$name,$SYNCPILOT_OU" <<<"$out" || missing+=("member: CN=$name,$SYNCPILOT_OU")
    done
    if ((${#missing[@]})); then
      admin_modify "$url" "$(printf '%s\n' "dn: $SYNCPILOT_GROUP" "changetype: modify" "add: member" "${missing[@]}" "-")"
      echo "group ${SYNCPILOT_GROUP%%,*}: present, ${#missing[@]} member(s) added"
    else
      echo "group ${SYNCPILOT_GROUP%%,*}: present, members ${SYNCPILOT_GROUP_MEMBERS[*]}"
    fi
  fi
  if has "$READER_DN"; then
    admin_modify "$url" "$(printf '%s\n' "dn: $READER_DN" "changetype: modify" "replace: unicodePwd" \
      "unicodePwd:: $(unicode_pwd "$READER_PASSWORD")" "-" "replace: userAccountControl" \
      "userAccountControl: 512" "-")"
  fi
}

# ---------------------------------------------------------------------------------------------
# Provisioning and snapshot

# Per-DC options. Everything lives under dcN/ (nothing in /etc/samba, /var/lib/samba or
# /run/samba). nbt would bind 127.255.255.255:137/138, shared by all DCs, so it and wrepl are
# off; winbindd is not needed by a DC used over LDAP (4.22's samba-ad-dc installs it anyway).
# `ad dc functional level`: without it Samba 4.22 refuses a 2016 domain ("higher than its
# actual DC function level (2008 R2)"), both at provision and at join.
dc_options() {
  local n=$1 d
  d=$(dc_dir "$n")
  printf '%s\n' \
    "--option=interfaces = $(dc_ip "$n")/8" \
    "--option=bind interfaces only = yes" \
    "--option=pid directory = $d/run" \
    "--option=ncalrpc dir = $d/run/ncalrpc" \
    "--option=winbindd socket directory = $d/run/winbindd" \
    "--option=ntp signd socket directory = $d/run/ntp_signd" \
    "--option=server services = -winbindd -nbt -wrepl" \
    "--option=log file = $d/log/log.samba" \
    "--option=dns forwarder = " \
    "--option=ad dc functional level = 2016"
}

admin_creds() { echo "Administrator%$ADMIN_PASSWORD"; }

snapshot_meta() { # what a snapshot for N DCs must have been built with
  printf 'format=%s\nsamba=%s\ndcs=%s\ndomain=%s\nsid=%s\nca=%s\n' "$SNAPSHOT_FORMAT" \
    "$(dpkg-query -W -f='${Version}' samba)" "$1" "$DOMAIN" "$DOMAIN_SID" "$(ca_fingerprint)"
}

snapshot_valid() {
  local n=$1
  [ -f "$(snapshot_tar "$n")" ] && [ -s "$TLS_DIR/ca.pem" ] || return 1
  [ "$(cat "$(snapshot_tar "$n").meta" 2>/dev/null)" = "$(snapshot_meta "$n")" ]
}

provision_dc1() {
  local d opts t
  d=$(dc_dir 1)
  mapfile -t opts < <(dc_options 1)
  mkdir -p "$d/run" "$d/log"
  t=$(mark)
  say "provisioning $DOMAIN on dc1 (2019 schema, 2016 level; log: $LOGS/provision-dc1.log)"
  # -s /dev/null: otherwise Debian's /etc/samba/smb.conf ([homes], log paths, ...) leaks into
  # the generated dc1/etc/smb.conf. 2016 is the highest function level Samba 4.22 has; it also
  # creates a KDS root key usable from ~10 h before provision, so gMSAs need no extra step.
  samba-tool domain provision -s /dev/null \
    --realm="$REALM" --domain="$NETBIOS" --server-role=dc --dns-backend=SAMBA_INTERNAL \
    --adminpass="$ADMIN_PASSWORD" --base-schema=2019 --function-level=2016 \
    --use-rfc2307 --host-name=dc1 --host-ip="$(dc_ip 1)" --domain-sid="$DOMAIN_SID" \
    --targetdir="$d" "${opts[@]}" >"$LOGS/provision-dc1.log" 2>&1 ||
    { tail -n 25 "$LOGS/provision-dc1.log" >&2; die "provision failed"; }
  # The default 42-day maximum password age would lock the Administrator out of an old snapshot.
  samba-tool domain passwordsettings set --max-pwd-age=0 \
    -s "$d/etc/smb.conf" -H "$d/private/sam.ldb" >>"$LOGS/provision-dc1.log" 2>&1 ||
    { tail -n 25 "$LOGS/provision-dc1.log" >&2; die "passwordsettings failed"; }
  say "dc1 provisioned in $(since "$t")s"
}

join_dc() {
  local n=$1 d opts t log=$LOGS/join-dc$1.log
  d=$(dc_dir "$n")
  mapfile -t opts < <(dc_options "$n")
  mkdir -p "$d/run" "$d/log"
  t=$(mark)
  say "joining dc$n as a second DC (log: $log)"
  in_lab_ns "$n" samba-tool domain join "$DOMAIN" DC -s /dev/null --server="$(dc_ip 1)" \
    -U"$(admin_creds)" -W "$NETBIOS" --realm="$REALM" --dns-backend=SAMBA_INTERNAL \
    --targetdir="$d" --option="netbios name = DC$n" "${opts[@]}" >"$log" 2>&1 ||
    { tail -n 25 "$log" >&2; die "join of dc$n failed"; }
  say "dc$n joined in $(since "$t")s"
}

# The join of a loopback-only DC registers no DNS records ("No IPv4 address will be assigned").
# Register its A/SRV records through dc1's RPC, then replicate every naming context once in
# each direction with --add-ref: on 4.22 the join leaves neither DC with outbound neighbours
# (repsTo), so without the references a change waits for the 5-minute periodic pull.
register_dc_dns() {
  local n=$1 d log=$LOGS/dns-dc$1.log nc t
  d=$(dc_dir "$n")
  t=$(mark)
  in_lab_ns "$n" samba_dnsupdate -s "$d/etc/smb.conf" --current-ip="$(dc_ip "$n")" \
    --use-samba-tool --rpc-server-ip="$(dc_ip 1)" --all-names >"$log" 2>&1 ||
    { tail -n 25 "$log" >&2; die "samba_dnsupdate for dc$n failed"; }
  for nc in "DC=DomainDnsZones,$BASE_DN" "DC=ForestDnsZones,$BASE_DN" "$BASE_DN" \
    "CN=Configuration,$BASE_DN" "CN=Schema,CN=Configuration,$BASE_DN"; do
    in_lab_ns "$n" samba-tool drs replicate "$(dc_ip "$n")" DC1 "$nc" --add-ref -s "$d/etc/smb.conf" \
      -U"$(admin_creds)" --use-kerberos=off >>"$log" 2>&1 ||
      { tail -n 25 "$log" >&2; die "drs replicate $nc into dc$n failed"; }
    in_lab_ns 1 samba-tool drs replicate "$(dc_ip 1)" "DC$n" "$nc" --add-ref -s "$(dc_dir 1)/etc/smb.conf" \
      -U"$(admin_creds)" --use-kerberos=off >>"$log" 2>&1 ||
      { tail -n 25 "$log" >&2; die "drs replicate $nc from dc$n into dc1 failed"; }
  done
  say "dc$n DNS records registered and replicated in $(since "$t")s"
}

# Every DNS server must list every DC before we freeze the state in the snapshot.
wait_srv_complete() {
  local deadline=$((SECONDS + 60)) n m answer ok
  while :; do
    ok=1
    for n in $(dc_list); do
      answer=$(dig +short +time=1 +tries=1 @"$(dc_ip "$n")" "_ldap._tcp.dc._msdcs.$DOMAIN" SRV 2>/dev/null || true)
      for m in $(dc_list); do
        grep -qi " $(dc_host "$m")\.\$" <<<"$answer" || ok=0
      done
    done
    ((ok)) && return 0
    ((SECONDS < deadline)) || die "the DC SRV records are incomplete after 60s (see $LOGS/dns-dc*.log)"
    sleep 0.5
  done
}

# Builds the pristine state for $NDCS DCs (with the sample directory of seed-users) and saves
# it as a tar. Leaves the DCs stopped with their directories equal to the snapshot.
build_snapshot() {
  local t0 t n tar
  t0=$(mark)
  tar=$(snapshot_tar "$NDCS")
  stop_all
  rm -f "$STATE_FILE" "$tar" "$tar.meta"
  for n in $(seq 1 "$MAX_DCS"); do rm -rf "$(dc_dir "$n")"; done
  make_ca
  provision_dc1
  make_dc_cert 1
  start_dc 1
  wait_ready 1
  # The sample directory before any join: a joining DC copies it with the rest.
  t=$(mark)
  (seed_users "ldaps://$(dc_ip 1)") >"$LOGS/seed-users.log" 2>&1 ||
    { cat "$LOGS/seed-users.log" >&2; die "seeding the sample directory failed"; }
  say "sample directory seeded in $(since "$t")s (log: $LOGS/seed-users.log)"
  for n in $(seq 2 "$NDCS"); do
    join_dc "$n"
    make_dc_cert "$n"
    start_dc "$n"
    wait_ready "$n"
    register_dc_dns "$n"
  done
  wait_srv_complete
  stop_all
  local dirs=()
  t=$(mark)
  for n in $(dc_list); do dirs+=("dc$n"); done
  # --xattrs/--acls: sysvol keeps its NT ACLs in security.NTACL xattrs and POSIX ACLs.
  # run/ and msg.sock/ hold pid files and sockets of the stopped daemons, log/ is per run;
  # the ldapi sockets in private/ are skipped silently (samba recreates them).
  tar -C "$LAB_DIR" --xattrs --xattrs-include='*' --acls --sparse \
    --warning=no-file-ignored --exclude='dc*/run' --exclude='dc*/log' --exclude='dc*/msg.sock' \
    -cf "$tar.tmp" "${dirs[@]}"
  mv "$tar.tmp" "$tar"
  export_host_keytab
  snapshot_meta "$NDCS" >"$tar.meta"
  echo "$NDCS" >"$STATE_FILE"
  say "snapshot $(basename "$tar") ($(du -h "$tar" | cut -f1)) written in $(since "$t")s; built in $(since "$t0")s"
}

# VM$'s keytab, what a domain-joined Linux host has in /etc/krb5.keytab. Read from dc1's own
# database, so it holds the exact kvno and salt; the snapshot fixes both, so it is made once
# per snapshot. World-readable like the published password it derives from (lab only).
export_host_keytab() {
  local log=$LOGS/keytab.log
  rm -f "$HOST_KEYTAB"
  samba-tool domain exportkeytab "$HOST_KEYTAB" --principal="$HOST_ACCOUNT\$" \
    -s "$(dc_dir 1)/etc/smb.conf" >"$log" 2>&1 || { tail -n 25 "$log" >&2; die "exporting $HOST_ACCOUNT\$'s keytab failed"; }
  chmod 644 "$HOST_KEYTAB"
}

restore_snapshot() {
  local t n
  t=$(mark)
  for n in $(seq 1 "$MAX_DCS"); do rm -rf "$(dc_dir "$n")"; done
  tar -C "$LAB_DIR" --xattrs --xattrs-include='*' --acls -xf "$(snapshot_tar "$NDCS")"
  echo "$NDCS" >"$STATE_FILE"
  say "snapshot restored in $(since "$t")s"
}

start_all_and_wait() {
  local n
  for n in $(dc_list); do start_dc "$n"; done
  for n in $(dc_list); do wait_ready "$n"; done
}

# ---------------------------------------------------------------------------------------------
# Commands

cmd_up() {
  need_root up
  local t0 n healthy=1
  t0=$(mark)
  take_lock
  mkdir -p "$LOGS"
  chmod 755 "$LAB_DIR"
  install_packages
  decide_namespace
  write_netcfg
  write_reader_password
  make_ca
  if ! snapshot_valid "$NDCS"; then
    build_snapshot
  elif [ "$(cat "$STATE_FILE" 2>/dev/null)" != "$NDCS" ] || [ ! -f "$(dc_dir 1)/etc/smb.conf" ]; then
    say "switching the lab to $NDCS DC(s) from its snapshot"
    stop_all
    restore_snapshot
  fi
  # A DC that runs and answers is left alone: `up` never resets state (that is `reset`).
  for n in $(dc_list); do
    if [ -z "$(dc_pid "$n")" ] || ! probe_ready "$n"; then healthy=0; fi
  done
  if ((healthy)); then
    echo "OK: lab up, $NDCS DC(s) running and ready ($LAB_DIR)"
    return 0
  fi
  start_all_and_wait
  say "up in $(since "$t0")s"
  echo "OK: lab up, $NDCS DC(s) running and ready ($LAB_DIR)"
}

cmd_down() {
  need_root down
  take_lock
  stop_all
}

cmd_reset() {
  need_root reset
  take_lock
  if ! snapshot_valid "$NDCS"; then
    say "no valid snapshot for $NDCS DC(s) yet; doing a full up"
    exec 9>&-
    cmd_up
    return
  fi
  local t
  t=$(mark)
  decide_namespace
  write_netcfg
  write_reader_password
  stop_all
  restore_snapshot
  [ -s "$HOST_KEYTAB" ] || export_host_keytab
  start_all_and_wait
  say "reset done in $(since "$t")s"
}

cmd_stop_dc() {
  local n=$1
  need_root stop-dc
  take_lock
  stop_dc "$n"
}

cmd_start_dc() {
  local n=$1
  need_root start-dc
  take_lock
  decide_namespace
  write_netcfg
  start_dc "$n"
  wait_ready "$n"
}

cmd_status() {
  local n p state ready rc=0
  echo "lab: $LAB_DIR, $NDCS DC(s), domain $DOMAIN"
  for n in $(dc_list); do
    p=$(dc_pid "$n")
    if [ -z "$p" ]; then
      state="stopped"
      ready="not ready"
      rc=3
    else
      state="running pid $p"
      if probe_ready "$n"; then ready="ready (LDAPS bind + DNS SRV)"; else
        ready="NOT ready"
        rc=3
      fi
    fi
    printf 'dc%s %-10s %-18s %s\n' "$n" "$(dc_ip "$n")" "$state" "$ready"
  done
  return "$rc"
}

cmd_env() {
  local n urls=() dns=()
  for n in $(dc_list); do
    urls+=("ldaps://$(dc_ip "$n")")
    dns+=("$(dc_ip "$n"):53")
  done
  {
    echo "LAB_DIR=$LAB_DIR"
    echo "LAB_DOMAIN=$DOMAIN"
    echo "LAB_REALM=$REALM"
    echo "LAB_NETBIOS=$NETBIOS"
    echo "LAB_BASE_DN=$BASE_DN"
    echo "LAB_DOMAIN_SID=$DOMAIN_SID"
    echo "LAB_DCS=$NDCS"
    for n in $(dc_list); do
      echo "LAB_DC${n}_HOST=$(dc_host "$n")"
      echo "LAB_DC${n}_IP=$(dc_ip "$n")"
    done
    echo "LAB_LDAPS_URLS=${urls[*]}"
    echo "LAB_CA_PEM=$TLS_DIR/ca.pem"
    echo "LAB_ADMIN_UPN=$ADMIN_UPN"
    echo "LAB_ADMIN_DN=$ADMIN_DN"
    echo "LAB_PASSWORD=$ADMIN_PASSWORD"
    echo "LAB_READER_UPN=$READER_UPN"
    echo "LAB_READER_DN=$READER_DN"
    echo "LAB_READER_PASSWORD=$READER_PASSWORD"
    echo "LAB_READER_PASSWORD_FILE=$(reader_password_file)"
    echo "LAB_USER_PASSWORD=$USER_PASSWORD"
    echo "LAB_USER_COUNT=$USER_COUNT"
    echo "LAB_DNS_SERVERS=${dns[*]}"
    echo "LAB_KRB5_CONFIG=$LAB_DIR/krb5.conf"
    echo "LAB_SAMBA_VERSION=$(samba_version)"
    echo "LAB_DOMAIN_LEVEL=7"
    echo "LAB_HOST_ACCOUNT=$HOST_ACCOUNT\$"
    echo "LAB_HOST_DN=$(computer_dn "$HOST_ACCOUNT")"
    echo "LAB_HOST_PASSWORD=$HOST_PASSWORD"
    echo "LAB_HOST_KEYTAB=$HOST_KEYTAB"
    echo "LAB_OTHER_ACCOUNT=$OTHER_ACCOUNT\$"
    echo "LAB_OTHER_DN=$(computer_dn "$OTHER_ACCOUNT")"
    echo "LDAPTLS_CACERT=$TLS_DIR/ca.pem"
  } | while IFS='=' read -r k v; do echo "export $k=$(shq "$v")"; done
}

# Quick end-to-end checks; read-only except for two contact objects it creates and deletes.
cmd_smoke() {
  local pass=0 fail=0 n ip answer m out rc t
  ok() {
    echo "ok   $*"
    pass=$((pass + 1))
  }
  ko() {
    echo "FAIL $*"
    fail=$((fail + 1))
  }
  export LDAPTLS_CACERT=$TLS_DIR/ca.pem LDAPTLS_REQCERT=demand
  search() { # search URL ARGS...: authenticated, unwrapped LDIF
    local url=$1
    shift
    ldapsearch -x -LLL -o ldif-wrap=no -o nettimeout=5 -H "$url" -D "$ADMIN_UPN" -w "$ADMIN_PASSWORD" "$@"
  }

  # A stopped DC is one failure, not a cascade of timeouts.
  local running=()
  for n in $(dc_list); do
    if [ -n "$(dc_pid "$n")" ]; then running+=("$n"); else ko "dc$n is not running (lab.sh start-dc $n)"; fi
  done

  for n in "${running[@]}"; do
    ip=$(dc_ip "$n")
    if ldapsearch -x -LLL -o nettimeout=5 -H "ldaps://$ip" -s base -b "" defaultNamingContext 2>/dev/null |
      grep -qi "^defaultNamingContext: $BASE_DN\$"; then
      ok "dc$n: anonymous RootDSE over LDAPS, certificate verified for IP $ip"
    else ko "dc$n: RootDSE over ldaps://$ip"; fi

    if search "ldaps://$ip" -s base -b "$BASE_DN" objectSid 2>/dev/null | grep -q '^objectSid'; then
      ok "dc$n: Administrator simple bind over LDAPS, domain root readable"
    else ko "dc$n: Administrator simple bind over ldaps://$ip"; fi

    if search "ldap://$ip" -ZZ -s base -b "" dnsHostName 2>/dev/null | grep -qi "^dnsHostName: $(dc_host "$n")\$"; then
      ok "dc$n: StartTLS simple bind on 389"
    else ko "dc$n: StartTLS simple bind on ldap://$ip"; fi

    rc=0
    out=$(ldapsearch -x -o nettimeout=5 -H "ldap://$ip" -D "$ADMIN_UPN" -w "$ADMIN_PASSWORD" -s base -b "" 2>&1) || rc=$?
    if [ "$rc" = 8 ] && grep -q 'Strong(er) authentication required' <<<"$out"; then
      ok "dc$n: plain-389 simple bind refused (strongAuthRequired)"
    else ko "dc$n: plain-389 simple bind was not refused as expected (rc $rc)"; fi

    answer=$(dig +short +time=2 +tries=2 @"$ip" "_ldap._tcp.dc._msdcs.$DOMAIN" SRV 2>/dev/null || true)
    local missing=()
    for m in $(dc_list); do grep -qi " $(dc_host "$m")\.\$" <<<"$answer" || missing+=("dc$m"); done
    if ((${#missing[@]} == 0)); then
      ok "dc$n: DNS SRV _ldap._tcp.dc._msdcs lists all $NDCS DC(s)"
    else ko "dc$n: DNS SRV _ldap._tcp.dc._msdcs on $ip lacks ${missing[*]}: $(echo "$answer" | tr '\n' ';')"; fi

    if [ "$(dig +short +time=2 +tries=2 @"$ip" "$(dc_host "$n")" A 2>/dev/null)" = "$ip" ]; then
      ok "dc$n: DNS A $(dc_host "$n") -> $ip"
    else ko "dc$n: DNS A $(dc_host "$n")"; fi
  done

  # The sample directory, as the lab agent reads it: the reader binds, the paged count finds at
  # least the seeded users (tests may add more).
  for n in "${running[@]}"; do
    m=$(LDAPTLS_CACERT=$TLS_DIR/ca.pem LDAPTLS_REQCERT=demand ldapsearch -x -LLL -o nettimeout=5 \
      -H "ldaps://$(dc_ip "$n")" -D "$READER_UPN" -w "$READER_PASSWORD" -E pr=10/noprompt \
      -b "$BASE_DN" "$USER_FILTER" 1.1 2>/dev/null | grep -c '^dn: ' || true)
    if ((m >= USER_COUNT)); then ok "dc$n: reader $READER_UPN counts $m user objects (sample directory: $USER_COUNT)"; else
      ko "dc$n: reader $READER_UPN counts $m user objects, expected at least $USER_COUNT (lab.sh seed-users)"
    fi
  done

  local dcs_in_ou
  dcs_in_ou=$(search "ldaps://$(dc_ip "${running[0]:-1}")" -b "OU=Domain Controllers,$BASE_DN" '(objectClass=computer)' dNSHostName 2>/dev/null | grep -ci '^dNSHostName:' || true)
  if [ "$dcs_in_ou" = "$NDCS" ]; then ok "$NDCS DC computer object(s) under OU=Domain Controllers"; else
    ko "OU=Domain Controllers holds $dcs_in_ou DC(s), expected $NDCS"
  fi

  if printf '%s\n' "$ADMIN_PASSWORD" | KRB5_CONFIG=$LAB_DIR/krb5.conf KRB5CCNAME=MEMORY: kinit "Administrator@$REALM" >/dev/null 2>&1; then
    ok "kinit Administrator@$REALM (Kerberos AS exchange with the lab KDCs)"
  else ko "kinit Administrator@$REALM"; fi
  if KRB5_CONFIG=$LAB_DIR/krb5.conf KRB5CCNAME=MEMORY: kinit -k -t "$HOST_KEYTAB" "$HOST_ACCOUNT\$@$REALM" >/dev/null 2>&1; then
    ok "kinit -k $HOST_ACCOUNT\$@$REALM with $HOST_KEYTAB (no password)"
  else ko "kinit -k $HOST_ACCOUNT\$@$REALM with $HOST_KEYTAB"; fi

  # Replication both ways: write on one DC, poll the other.
  if ((NDCS >= 2 && ${#running[@]} == NDCS)); then
    local from to dn found
    for pair in "1 2" "2 1"; do
      read -r from to <<<"$pair"
      dn="CN=lab-smoke-dc$from-$$-$RANDOM,CN=Users,$BASE_DN"
      if ! printf 'dn: %s\nobjectClass: contact\ndescription: lab.sh smoke\n' "$dn" |
        ldapadd -x -o nettimeout=5 -H "ldaps://$(dc_ip "$from")" -D "$ADMIN_UPN" -w "$ADMIN_PASSWORD" >/dev/null 2>&1; then
        ko "replication dc$from -> dc$to: could not create the test object on dc$from"
        continue
      fi
      t=$(mark)
      found=0
      for _ in $(seq 1 150); do # 150 x 0.2 s = 30 s at most (4.22 measured up to 15 s)
        if search "ldaps://$(dc_ip "$to")" -s base -b "$dn" dn >/dev/null 2>&1; then
          found=1
          break
        fi
        sleep 0.2
      done
      if ((found)); then ok "replication dc$from -> dc$to: object visible on dc$to after $(since "$t")s"; else
        ko "replication dc$from -> dc$to: object not on dc$to after 30s"
      fi
      ldapdelete -x -o nettimeout=5 -H "ldaps://$(dc_ip "$from")" -D "$ADMIN_UPN" -w "$ADMIN_PASSWORD" "$dn" >/dev/null 2>&1 || true
    done
  fi

  echo "smoke: $pass passed, $fail failed"
  ((fail == 0))
}

cmd_logs() {
  local n=${1:-1}
  tail -n "${LINES_TO_SHOW:-50}" "$(dc_dir "$n")/log/log.samba"
}

cmd_exec() {
  need_root exec
  (($#)) || die "usage: lab.sh exec CMD [ARGS...]"
  decide_namespace
  [ -f "$NETCFG/dc1/resolv.conf" ] || write_netcfg
  KRB5_CONFIG=$LAB_DIR/krb5.conf in_lab_ns 1 "$@"
}

# What the lab's domain admin does before the agent's wizard runs on a host: the three
# prerequisites provd checks and does not create itself. Over LDAPS as Administrator (no root
# needed), on the first DC that answers; each step only when missing, so re-running is cheap.
# The objects are the ones tests/common/fixtures.rs makes (add_kds_key, make_computer).
cmd_prepare_host() {
  local name=${1:-}
  name=${name%\$}
  [[ $name =~ ^[A-Za-z0-9][A-Za-z0-9-]{0,14}$ ]] ||
    die "usage: lab.sh prepare-host NAME (the host's NetBIOS name: 1-15 letters, digits or '-'; got '${1:-}')"
  name=${name^^}
  local url
  url=$(ready_dc_url) || die "no DC is ready (lab.sh status; sudo lab.sh up)"
  ldap() { admin_ldap "$url" "$@"; } # ldap TOOL ARGS...
  add() { admin_add "$url" "$1"; }   # add LDIF

  # 1. A KDS root key that is effective now (msKds-UseStartTime <= now, as FILETIME), or gMSA
  #    creation fails with NO_KDS_ROOT_KEY. Add-KdsRootKey -EffectiveTime ((Get-Date).AddHours(-20)):
  #    Samba 4.22 takes a key only once it was effective at the start of the current 10-hour
  #    key interval. (The level-2016 provision's own key is effective from 10 h before it.)
  local config_dn="CN=Configuration,$BASE_DN" gkds kds now start found="" out rc=0
  gkds="CN=Group Key Distribution Service,CN=Services,$config_dn"
  kds="CN=Master Root Keys,$gkds"
  now=$((($(date +%s) + 11644473600) * 10000000))
  out=$(ldap ldapsearch -LLL -o ldif-wrap=no -b "$kds" -s one '(objectClass=msKds-ProvRootKey)' \
    msKds-UseStartTime 2>&1) || rc=$?
  [ "$rc" = 0 ] || [ "$rc" = 32 ] || die "cannot read the KDS root keys on $url (rc $rc): $out"
  while read -r start; do
    [[ $start =~ ^[0-9]+$ ]] && ((start <= now)) && found=1
  done < <(sed -n 's/^msKds-UseStartTime: //p' <<<"$out")
  if [ -n "$found" ]; then
    echo "KDS root key: present (an effective one under $kds)"
  else
    local id
    id=$(cat /proc/sys/kernel/random/uuid)
    add "$(printf 'dn: %s\nobjectClass: container\n' "$gkds")"
    add "$(printf 'dn: %s\nobjectClass: container\n' "$kds")"
    add "$(printf '%s\n' "dn: CN=$id,$kds" "objectClass: msKds-ProvRootKey" "cn: $id" \
      "msKds-Version: 1" "msKds-KDFAlgorithmID: SP800_108_CTR_HMAC" \
      "msKds-SecretAgreementAlgorithmID: DH" "msKds-PrivateKeyLength: 512" \
      "msKds-PublicKeyLength: 2048" \
      "msKds-RootKeyData:: $(head -c 64 /dev/zero | tr '\0' '\7' | base64 -w0)" \
      "msKds-CreateTime: $now" "msKds-UseStartTime: $((now - 72000 * 10000000))" \
      "msKds-DomainID: CN=DC1,OU=Domain Controllers,$BASE_DN")"
    echo "KDS root key: created CN=$id (effective 20 hours ago)"
  fi

  # 2. The host's computer account NAME$ (the host joined to the domain): the gMSA's
  #    PrincipalsAllowedToRetrieveManagedPassword names it.
  rc=0
  out=$(ldap ldapsearch -LLL -o ldif-wrap=no -b "$BASE_DN" "(sAMAccountName=$name\$)" dn 2>&1) || rc=$?
  [ "$rc" = 0 ] || die "cannot search for $name\$ on $url (rc $rc): $out"
  local dn
  dn=$(sed -n 's/^dn: //p' <<<"$out" | head -n1)
  if [ -n "$dn" ] && [ "$name" = "$HOST_ACCOUNT" ]; then
    # The lab host keeps its published password (and so its keytab), whatever recreated it.
    admin_modify "$url" "$(printf '%s\n' "dn: $dn" "changetype: modify" "replace: unicodePwd" \
      "unicodePwd:: $(unicode_pwd "$HOST_PASSWORD")" "-")"
    echo "computer account: $NETBIOS\\$name\$ present ($dn), the lab host's password set again"
  elif [ -n "$dn" ]; then
    echo "computer account: $NETBIOS\\$name\$ present ($dn)"
  elif [ "$name" = "$HOST_ACCOUNT" ]; then
    dn=$(computer_dn "$name")
    add "$(computer_ldif "$name")"
    echo "computer account: $NETBIOS\\$name\$ created with the lab host's password ($dn)"
  else
    dn="CN=$name,CN=Computers,$BASE_DN"
    add "$(printf '%s\n' "dn: $dn" "objectClass: computer" "sAMAccountName: $name\$" \
      "userAccountControl: 4096")"
    echo "computer account: $NETBIOS\\$name\$ created ($dn)"
  fi

  # 3. minPwdAge 0: Microsoft's password writeback prerequisite (a reset right after a change
  #    would be refused otherwise).
  local age
  age=$(ldap ldapsearch -LLL -b "$BASE_DN" -s base minPwdAge 2>/dev/null | sed -n 's/^minPwdAge: //p')
  if [ "$age" = 0 ]; then
    echo "minPwdAge: 0 already"
  else
    rc=0
    out=$(printf 'dn: %s\nchangetype: modify\nreplace: minPwdAge\nminPwdAge: 0\n' "$BASE_DN" |
      ldap ldapmodify 2>&1) || rc=$?
    [ "$rc" = 0 ] || die "cannot set minPwdAge on $url (rc $rc): $out"
    echo "minPwdAge: 0 (was ${age:-unset})"
  fi
}

# The sample directory (see the constants at the top), on the first DC that answers; already in
# every snapshot, so this only matters on a lab whose objects were removed or changed.
cmd_seed_users() {
  local url t n
  t=$(mark)
  url=$(ready_dc_url) || die "no DC is ready (lab.sh status; sudo lab.sh up)"
  seed_users "$url"
  n=$(count_users "$url")
  echo "user objects under $BASE_DN ($USER_FILTER): $n"
  ((n >= USER_COUNT)) || die "expected at least $USER_COUNT"
  say "seed-users on $url in $(since "$t")s"
}

cmd_clean() {
  need_root clean
  take_lock
  stop_all
  local n
  for n in $(seq 1 "$MAX_DCS"); do rm -rf "$(dc_dir "$n")"; done
  # Only what this script creates: LAB_DIR may have been pointed somewhere shared.
  rm -rf "$TLS_DIR" "$NETCFG" "$LOGS"
  rm -f "$LAB_DIR"/snapshot-*dc.tar "$LAB_DIR"/snapshot-*dc.tar.meta "$LAB_DIR"/snapshot-*dc.tar.tmp \
    "$STATE_FILE" "$LAB_DIR/krb5.conf" "$(reader_password_file)" "$LAB_DIR/.lock"
  rmdir "$LAB_DIR" 2>/dev/null || true
  say "cleaned $LAB_DIR"
}

usage() {
  sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0" >&2
  exit 2
}

# ---------------------------------------------------------------------------------------------

dc_arg() { # validates a DC number for stop-dc/start-dc/logs
  local n=${1:-}
  [ "$cmd" != logs ] || n=${n:-1}
  if ! [[ $n =~ ^[1-9]$ ]] || ((n > NDCS)); then die "DC number must be 1..$NDCS (got '$n')"; fi
  echo "$n"
}

main() {
  local cmd=${1:-}
  (($#)) && shift
  check_lab_dir
  # `up` builds what is asked (default 2); every other command follows the lab as built.
  if [ "$cmd" = up ]; then
    NDCS=${LAB_DCS:-2}
  else
    NDCS=${LAB_DCS:-$(cat "$STATE_FILE" 2>/dev/null || echo 2)}
  fi
  if ! [[ $NDCS =~ ^[1-9]$ ]] || ((NDCS > MAX_DCS)); then die "LAB_DCS must be 1..$MAX_DCS (got '$NDCS')"; fi

  case $cmd in
    up) cmd_up ;;
    down) cmd_down ;;
    reset) cmd_reset ;;
    status) cmd_status ;;
    env) cmd_env ;;
    smoke) cmd_smoke ;;
    stop-dc | start-dc | logs)
      # An assignment, so that set -e stops on an invalid number.
      local n
      n=$(dc_arg "${1:-}")
      "cmd_${cmd//-/_}" "$n"
      ;;
    exec) cmd_exec "$@" ;;
    prepare-host) cmd_prepare_host "$@" ;;
    seed-users) cmd_seed_users ;;
    clean) cmd_clean ;;
    -h | --help | help | "") usage ;;
    *)
      say "unknown command '$cmd'"
      usage
      ;;
  esac
}

main "$@"
