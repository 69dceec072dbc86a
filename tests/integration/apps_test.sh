#!/usr/bin/env bash
# SPDX-License-Identifier: MPL-2.0
# Runs the example door applications and calls them with `portunus call`: echo answers with the
# exact bytes, hello_web with an HTTP 200 that counts visitors, go_away with a 301; each one exits
# 0 on SIGTERM and removes its door, and exits 64 without a door path.
set -u

usage() {
    echo "usage: $0 --echo PROGRAM --hello-web PROGRAM --go-away PROGRAM --cli PROGRAM" >&2
    exit 2
}

echo_app='' hello_web_app='' go_away_app='' cli=''
while [ $# -gt 0 ]; do
    [ $# -ge 2 ] || usage
    case $1 in
    --echo) echo_app=$2 ;;
    --hello-web) hello_web_app=$2 ;;
    --go-away) go_away_app=$2 ;;
    --cli) cli=$2 ;;
    *) usage ;;
    esac
    shift 2
done
for v in echo_app hello_web_app go_away_app cli; do
    [ -n "${!v}" ] || usage
done

die() {
    echo "FAIL: $*" >&2
    exit 1
}

for program in "$echo_app" "$hello_web_app" "$go_away_app" "$cli"; do
    [ -x "$program" ] || die "$program is missing or not executable (build it first)"
done
command -v timeout >/dev/null || die "timeout(1) not found"

# A short directory: a door on the uds backend is a socket, and socket paths are limited to 108
# bytes.
tmp=$(mktemp -d /tmp/portunus-apps.XXXXXX) || die "cannot create a temporary directory"
running=()

# wait_gone PID TENTHS: polls until PID has exited, for at most TENTHS tenths of a second.
wait_gone() {
    local i
    for ((i = 0; i < $2; i++)); do
        kill -0 "$1" 2>/dev/null || return 0
        sleep 0.1
    done
    ! kill -0 "$1" 2>/dev/null
}

cleanup() {
    local pid
    for pid in "${running[@]}"; do
        kill -TERM "$pid" 2>/dev/null
        wait_gone "$pid" 30 || kill -KILL "$pid" 2>/dev/null
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start_app NAME PROGRAM [ARGUMENT...]: runs PROGRAM with the door $tmp/NAME.door and the
# arguments, and waits (up to 5 s) for the door to appear. Sets app_pid and app_door.
start_app() {
    local name=$1 program=$2 i status
    shift 2
    app_door=$tmp/$name.door
    "$program" "$app_door" "$@" >"$tmp/$name.log" 2>&1 &
    app_pid=$!
    running+=("$app_pid")
    for ((i = 0; i < 50; i++)); do
        [ -e "$app_door" ] && return 0
        if ! kill -0 "$app_pid" 2>/dev/null; then
            wait "$app_pid"
            status=$?
            die "$name exited with status $status before its door appeared at $app_door:" \
                "$(cat "$tmp/$name.log")"
        fi
        sleep 0.1
    done
    die "$name: no door at $app_door after 5 s: $(cat "$tmp/$name.log")"
}

# stop_app NAME PID DOOR: SIGTERM must make the application exit 0 within 5 s, door removed.
stop_app() {
    local name=$1 pid=$2 door=$3 status kept=() p
    kill -TERM "$pid" 2>/dev/null || die "$name (pid $pid) is no longer running"
    wait_gone "$pid" 50 || die "$name did not exit within 5 s of SIGTERM"
    wait "$pid"
    status=$?
    for p in "${running[@]}"; do
        [ "$p" = "$pid" ] || kept+=("$p")
    done
    running=("${kept[@]}")
    [ "$status" -eq 0 ] || die "$name exited with status $status on SIGTERM, expected 0: $(cat "$tmp/$name.log")"
    [ ! -e "$door" ] || die "$name left its door $door behind after SIGTERM"
}

# call DOOR REQUEST_FILE REPLY_FILE: one door call through the CLI, bounded to 10 s.
call() {
    timeout 10 "$cli" call "$1" <"$2" >"$3" 2>"$tmp/call.err" ||
        die "portunus call $1 failed with status $?: $(cat "$tmp/call.err")"
}

# check_usage NAME PROGRAM: without a door path the program prints a usage line and exits 64;
# with --help it prints the usage on stdout and exits 0; an unknown option exits 64. Neither
# option is taken for a door path (run in an empty directory, nothing may appear there).
check_usage() {
    local status
    timeout 5 "$2" >/dev/null 2>"$tmp/usage.err"
    status=$?
    [ "$status" -eq 64 ] || die "$1 without a door path exited with status $status, expected 64"
    grep -qi usage "$tmp/usage.err" || die "$1 without a door path printed no usage line on stderr"
    mkdir -p "$tmp/cwd-$1"
    (cd "$tmp/cwd-$1" && timeout 5 "$2" --help >"$tmp/usage.out" 2>"$tmp/usage.err")
    status=$?
    [ "$status" -eq 0 ] || die "$1 --help exited with status $status, expected 0: $(cat "$tmp/usage.err")"
    grep -qi usage "$tmp/usage.out" || die "$1 --help printed no usage line on stdout"
    (cd "$tmp/cwd-$1" && timeout 5 "$2" --no-such-option >/dev/null 2>"$tmp/usage.err")
    status=$?
    [ "$status" -eq 64 ] || die "$1 --no-such-option exited with status $status, expected 64"
    grep -q -- "--no-such-option" "$tmp/usage.err" || die "$1 did not name the unknown option on stderr"
    [ -z "$(ls -A "$tmp/cwd-$1")" ] || die "$1 left $(ls -A "$tmp/cwd-$1") behind for an option"
}

cr=$'\r'

# header REPLY NAME: the value of header NAME (any case) in REPLY.head, written by check_http.
header() {
    awk -v name="$2" '
        { colon = index($0, ":") }
        colon && tolower(substr($0, 1, colon - 1)) == tolower(name) {
            value = substr($0, colon + 1)
            sub(/^[ \t]+/, "", value)
            sub(/[ \t]+$/, "", value)
            print value
            exit
        }' "$1.head"
}

# check_http REPLY STATUS_LINE: REPLY is one HTTP/1.1 response with that status line, CRLF line
# ends, Connection: close and a Content-Length equal to the body's length. Leaves the body in
# REPLY.body and the header lines (CR removed) in REPLY.head.
check_http() {
    local reply=$1 status_line=$2 end head_bytes length
    [ "$(head -n 1 "$reply")" = "$status_line$cr" ] ||
        die "expected status line '$status_line', got: $(head -n 1 "$reply" | cat -v)"
    end=$(awk -v cr="$cr" '$0 == cr { print NR; exit }' "$reply")
    [ -n "$end" ] || die "no empty line ends the headers of: $(cat -v "$reply")"
    head_bytes=$(head -n "$end" "$reply" | wc -c)
    head -n "$end" "$reply" | tr -d '\r' >"$reply.head"
    tail -c +"$((head_bytes + 1))" "$reply" >"$reply.body"
    length=$(header "$reply" content-length)
    [[ $length =~ ^[0-9]+$ ]] || die "no valid Content-Length in: $(cat "$reply.head")"
    [ "$length" -eq "$(wc -c <"$reply.body")" ] ||
        die "Content-Length $length, but the body has $(wc -c <"$reply.body") bytes"
    grep -qix 'connection: close' "$reply.head" || die "no 'Connection: close' in: $(cat "$reply.head")"
}


# ---- missing door path ----
check_usage echo "$echo_app"
check_usage hello_web "$hello_web_app"
check_usage go_away "$go_away_app"

# ---- echo: RFC 862 ----
start_app echo "$echo_app"
printf 'hello, door\r\n' >"$tmp/text"
: >"$tmp/empty"
head -c 102400 /dev/urandom >"$tmp/100k"
head -c 4194304 /dev/urandom >"$tmp/4m"
for request in text empty 100k 4m; do
    call "$app_door" "$tmp/$request" "$tmp/$request.reply"
    cmp -s "$tmp/$request" "$tmp/$request.reply" ||
        die "echo changed the $request request ($(wc -c <"$tmp/$request") bytes in," \
            "$(wc -c <"$tmp/$request.reply") bytes back)"
done
stop_app echo "$app_pid" "$app_door"

# ---- hello_web: a 200 per request, visitors counted across the pool's threads ----
start_app hello_web "$hello_web_app"
printf 'GET / HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n' >"$tmp/get"

# visitor REPLY: the visitor number in a hello_web reply body.
visitor() {
    local body
    body=$(cat "$1.body")
    [[ $body =~ ^Hello\ from\ a\ door!\ You\ are\ visitor\ ([0-9]+)\.$ ]] ||
        die "unexpected hello_web body: $body"
    echo "${BASH_REMATCH[1]}"
}

for n in 1 2; do
    call "$app_door" "$tmp/get" "$tmp/hello.$n"
    check_http "$tmp/hello.$n" 'HTTP/1.1 200 OK'
    [ "$(header "$tmp/hello.$n" content-type)" = 'text/plain; charset=utf-8' ] ||
        die "hello_web Content-Type is '$(header "$tmp/hello.$n" content-type)'"
    [ "$(visitor "$tmp/hello.$n")" = "$n" ] ||
        die "call $n was visitor $(visitor "$tmp/hello.$n"), expected $n"
done

# Concurrent calls: every visitor number from 3 to 18 exactly once.
callers=()
for ((n = 3; n <= 18; n++)); do
    timeout 10 "$cli" call "$app_door" <"$tmp/get" >"$tmp/hello.$n" 2>"$tmp/hello.$n.err" &
    callers+=("$!")
done
for pid in "${callers[@]}"; do
    wait "$pid" || die "a concurrent call to hello_web failed: $(cat "$tmp"/hello.*.err)"
done
for ((n = 3; n <= 18; n++)); do
    check_http "$tmp/hello.$n" 'HTTP/1.1 200 OK'
    visitor "$tmp/hello.$n" >>"$tmp/visitors"
done
[ "$(sort -n "$tmp/visitors" | tr '\n' ' ')" = "$(printf '%s ' {3..18})" ] ||
    die "16 concurrent visitors were numbered $(sort -n "$tmp/visitors" | tr '\n' ' ')"
stop_app hello_web "$app_pid" "$app_door"

# ---- go_away: a 301 to the Location given, or to the default ----
for target in 'https://portunus.example/new-home?from=door' ''; do
    if [ -n "$target" ]; then
        start_app go_away "$go_away_app" "$target"
        expected=$target
    else
        start_app go_away "$go_away_app"
        expected=https://example.org/
    fi
    call "$app_door" "$tmp/get" "$tmp/away"
    check_http "$tmp/away" 'HTTP/1.1 301 Moved Permanently'
    [ "$(header "$tmp/away" location)" = "$expected" ] ||
        die "go_away sent Location '$(header "$tmp/away" location)', expected '$expected'"
    stop_app go_away "$app_pid" "$app_door"
done

# A target with CR LF would inject headers: refused before any door is made.
timeout 5 "$go_away_app" "$tmp/bad.door" $'https://example.org/\r\nSet-Cookie: a=b' \
    >/dev/null 2>"$tmp/bad.err"
status=$?
[ "$status" -eq 64 ] || die "go_away accepted a Location with CR LF (status $status)"
[ ! -e "$tmp/bad.door" ] || die "go_away made a door despite a bad Location"

echo "example_apps: OK"
