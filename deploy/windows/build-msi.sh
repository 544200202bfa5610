#!/usr/bin/env bash
# build-msi.sh VERSION EXE OUT - provd's MSI (deploy/windows/provd.wxs) around a cross-built
# provd.exe, with wixl from msitools (Debian: apt-get install wixl msitools).
#
#   VERSION  ProductVersion, major.minor.build[.revision]; Windows Installer compares the first
#            three fields only, so a newer build must raise the third (0.1.N -> 0.1.N+1)
#   EXE      the provd.exe to package (x86_64-pc-windows-gnu)
#   OUT      the .msi to write (replaced only when the build succeeded)
#
# Pinned to wixl 0.101 (Debian 12's): provd.wxs works around that version's gaps (explicit
# custom action sequences, the "#%" prefix of an expandable value written by hand, Secure
# properties patched in below). Another version may handle those differently (0.102 defaults
# Win64 and maps more Execute types; one that adds "#%" itself would write "#%#%..."), so it is
# refused until the package has been checked with it again (see README.md, "The MSI").
set -euo pipefail

readonly WIXL_VERSION=0.101
# Public properties msiexec may take from the command line of a managed (elevated) install;
# wixl 0.101 ignores Property/@Secure, so the MSI's SecureCustomProperties row is set here.
readonly SECURE='WIX_DOWNGRADE_DETECTED;WIX_UPGRADE_DETECTED;LISTEN;TLS_CERT;TLS_KEY;TLS_CLIENT_CA;CERT_THUMBPRINT;CLIENT_CA_STORE;PURGE'

die() {
  echo "build-msi.sh: $*" >&2
  exit 1
}

[ $# -eq 3 ] || die "usage: build-msi.sh VERSION EXE OUT"
version=$1 exe=$2 out=$3
[[ $version =~ ^([0-9]+)\.([0-9]+)\.([0-9]+)(\.[0-9]+)?$ ]] || die "VERSION $version is not major.minor.build[.revision]"
((BASH_REMATCH[1] < 256 && BASH_REMATCH[2] < 256 && BASH_REMATCH[3] < 65536)) ||
  die "VERSION $version: major and minor must be < 256, build < 65536 (Windows Installer)"
[ -f "$exe" ] || die "no $exe"
have=$(wixl --version 2>/dev/null) || die "wixl not found (apt-get install wixl msitools)"
[ "$have" = "$WIXL_VERSION" ] || die "wixl $have: provd.wxs is checked with wixl $WIXL_VERSION only"
command -v msibuild >/dev/null || die "msibuild not found (apt-get install msitools)"

wxs=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)/provd.wxs
out=$(realpath -m "$out")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# wixl resolves File/@Source against the current directory only: a bare name there.
cp "$exe" "$work/provd.exe"
(cd "$work" && wixl -a x64 -D "Version=$version" -D ProvdExe=provd.exe -o provd.msi "$wxs")
msibuild "$work/provd.msi" -q "UPDATE \`Property\` SET \`Value\` = '$SECURE' WHERE \`Property\` = 'SecureCustomProperties'"
msiinfo export "$work/provd.msi" Property | grep -qF "SecureCustomProperties	$SECURE" ||
  die "SecureCustomProperties was not written"
# wixl 0.101 has no MajorUpgrade/@AllowSameVersionUpgrades: every build has a new ProductCode,
# so a rebuild of the same version would install beside the old one (two products, one
# service). Its Upgrade row gets 513 = MigrateFeatures (1) + VersionMaxInclusive (0x200), so
# it replaces it instead; Attributes is part of the row's key, hence delete and insert.
upgrade_code=$(msiinfo export "$work/provd.msi" Property | tr -d '\r' | sed -n 's/^UpgradeCode\t//p')
msibuild "$work/provd.msi" -q "DELETE FROM \`Upgrade\` WHERE \`ActionProperty\` = 'WIX_UPGRADE_DETECTED'"
msibuild "$work/provd.msi" -q "INSERT INTO \`Upgrade\` (\`UpgradeCode\`, \`VersionMax\`, \`Attributes\`, \`ActionProperty\`) VALUES ('$upgrade_code', '$version', 513, 'WIX_UPGRADE_DETECTED')"
msiinfo export "$work/provd.msi" Upgrade | tr -d '\r' | grep -qxF "$upgrade_code		$version		513		WIX_UPGRADE_DETECTED" ||
  die "the Upgrade row was not patched"
mkdir -p "$(dirname "$out")"
mv "$work/provd.msi" "$out"
echo "$out"
