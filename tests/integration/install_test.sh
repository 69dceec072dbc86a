#!/usr/bin/env bash
# SPDX-License-Identifier: MPL-2.0
# Install and uninstall as the README says, into a DESTDIR: the sample configuration lands where
# the installed daemon looks and never replaces the operator's; the README's program builds
# against the installed headers and library with pkg-config and with find_package(portunus),
# warning-free, prints its usage without an argument and serves a door; `uninstall` removes
# every file of install_manifest.txt but a configuration the operator changed, and says so
# when there is no manifest.
set -u

usage() {
    echo "usage: $0 --source-dir DIR --build-dir DIR" >&2
    exit 2
}
source_dir='' build_dir=''
while [ $# -gt 0 ]; do
    [ $# -ge 2 ] || usage
    case $1 in
    --source-dir) source_dir=$2 ;;
    --build-dir) build_dir=$2 ;;
    *) usage ;;
    esac
    shift 2
done
[ -n "$source_dir" ] && [ -n "$build_dir" ] || usage

die() {
    echo "FAIL: $*" >&2
    exit 1
}
for tool in c++ pkg-config cmake timeout; do
    command -v "$tool" >/dev/null || die "$tool not found"
done

manifest=$build_dir/install_manifest.txt
tmp=$(mktemp -d /tmp/portunus-install.XXXXXX) || die "cannot create a temporary directory"
app_pid=''
# The build directory's manifest may record a real install: it is put back afterwards.
[ -e "$manifest" ] && cp -p "$manifest" "$tmp/manifest.saved"
cleanup() {
    [ -n "$app_pid" ] && kill -KILL "$app_pid" 2>/dev/null
    if [ -e "$tmp/manifest.saved" ]; then cp -p "$tmp/manifest.saved" "$manifest"; else rm -f "$manifest"; fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

cache() { sed -n "s/^$1:[A-Z]*=//p" "$build_dir/CMakeCache.txt"; }
prefix=$(cache CMAKE_INSTALL_PREFIX)
libdir=$(cache CMAKE_INSTALL_LIBDIR)
[ -n "$prefix" ] && [ -n "$libdir" ] || die "no install prefix or libdir in $build_dir/CMakeCache.txt"
[[ $libdir == /* ]] || libdir=$prefix/$libdir
export DESTDIR=$tmp/root
root=$DESTDIR

install_all() {
    cmake --install "$build_dir" >"$tmp/install.log" 2>&1 || die "cmake --install failed: $(cat "$tmp/install.log")"
}
uninstall_all() {
    cmake --build "$build_dir" --target uninstall >"$tmp/uninstall.log" 2>&1 ||
        die "the uninstall target failed: $(cat "$tmp/uninstall.log")"
}

# ---- no manifest: a clear message, and a failure ----
rm -f "$manifest"
cmake --build "$build_dir" --target uninstall >"$tmp/uninstall.log" 2>&1 &&
    die "uninstall without a manifest succeeded: $(cat "$tmp/uninstall.log")"
# CMake wraps the message: compare it with its lines joined.
tr -s ' \n' '  ' <"$tmp/uninstall.log" | grep -q "install_manifest.txt does not exist: nothing was installed" ||
    die "uninstall without a manifest did not say why: $(cat "$tmp/uninstall.log")"

# ---- install: the configuration is where the installed daemon looks ----
install_all
[ -s "$manifest" ] || die "cmake --install wrote no $manifest"
daemon=$root$prefix/sbin/portunusd
[ -x "$daemon" ] || die "no portunusd at $daemon"
config=$("$daemon" -h | sed -n 's/^  -f FILE .*(default \(.*\))$/\1/p')
[ -n "$config" ] || die "portunusd -h names no default configuration: $("$daemon" -h)"
sysconfdir=$(cache CMAKE_INSTALL_SYSCONFDIR)
[[ $sysconfdir == /* ]] || sysconfdir=$prefix/$sysconfdir
# Run from the staging directory, the daemon is where a relocated install would be, and looks
# for its configuration under that same root (a package staged by cpack and installed at /usr
# relies on it); installed for real, that is SYSCONFDIR.
[ "$config" = "$root$sysconfdir/portunusd.toml" ] ||
  die "the default configuration is $config, not $root$sysconfdir/portunusd.toml"
config=$sysconfdir/portunusd.toml
cmp -s "$root$config" "$source_dir/etc/portunusd.toml" || die "install put no sample configuration at $root$config"
grep -qxF "$config" "$manifest" || die "the installed configuration is not in the manifest"
"$daemon" -n -f "$root$config" >"$tmp/check.out" 2>"$tmp/check.err" ||
    die "the installed daemon refuses the installed configuration: $(cat "$tmp/check.err")"
grep -qx "configuration OK" "$tmp/check.out" || die "portunusd -n printed: $(cat "$tmp/check.out")"
for page in portunusd.8 portunusd.toml.5; do
    grep -q "SYSCONFDIR/portunusd.toml" "$source_dir/docs/$page" || die "$page does not name SYSCONFDIR/portunusd.toml"
    grep -q "/etc/portunusd.toml" "$source_dir/docs/$page" || die "$page does not name /etc/portunusd.toml"
done
for app in echo hello_web go_away file_opener line_echo; do
    [ -x "$root$prefix/libexec/portunusd/$app" ] || die "example $app not installed in $prefix/libexec/portunusd"
    [ -L "$root$prefix/bin/portunus-$app" ] || die "no portunus-$app on PATH ($prefix/bin)"
    version=$("$root$prefix/bin/portunus-$app" --version) || die "portunus-$app --version failed"
    [ "$version" = "$app $(cache CMAKE_PROJECT_VERSION)" ] || die "portunus-$app --version printed: $version"
done
[ -e "$root$prefix/share/man/man7/portunus-examples.7" ] || die "portunus-examples(7) not installed"

# ---- the README's program, built against the installed library ----
awk '/^## Writing a door application/ { on = 1 } on && /^```cpp$/ { code = 1; next }
     code && /^```$/ { exit } code { print }' "$source_dir/README.md" >"$tmp/app.cpp"
grep -q "portunus::serve" "$tmp/app.cpp" || die "no sample program found in README.md"
# A sanitizer build installs a sanitized library, which only links into a program built so too.
sanitize=''
case $(cache PORTUNUS_SANITIZE) in ON | on | TRUE | true | 1) sanitize='-fsanitize=address,undefined' ;; esac
pc_dir=$root$libdir/pkgconfig
flags=$(PKG_CONFIG_LIBDIR=$pc_dir PKG_CONFIG_PATH='' PKG_CONFIG_SYSROOT_DIR=$root pkg-config --cflags --libs portunus) ||
    die "pkg-config does not know portunus in $pc_dir"
# shellcheck disable=SC2086 # the flags are words
c++ -std=c++20 -Wall -Wextra -Werror $sanitize "$tmp/app.cpp" $flags -o "$tmp/app-pc" 2>"$tmp/cc.err" ||
    die "the README program does not build with pkg-config: $(cat "$tmp/cc.err")"

mkdir -p "$tmp/project"
cp "$tmp/app.cpp" "$tmp/project/app.cpp"
cat >"$tmp/project/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.20)
project(readme_app LANGUAGES CXX)
find_package(portunus REQUIRED)
add_executable(app app.cpp)
target_compile_options(app PRIVATE -Wall -Wextra -Werror)
target_link_libraries(app PRIVATE portunus::door)
CMAKE
(cd "$tmp/project" && cmake -S . -B build -DCMAKE_PREFIX_PATH="$root$prefix" -DCMAKE_CXX_FLAGS="$sanitize" \
    -DCMAKE_EXE_LINKER_FLAGS="$sanitize" >"$tmp/cmake.log" 2>&1 &&
    cmake --build build >>"$tmp/cmake.log" 2>&1) || die "the README program does not build with find_package: $(cat "$tmp/cmake.log")"
found=$(sed -n 's/^portunus_DIR:PATH=//p' "$tmp/project/build/CMakeCache.txt")
[ "$found" = "$root$libdir/cmake/portunus" ] || die "find_package found portunus in '$found', not the install"

cli=$root$prefix/bin/portunus
mkdir -m 0755 "$tmp/doors"
for program in "$tmp/app-pc" "$tmp/project/build/app"; do
    timeout 5 "$program" >"$tmp/run.out" 2>"$tmp/run.err"
    status=$?
    [ "$status" -eq 2 ] || die "$program without an argument exited $status, expected 2: $(cat "$tmp/run.err")"
    grep -q "^usage: .* DOOR_PATH$" "$tmp/run.err" || die "$program without an argument printed: $(cat "$tmp/run.err")"
    door=$tmp/doors/app.door
    "$program" "$door" 2>"$tmp/run.err" &
    app_pid=$!
    for _ in $(seq 50); do [ -S "$door" ] && break; sleep 0.1; done
    [ -S "$door" ] || die "$program made no door: $(cat "$tmp/run.err")"
    reply=$(printf 'hi' | timeout 10 "$cli" call "$door") || die "portunus call $door failed"
    [ "$reply" = "you said: hi" ] || die "$program answered '$reply'"
    kill -TERM "$app_pid"
    wait "$app_pid"
    status=$?
    app_pid=''
    [ "$status" -eq 0 ] || die "$program exited $status on SIGTERM"
done

# ---- the operator's configuration: never replaced, kept by uninstall ----
echo '# changed by the operator' >>"$root$config"
cp "$root$config" "$tmp/changed.toml"
install_all
grep -qF "Keeping: $root$config" "$tmp/install.log" || die "a second install did not say it kept the configuration"
cmp -s "$root$config" "$tmp/changed.toml" || die "a second install replaced the operator's configuration"
grep -qxF "$config" "$manifest" && die "the manifest claims the operator's configuration"
uninstall_all
cmp -s "$root$config" "$tmp/changed.toml" || die "uninstall removed or changed the operator's configuration"
# The manifest lists paths without DESTDIR, as CMake records them.
while IFS= read -r f; do
    [ -e "$root$f" ] || [ -L "$root$f" ] && die "uninstall left $root$f behind"
done <"$manifest"

# ---- an unchanged configuration goes with the rest, and so does everything listed ----
# The configuration installed above is still in place; uninstall keeps a changed one even when it
# is in the manifest.
rm -f "$root$config"
install_all
echo '# changed after install' >>"$root$config"
uninstall_all
tr -s ' \n' '  ' <"$tmp/uninstall.log" | grep -qF "Keeping: $root$config (it differs from the sample" ||
    die "uninstall did not say it kept the changed configuration: $(cat "$tmp/uninstall.log")"
[ -e "$root$config" ] || die "uninstall removed a configuration that differs from the sample"
rm -f "$root$config"
install_all
uninstall_all
left=0
while IFS= read -r f; do
    if [ -e "$root$f" ] || [ -L "$root$f" ]; then
        echo "left behind: $root$f" >&2
        left=1
    fi
done <"$manifest"
[ "$left" -eq 0 ] || die "uninstall left files of the manifest behind"
leftover=$(cd "$root" && find . -path '*portunus*' | head -5)
[ -z "$leftover" ] || die "uninstall left these behind: $leftover"
echo "install: OK"
