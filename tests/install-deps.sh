#!/usr/bin/env bash
# SPDX-License-Identifier: MPL-2.0
# Installs the Debian packages portunusd needs: `run` for building and running the daemon,
# `test` for the whole test suite, `bench` for the benchmarks. Idempotent.
set -euo pipefail

build_pkgs=(cmake make g++ pkg-config libboost-dev libspdlog-dev libtomlplusplus-dev libssl-dev)
run_pkgs=(curl netcat-openbsd)
test_pkgs=(catch2 python3 curl socat netcat-openbsd libxml2-utils mandoc clang libclang-rt-14-dev wrk prometheus
  systemd dpkg-dev file haproxy iproute2 openssl)
# Debian 12's nginx-light pulls in nginx, built with the ssl module (tls_compare.py needs it);
# openssl: the command that makes tls_compare.py's certificate and its handshake load (s_time).
bench_pkgs=(wrk nginx-light xinetd hyperfine python3 haproxy openssl)

want=("${build_pkgs[@]}")
for what in "${@:-run}"; do
  case "$what" in
    run) want+=("${run_pkgs[@]}") ;;
    test) want+=("${test_pkgs[@]}") ;;
    bench) want+=("${bench_pkgs[@]}") ;;
    *) echo "install-deps: unknown set '$what' (run, test or bench)" >&2; exit 64 ;;
  esac
done

missing=()
for p in "${want[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
# Dedupe while keeping the order, so the message lists each package once.
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | awk 'NF && !seen[$0]++')
[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -ne 0 ]]; then
  echo "install-deps: missing Debian packages: ${missing[*]}" >&2
  echo "install-deps: run as root, or: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# nginx-light and xinetd start system services on install; the benchmarks run their own copies.
if [[ " ${missing[*]} " == *" nginx-light "* ]] && command -v systemctl >/dev/null; then
  systemctl stop nginx 2>/dev/null || true
fi
# haproxy is wanted for the multihost test, which runs its own; the packaged service is stopped.
if [[ " ${missing[*]} " == *" haproxy "* ]]; then
  if command -v systemctl >/dev/null; then systemctl stop haproxy 2>/dev/null || true; fi
  if command -v service >/dev/null; then service haproxy stop >/dev/null 2>&1 || true; fi
fi
# prometheus is wanted for promtool alone; its server, started on install, is stopped again.
if [[ " ${missing[*]} " == *" prometheus "* ]]; then
  if command -v systemctl >/dev/null; then systemctl stop prometheus 2>/dev/null || true; fi
  if command -v service >/dev/null; then service prometheus stop >/dev/null 2>&1 || true; fi
fi
