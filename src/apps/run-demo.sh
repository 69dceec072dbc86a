#!/usr/bin/env bash
# SPDX-License-Identifier: MPL-2.0
# Sets everything up, starts the example door apps and portunusd on etc/portunusd.toml, and
# serves until Ctrl-C. With --check it instead tries every forward once and exits. With
# --build-dir DIR it runs the programs already built in DIR (a build tree of this project)
# instead of installing packages and building build/release. However it ends, it stops what
# it started and removes /tmp/portunusd-demo.
set -euo pipefail
cd "$(dirname "$0")/../.."
check=0
bin=''
while [[ $# -gt 0 ]]; do
  case "$1" in
    --check) check=1; shift ;;
    --build-dir) [[ $# -ge 2 ]] || { echo "run-demo: --build-dir needs a directory" >&2; exit 64; }
                 bin=$2; shift 2 ;;
    *) echo "usage: $0 [--check] [--build-dir DIR]" >&2; exit 64 ;;
  esac
done

if [[ -z "$bin" ]]; then
  tests/install-deps.sh run
  cmake --preset release >/dev/null
  cmake --build --preset release -j"$(nproc 2>/dev/null || echo 2)" --target portunusd portunus_cli echo hello_web go_away file_opener
  bin=build/release
fi

run=/tmp/portunusd-demo
pids=()
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  # The apps remove their doors and the daemon drains before the directory goes.
  wait 2>/dev/null || true
  rm -rf "$run"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
mkdir -p "$run"
chmod 0755 "$run" # portunusd refuses door directories that others can write

"$bin/apps/echo" "$run/echo.door" & pids+=($!)
"$bin/apps/hello_web" "$run/hello_web.door" & pids+=($!)
"$bin/apps/go_away" "$run/go_away.door" https://example.org/ & pids+=($!)
mkdir -p "$run/www"
printf '<!doctype html>\n<title>portunusd</title>\n<p>Served by file_opener through a door.</p>\n' > "$run/www/index.html"
"$bin/apps/file_opener" "$run/file_opener.door" "$run/www" /static & pids+=($!)
for door in echo hello_web go_away file_opener; do
  for _ in $(seq 50); do [[ -S "$run/$door.door" ]] && break; sleep 0.1; done
  [[ -S "$run/$door.door" ]] || { echo "run-demo: $door did not start" >&2; exit 1; }
done

"$bin/portunusd" -f etc/portunusd.toml & pids+=($!)
daemon=$!
for _ in $(seq 50); do nc -z 127.0.0.1 8080 2>/dev/null && break; sleep 0.1; done

if [[ $check -eq 1 ]]; then
  set -x
  curl -sS --max-time 5 http://127.0.0.1:8080/
  curl -sS --max-time 5 http://127.0.0.1:8088/ http://127.0.0.1:8088/again
  curl -sS --max-time 5 http://127.0.0.1:8088/static/
  curl -sS --max-time 5 -o /dev/null -w '%{http_code} %{redirect_url}\n' http://127.0.0.1:8081/
  printf 'hello over tcp\n' | nc -N -w 2 127.0.0.1 7007
  printf 'hello over udp\n' | nc -u -w 1 127.0.0.1 7007
  printf 'hello straight through the door\n' | "$bin/portunus" call "$run/echo.door"
  { set +x; } 2>/dev/null
  echo "run-demo: every forward answered"
  exit 0
fi

cat <<TXT

portunusd is serving etc/portunusd.toml. Try, from another shell:
  curl http://127.0.0.1:8080/                    # hello_web through a door
  curl http://127.0.0.1:8088/static/             # http forward: file_opener on /static
  curl http://127.0.0.1:8088/anything            # ... and hello_web for the rest
  curl -i http://127.0.0.1:8081/                 # go_away: a redirect
  echo hi | nc -N 127.0.0.1 7007                 # echo over tcp
  echo hi | nc -u -w1 127.0.0.1 7007             # echo over udp
  echo hi | $bin/portunus call $run/echo.door    # call a door directly
  kill -HUP $daemon                              # reload the configuration
  (uncomment the pass forward in etc/portunusd.toml, kill -HUP, then:)
  curl http://127.0.0.1:8090/index.html          # file_opener on the client's own connection
Ctrl-C stops everything.
TXT
wait "$daemon"
