#!/usr/bin/env bash
# SPDX-License-Identifier: MPL-2.0
# Checks the SMF manifests in smf/: well-formed, and every program, man page and property they
# name is one the build installs, docs/ holds, or the manifest itself defines.
#
# The expected install paths come from CMake (GNUInstallDirs with the prefix the manifests are
# written for), so a change to an install rule shows up here instead of on an illumos host.
set -u

usage() {
    echo "usage: $0 --source-dir DIR --build-dir DIR --prefix DIR --sbindir DIR" \
        "--libexecdir DIR --sysconfdir DIR --mandir DIR" >&2
    exit 2
}

source_dir='' build_dir='' prefix='' sbindir='' libexecdir='' sysconfdir='' mandir=''
while [ $# -gt 0 ]; do
    [ $# -ge 2 ] || usage
    case $1 in
    --source-dir) source_dir=$2 ;;
    --build-dir) build_dir=$2 ;;
    --prefix) prefix=$2 ;;
    --sbindir) sbindir=$2 ;;
    --libexecdir) libexecdir=$2 ;;
    --sysconfdir) sysconfdir=$2 ;;
    --mandir) mandir=$2 ;;
    *) usage ;;
    esac
    shift 2
done
for v in source_dir build_dir prefix sbindir libexecdir sysconfdir mandir; do
    [ -n "${!v}" ] || usage
done

daemon_manifest=$source_dir/smf/portunusd.xml
app_manifest=$source_dir/smf/door-application.xml
daemon_program=$sbindir/portunusd
app_program=$libexecdir/portunusd/hello_web
config_file=$sysconfdir/portunusd.toml
required_manpages='portunusd.8 portunusd.toml.5 portunus.1'

failures=0
fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

command -v xmllint >/dev/null || { echo "FAIL: xmllint not found (package libxml2-utils)" >&2; exit 1; }

# xpath FILE EXPR: the string value of EXPR in FILE (empty when nothing matches).
xpath() {
    xmllint --xpath "$2" "$1" 2>/dev/null
}

# What `cmake --install` would put where, read from the generated install scripts: one path a
# line, with the install prefix the manifests assume.
installed_paths() {
    find "$build_dir" -name cmake_install.cmake -exec cat {} + | awk -v prefix="$prefix" '
        function emit(stmt,    dest, rename, rest, file) {
            if (!match(stmt, /DESTINATION "[^"]*"/)) return
            dest = substr(stmt, RSTART + 13, RLENGTH - 14)
            gsub(/\$\{CMAKE_INSTALL_PREFIX\}/, prefix, dest)
            rename = ""
            if (match(stmt, /RENAME "[^"]*"/)) rename = substr(stmt, RSTART + 8, RLENGTH - 9)
            rest = substr(stmt, index(stmt, " FILES ") + 7)
            while (match(rest, /"[^"]*"/)) {
                file = substr(rest, RSTART + 1, RLENGTH - 2)
                sub(/.*\//, "", file)
                print dest "/" (rename != "" ? rename : file)
                rest = substr(rest, RSTART + RLENGTH)
            }
        }
        /^[ \t]*file\(INSTALL DESTINATION / { stmt = ""; open = 1 }
        open { stmt = stmt " " $0 }
        open && /\)[ \t]*$/ { emit(stmt); open = 0 }
    '
}

[ -d "$build_dir" ] || fail "build directory $build_dir does not exist"
installed=$(installed_paths)
well_formed=()

for manifest in "$daemon_manifest" "$app_manifest"; do
    name=${manifest#"$source_dir"/}
    if [ ! -f "$manifest" ]; then
        fail "$name: missing"
        continue
    fi
    if ! xmllint --noout "$manifest"; then
        fail "$name: not well-formed XML"
        continue
    fi
    well_formed+=("$manifest")
    # Only an illumos host has the DTD and svccfg; there the manifest is validated for real.
    dtd=/usr/share/lib/xml/dtd/service_bundle.dtd.1
    if [ -r "$dtd" ] && ! xmllint --noout --valid "$manifest"; then
        fail "$name: not valid against $dtd"
    fi
    if command -v svccfg >/dev/null && ! svccfg validate "$manifest"; then
        fail "$name: svccfg validate rejects it"
    fi

    [ "$(xpath "$manifest" 'string(/service_bundle/@type)')" = manifest ] ||
        fail "$name: service_bundle type is not 'manifest'"
    [ "$(xpath "$manifest" 'string(//property_group[@name="startd"]/propval[@name="duration"]/@value)')" = child ] ||
        fail "$name: startd/duration is not 'child' (the program runs in the foreground)"
    user=$(xpath "$manifest" 'string(//method_context/method_credential/@user)')
    case $user in
    '') fail "$name: no method_credential user: the methods would run as root" ;;
    root | 0) fail "$name: methods run as root" ;;
    esac

    # Every %{pg/prop} an exec method expands must be a property this manifest defines.
    count=$(xpath "$manifest" 'count(//exec_method)')
    for ((i = 1; i <= count; i++)); do
        exec=$(xpath "$manifest" "string((//exec_method)[$i]/@exec)")
        method=$(xpath "$manifest" "string((//exec_method)[$i]/@name)")
        rest=$exec
        while [[ $rest =~ %\{([^}]*)\} ]]; do
            rest=${rest#*"${BASH_REMATCH[0]}"}
            property=${BASH_REMATCH[1]%:*}
            pg=${property%%/*} prop=${property#*/}
            if [ "$pg" = "$property" ] || [ -z "$pg" ] || [ -z "$prop" ] || [[ $prop == */* ]]; then
                fail "$name: $method method: %{${BASH_REMATCH[1]}} is not of the form %{group/property}"
            elif [ "$(xpath "$manifest" "count(//property_group[@name='$pg']/*[(self::propval or self::property) and @name='$prop'])")" = 0 ]; then
                fail "$name: $method method uses %{$property}, which the manifest does not define"
            fi
        done
    done

    # Every man page the template links to exists in docs/ and is found under the install mandir.
    count=$(xpath "$manifest" 'count(//template/documentation/manpage)')
    for ((i = 1; i <= count; i++)); do
        manpage="(//template/documentation/manpage)[$i]"
        page="$(xpath "$manifest" "string($manpage/@title)").$(xpath "$manifest" "string($manpage/@section)")"
        [ -f "$source_dir/docs/$page" ] || fail "$name: links to man page $page, but docs/$page is missing"
        manpath=$(xpath "$manifest" "string($manpage/@manpath)")
        [ "$manpath" = "$mandir" ] || fail "$name: man page $page has manpath '$manpath', expected '$mandir'"
    done
done

# is_installed PATH: the build installs a file at PATH.
is_installed() {
    grep -qxF -- "$1" <<<"$installed"
}

# checkable FILE: FILE passed the checks above far enough to be read.
checkable() {
    local m
    for m in "${well_formed[@]}"; do
        [ "$m" = "$1" ] && return 0
    done
    return 1
}

if checkable "$daemon_manifest"; then
    name=smf/portunusd.xml
    [ "$(xpath "$daemon_manifest" 'count(/service_bundle/service[@name="network/portunusd"]/create_default_instance | /service_bundle/service[@name="network/portunusd"]/instance[@name="default"])')" != 0 ] ||
        fail "$name: does not define svc:/network/portunusd:default"
    is_installed "$daemon_program" || fail "$name: the build installs no $daemon_program"
    start=$(xpath "$daemon_manifest" 'string(//exec_method[@name="start"]/@exec)')
    [ "$start" = "$daemon_program -f %{config/file}" ] ||
        fail "$name: start method is '$start', expected '$daemon_program -f %{config/file}'"
    value=$(xpath "$daemon_manifest" 'string(//property_group[@name="config"]/propval[@name="file"]/@value)')
    [ "$value" = "$config_file" ] || fail "$name: config/file defaults to '$value', expected '$config_file'"
    [[ ,$(xpath "$daemon_manifest" 'string(//method_credential/@privileges)'), == *,net_privaddr,* ]] ||
        fail "$name: method_credential lacks net_privaddr: ports below 1024 would need root"
    for page in $required_manpages; do
        title=${page%.*} section=${page##*.}
        if [ "$(xpath "$daemon_manifest" "count(//template/documentation/manpage[@title='$title' and @section='$section'])")" = 0 ]; then
            fail "$name: template does not link to $title($section)"
            [ -f "$source_dir/docs/$page" ] || fail "docs/$page is missing"
        fi
    done
fi

if checkable "$app_manifest"; then
    name=smf/door-application.xml
    is_installed "$app_program" || fail "$name: the build installs no $app_program"
    start=$(xpath "$app_manifest" 'string(//exec_method[@name="start"]/@exec)')
    [[ ,$(xpath "$app_manifest" 'string(//method_credential/@privileges)'), == *,file_dac_write,* ]] ||
        fail "$name: method_credential lacks file_dac_write: the start method could not make the door's directory under /var"
    # The start method runs here as svc.startd runs it (/bin/sh -c "exec METHOD", %{config/door}
    # expanded), with a stand-in for illumos's ppriv that records how it was asked to start the
    # application: the directory logic is real, only ppriv is not.
    work=$(mktemp -d)
    cat >"$work/ppriv" <<'STUB'
#!/bin/sh
printf '%s\n' "$*" >"$(dirname "$0")/ppriv.args"
STUB
    chmod +x "$work/ppriv"
    run_start() { # DOOR: runs the start method for door DOOR; its exit status
        local method=${start//"%{config/door}"/$1}
        method=${method//\/usr\/bin\/ppriv/$work/ppriv}
        rm -f "$work/ppriv.args"
        /bin/sh -c "exec $method" 2>/dev/null
    }
    expected_args="-e -s LI-file_dac_write $app_program $work/doors/hello_web.door"
    if ! run_start "$work/doors/hello_web.door"; then
        fail "$name: start method failed where the door's directory can be made"
    else
        [ -d "$work/doors" ] || fail "$name: start method did not make the door's directory"
        [ "$(stat -c %a "$work/doors" 2>/dev/null)" = 755 ] ||
            fail "$name: start method made the door's directory with mode $(stat -c %a "$work/doors"), expected 755"
        [ "$(cat "$work/ppriv.args" 2>/dev/null)" = "$expected_args" ] ||
            fail "$name: start method ran ppriv with '$(cat "$work/ppriv.args" 2>/dev/null)', expected '$expected_args' (file_dac_write dropped, then the program)"
    fi
    # Second start: the directory is there and is left as it is.
    chmod 0700 "$work/doors"
    run_start "$work/doors/hello_web.door" || fail "$name: start method failed with the door's directory present"
    [ "$(stat -c %a "$work/doors")" = 700 ] || fail "$name: start method changed an existing directory"
    # A directory that cannot be made (its parent is missing): 96, the program never starts.
    run_start "$work/missing/doors/hello_web.door"
    status=$?
    [ "$status" = 96 ] || fail "$name: start method exited $status for a directory it cannot make, expected 96"
    [ ! -e "$work/ppriv.args" ] || fail "$name: start method started the program without its door's directory"
    rm -rf "$work"
fi

if [ "$failures" -ne 0 ]; then
    echo "smf_manifests: $failures problem(s)" >&2
    exit 1
fi
echo "smf_manifests: OK"
