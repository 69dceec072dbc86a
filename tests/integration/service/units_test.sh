#!/usr/bin/env bash
# SPDX-License-Identifier: MPL-2.0
# The systemd units as an install lays them out (cmake --install with the prefix /usr into a
# scratch DESTDIR): no @VARIABLE@ left, the installed paths named, and systemd-analyze verify
# clean (it needs no running systemd). Its programs are pointed into the scratch tree, so the
# check that ExecStart is executable is made against what this build installs.
# usage: units_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1 source=$2
command -v systemd-analyze >/dev/null || { echo "SKIP: systemd-analyze is missing (Debian package systemd)"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }

root=$(mktemp -d /tmp/pd-units.XXXXXX)
trap 'rm -rf "$root"' EXIT
DESTDIR=$root/stage cmake --install "$build" --prefix /usr >"$root/install.log" 2>&1 ||
  { cat "$root/install.log"; fail "cmake --install failed"; }
units=$root/stage/usr/lib/systemd/system
[[ -f $units/portunusd.service && -f "$units/portunus-app@.service" ]] || fail "units not installed to lib/systemd/system"
[[ -f $root/stage/etc/portunusd.toml ]] || fail "the prefix /usr puts the configuration in /etc"
[[ -f $root/stage/usr/share/doc/portunusd/examples/portunusd.socket ]] || fail "no example socket unit"
if grep -n '@[A-Z_]*@' "$units"/*.service; then fail "unreplaced @VARIABLE@ above"; fi
grep -qx 'ExecStart=/usr/sbin/portunusd -f /etc/portunusd.toml' "$units/portunusd.service" ||
  fail "ExecStart does not name the installed daemon and configuration"
grep -qx 'EnvironmentFile=/etc/portunus/apps/%i.env' "$units/portunus-app@.service" || fail "EnvironmentFile"
grep -qx 'Type=notify' "$units/portunusd.service" || fail "not Type=notify"

# What systemd-analyze reads: the units with their programs inside the scratch tree.
check=$root/check
mkdir -p "$check"
for u in portunusd.service portunus-app@.service; do
  sed -e "s|/usr/sbin/portunusd|$root/stage/usr/sbin/portunusd|g" "$units/$u" >"$check/$u"
done
cp "$root/stage/usr/share/doc/portunusd/examples/portunusd.socket" "$check/"
# A template is verified through an instance.
cp "$check/portunus-app@.service" "$check/portunus-app@hello.service"
cd "$check"
out=$(systemd-analyze verify --man=no ./portunusd.service ./portunusd.socket ./portunus-app@hello.service 2>&1) ||
  { echo "$out"; fail "systemd-analyze verify failed"; }
# It exits 0 on unknown keys and bad values, which it only warns about: any word from it is a finding.
[[ -z $out ]] || { echo "$out"; fail "systemd-analyze verify has warnings"; }
# And it can fail: a unit whose ExecStart is not there.
sed -i "s|^ExecStart=.*|ExecStart=$root/missing/portunusd|" ./portunusd.service
if systemd-analyze verify --man=no ./portunusd.service >/dev/null 2>&1; then fail "verify accepted a missing ExecStart"; fi
echo "units: installed with the prefix /usr and verified by $(systemd-analyze --version | head -1)"
