#!/usr/bin/env bash
# SPDX-License-Identifier: MPL-2.0
# Sets everything up and runs every test: release build, ASan/UBSan build, short fuzz runs.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)

tests/install-deps.sh test

echo "== release build and tests"
cmake --preset release >/dev/null
cmake --build --preset release -j"$jobs"
ctest --preset release --timeout 300 -j2

echo "== ASan/UBSan build and tests"
cmake --preset asan >/dev/null
cmake --build --preset asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --preset asan --timeout 600 -j2

echo "== fuzz targets (${PORTUNUS_FUZZ_SECONDS:-20} s each)"
CXX=clang++ cmake -S . -B build/fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPORTUNUS_FUZZ=ON \
  -DPORTUNUS_FUZZ_SECONDS="${PORTUNUS_FUZZ_SECONDS:-20}" -DBUILD_TESTING=ON >/dev/null
cmake --build build/fuzz -j"$jobs" --target $(ctest --test-dir build/fuzz -L fuzz -N | awk '/Test +#/{print $3}')
# Each target runs on one CPU for its whole time: side by side they keep the suite short.
ctest --test-dir build/fuzz -L fuzz -j"$jobs" --output-on-failure
