#!/usr/bin/env bash
# SPDX-License-Identifier: MPL-2.0
# Each example application answers --version with "NAME VERSION" (the project's version) on
# stdout and exit status 0, attaching no door, wherever the option stands.
set -u
[ $# -ge 2 ] || { echo "usage: $0 VERSION PROGRAM..." >&2; exit 2; }
version=$1
shift
tmp=$(mktemp -d /tmp/portunus-version.XXXXXX) || exit 1
trap 'rm -rf "$tmp"' EXIT
failures=0
for program in "$@"; do
    program=$(realpath "$program")
    name=$(basename "$program")
    for args in "--version" "$tmp/x.door --version"; do
        # shellcheck disable=SC2086 # two words in the second case
        out=$(cd "$tmp" && timeout 5 "$program" $args 2>"$tmp/err")
        status=$?
        if [ "$status" -ne 0 ] || [ "$out" != "$name $version" ] || [ -s "$tmp/err" ]; then
            echo "FAIL: $name $args: status $status, stdout '$out', stderr '$(cat "$tmp/err")';" \
                "expected 0 and '$name $version'" >&2
            failures=$((failures + 1))
        fi
    done
    [ -z "$(ls -A "$tmp" | grep -v '^err$')" ] || { echo "FAIL: $name left $(ls -A "$tmp") behind" >&2; failures=$((failures + 1)); }
done
[ "$failures" -eq 0 ] || exit 1
echo "apps_version: OK"
