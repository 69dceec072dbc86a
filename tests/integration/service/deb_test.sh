#!/usr/bin/env bash
# SPDX-License-Identifier: MPL-2.0
# The Debian package of a built tree: cpack -G DEB into a directory of its own, dpkg -i on this
# machine, the files where they belong, the installed daemon run, the service started when
# systemd is PID 1, then dpkg --purge and nothing left behind.
# usage: deb_test.sh BUILD_DIR OUT_DIR SANITIZED
set -euo pipefail
build=$1 out=$2 sanitized=$3

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }
[[ $sanitized == 1 || $sanitized == ON || $sanitized == true ]] &&
  skip "the package is made from the release tree; this is a sanitizer build"
[[ $(id -u) -eq 0 ]] || skip "installing a package needs root"
for tool in cpack dpkg dpkg-deb dpkg-shlibdeps; do
  command -v "$tool" >/dev/null || skip "$tool is missing (Debian packages cmake, dpkg-dev)"
done

# Left by a run that was killed half-way: this is a test machine, and the test owns the package.
if dpkg-query -W -f='${Status}' portunusd 2>/dev/null | grep -q installed; then
  echo "note: purging a portunusd package left installed"
  dpkg --purge portunusd >/dev/null
fi
# An /etc/portunusd.toml that no package owns (an install by hand) is put back afterwards.
saved=
if [[ -e /etc/portunusd.toml ]]; then
  saved=$(mktemp /etc/portunusd.toml.deb-test.XXXXXX)
  mv /etc/portunusd.toml "$saved"
fi
cleanup() {
  if dpkg-query -W -f='${Status}' portunusd 2>/dev/null | grep -q installed; then dpkg --purge portunusd >/dev/null || true; fi
  if [[ -n $saved ]]; then mv "$saved" /etc/portunusd.toml; fi
}
trap cleanup EXIT

rm -rf "$out"
mkdir -p "$out"
start=$SECONDS
(cd "$out" && cpack --config "$build/CPackConfig.cmake" -G DEB -B "$out" >cpack.log 2>&1) ||
  { cat "$out/cpack.log"; fail "cpack failed"; }
deb=$(ls "$out"/portunusd_*.deb 2>/dev/null | head -1)
[[ -n $deb ]] || { cat "$out/cpack.log"; fail "no portunusd_*.deb in $out"; }
echo "built $(basename "$deb") ($(du -k "$deb" | cut -f1) KiB) in $((SECONDS - start)) s"

# The control data: a name, computed dependencies, the conffile, the maintainer scripts.
dpkg-deb -e "$deb" "$out/control"
grep -qx 'Package: portunusd' "$out/control/control" || fail "package name"
depends=$(sed -n 's/^Depends: //p' "$out/control/control")
echo "Depends: $depends"
[[ $depends == *libc6* && $depends == *libstdc++6* ]] || fail "dependencies not computed: '$depends'"
grep -qx '/etc/portunusd.toml' "$out/control/conffiles" || fail "/etc/portunusd.toml is not a conffile"
for script in postinst prerm postrm; do [[ -x $out/control/$script ]] || fail "no $script"; done

dpkg -i "$deb" >"$out/dpkg.log" 2>&1 || { cat "$out/dpkg.log"; fail "dpkg -i failed"; }
dpkg -L portunusd >"$out/files"
want=(/usr/sbin/portunusd /usr/bin/portunus /usr/include/portunus/door.hpp /usr/lib/cmake/portunus/portunusConfig.cmake
  /usr/lib/systemd/system/portunusd.service "/usr/lib/systemd/system/portunus-app@.service"
  /usr/share/doc/portunusd/examples/portunusd.socket /etc/portunusd.toml /usr/share/man/man8/portunusd.8)
for f in "${want[@]}"; do
  grep -qx -- "$f" "$out/files" || fail "$f is not in the package (dpkg -L portunusd)"
  [[ -e $f ]] || fail "$f is listed but not installed"
done
grep -q '/pkgconfig/portunus.pc$' "$out/files" || fail "no pkg-config file"
grep -q '/libportunus.a$' "$out/files" || fail "no door library"
pc=$(grep '/pkgconfig/portunus.pc$' "$out/files")
grep -qx 'prefix=/usr' "$pc" || fail "$pc names another prefix: $(head -1 "$pc")"
grep -qx 'ExecStart=/usr/sbin/portunusd -f /etc/portunusd.toml' /usr/lib/systemd/system/portunusd.service ||
  fail "the unit does not start the installed daemon on the installed configuration"
if grep -q '@[A-Z]*@' /usr/lib/systemd/system/portunusd.service /usr/lib/systemd/system/portunus-app@.service; then
  fail "a unit has an unreplaced @VARIABLE@"
fi
echo "$(wc -l <"$out/files") paths installed"

# The installed programs run, and the installed configuration is read (-n: nothing is bound).
/usr/sbin/portunusd --version | grep -q '^portunusd ' || fail "portunusd --version"
# Made from a tree configured for another prefix, the installed daemon still looks in /etc.
help=$(/usr/sbin/portunusd -h)
grep -q '(default /etc/portunusd.toml)' <<<"$help" ||
  fail "portunusd -h does not name /etc/portunusd.toml: $(grep -- '-f FILE ' <<<"$help")"
/usr/bin/portunus --help >/dev/null 2>&1 || /usr/bin/portunus -h >/dev/null 2>&1 || fail "portunus --help"
set +e
check=$(/usr/sbin/portunusd -n -f /etc/portunusd.toml 2>&1)
rc=$?
plain=$(/usr/sbin/portunusd -n 2>&1)
plain_rc=$?
set -e
[[ "$plain_rc:$plain" == "$rc:$check" ]] ||
  fail "portunusd -n without -f did not read /etc/portunusd.toml: exit $plain_rc: $(head -3 <<<"$plain")"
echo "portunusd -n -f /etc/portunusd.toml: exit $rc: $(head -3 <<<"$check")"
[[ $rc -eq 0 || $rc -eq 96 ]] || fail "portunusd -n exited $rc"
if command -v systemd-analyze >/dev/null; then
  systemd-analyze verify --man=no /usr/lib/systemd/system/portunusd.service || fail "installed unit does not verify"
fi

if [[ $(ps -p 1 -o comm=) == systemd ]]; then
  systemctl start portunusd.service || { journalctl -u portunusd -n 30 --no-pager; fail "the service did not start"; }
  systemctl is-active portunusd.service
  systemctl reload portunusd.service
  systemctl stop portunusd.service
else
  echo "not starting the service: PID 1 is $(ps -p 1 -o comm=), not systemd"
fi

dpkg --purge portunusd >"$out/purge.log" 2>&1 || { cat "$out/purge.log"; fail "dpkg --purge failed"; }
left=0
while read -r f; do
  [[ -z $f || -d $f ]] && continue
  if [[ -e $f ]]; then echo "left behind: $f" >&2; left=1; fi
done <"$out/files"
[[ -e /etc/portunusd.toml ]] && { echo "left behind: /etc/portunusd.toml" >&2; left=1; }
[[ $left -eq 0 ]] || fail "files left after dpkg --purge"
if dpkg-query -W -f='${Status}' portunusd 2>/dev/null | grep -q installed; then fail "dpkg still has the package"; fi
echo "deb: built, installed, checked, purged in $((SECONDS - start)) s"
