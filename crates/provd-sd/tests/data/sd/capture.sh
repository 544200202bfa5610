#!/usr/bin/env bash
# capture.sh OUT_DIR: the security-descriptor samples of the running lab (deploy/lab/lab.sh), as
# `<name>.bin` (raw nTSecurityDescriptor over LDAPS as Administrator) and `<name>.sddl` (the
# installed Samba's own rendering of the same bytes, python3-samba). The object list is the
# README's table; what a DC version lacks is skipped with a note.
set -euo pipefail
out=${1:?usage: capture.sh OUT_DIR}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../../../.." && pwd)
eval "$("$repo/deploy/lab/lab.sh" env)"
b=$LAB_BASE_DN
# name|dn|SD_FLAGS control value (empty: none)
objects=(
  "domain_root|$b|"
  "domain_root_dacl|$b|::MAMCAQQ="
  "users|CN=Users,$b|"
  "users_owner_only|CN=Users,$b|::MAMCAQE="
  "users_group_only|CN=Users,$b|::MAMCAQI="
  "users_sacl_only|CN=Users,$b|::MAMCAQg="
  "users_no_sacl|CN=Users,$b|::MAMCAQc="
  "administrator|CN=Administrator,CN=Users,$b|"
  "domain_admins|CN=Domain Admins,CN=Users,$b|"
  "builtin_administrators|CN=Administrators,CN=Builtin,$b|"
  "domain_controllers_ou|OU=Domain Controllers,$b|"
  "dc1|CN=DC1,OU=Domain Controllers,$b|"
  "rid_set_dc1|CN=RID Set,CN=DC1,OU=Domain Controllers,$b|"
  "managed_service_accounts|CN=Managed Service Accounts,$b|"
  "adminsdholder|CN=AdminSDHolder,CN=System,$b|"
  "gpo_default_domain|CN={31B2F340-016D-11D2-945F-00C04FB984F9},CN=Policies,CN=System,$b|"
  "configuration|CN=Configuration,$b|"
  "schema_root|CN=Schema,CN=Configuration,$b|"
  "schema_user|CN=User,CN=Schema,CN=Configuration,$b|"
  "extended_right_reset_pw|CN=User-Force-Change-Password,CN=Extended-Rights,CN=Configuration,$b|"
  "dns_zone|DC=$LAB_DOMAIN,CN=MicrosoftDNS,DC=DomainDnsZones,$b|"
  "dns_node_dc2|DC=dc2,DC=$LAB_DOMAIN,CN=MicrosoftDNS,DC=DomainDnsZones,$b|"
  "computer_vm|$LAB_HOST_DN|"
  "kds_root_keys|CN=Master Root Keys,CN=Group Key Distribution Service,CN=Services,CN=Configuration,$b|"
)
mkdir -p "$out"
for o in "${objects[@]}"; do
  IFS='|' read -r name dn flags <<<"$o"
  ctl=()
  [ -z "$flags" ] || ctl=(-E "!1.2.840.113556.1.4.801=$flags")
  v=$(ldapsearch -LLL -o ldif-wrap=no -H "ldaps://$LAB_DC1_IP" -x -D "$LAB_ADMIN_UPN" -w "$LAB_PASSWORD" \
    "${ctl[@]}" -b "$dn" -s base nTSecurityDescriptor 2>/dev/null | sed -n 's/^nTSecurityDescriptor:: //p')
  if [ -z "$v" ]; then echo "skipped $name: $dn has no readable nTSecurityDescriptor" >&2; continue; fi
  base64 -d <<<"$v" >"$out/$name.bin"
done
/usr/bin/python3 - "$out" "$LAB_DOMAIN_SID" <<'PY'
import pathlib, sys
from samba.ndr import ndr_unpack
from samba.dcerpc import security
out, sid = pathlib.Path(sys.argv[1]), security.dom_sid(sys.argv[2])
for b in sorted(out.glob("*.bin")):
    sd = ndr_unpack(security.descriptor, b.read_bytes())
    b.with_suffix(".sddl").write_text(sd.as_sddl(sid) + "\n")
PY
ls "$out" | wc -l
