#!/usr/bin/env bash
# Configures and builds Rendezvous with CMake + Ninja.
#
#   scripts/build.sh [BUILD_DIR] [extra cmake args...] [--target T...]
#
# BUILD_DIR defaults to `build`; a relative BUILD_DIR is taken relative to the
# repository root. The build type is RelWithDebInfo (override with
# -DCMAKE_BUILD_TYPE=...). Every part is on (tests, bench tools, the C++
# client) unless an argument turns it off, so a build dir that
# scripts/run-server.sh configured for the server alone builds everything
# again here. When CI is set (and not "false"/"0"), warnings are errors
# (-DRENDEZVOUS_WERROR=ON). `--target T` (repeatable) builds only T; the
# default is every target. Builds with all cores. Does not install
# dependencies: see scripts/install-deps.sh.
#
# Examples:
#   scripts/build.sh
#   scripts/build.sh build-asan -DRENDEZVOUS_SANITIZE=ON
#   scripts/build.sh build -DRENDEZVOUS_TESTS=OFF --target rendezvous-server
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

BUILD_DIR="build"
if (($#)) && [[ "$1" != -* ]]; then BUILD_DIR="$1"; shift; fi

cmake_args=() targets=()
while (($#)); do
  case "$1" in
    --target) [[ $# -ge 2 ]] || { echo "[build] --target needs a name" >&2; exit 2; }
              targets+=(--target "$2"); shift 2 ;;
    *) cmake_args+=("$1"); shift ;;
  esac
done

args=(-S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
      -DRENDEZVOUS_TESTS=ON -DRENDEZVOUS_BENCH=ON -DRENDEZVOUS_CLIENT=ON)
if [[ -n "${CI:-}" && "${CI}" != "false" && "${CI}" != "0" ]]; then
  args+=(-DRENDEZVOUS_WERROR=ON)
fi

# A build dir made earlier with another generator cannot be reused as is:
# drop its cache (only CMake's own files) and configure again.
cache="$BUILD_DIR/CMakeCache.txt"
if [[ -f "$cache" ]] && ! grep -q '^CMAKE_GENERATOR:INTERNAL=Ninja$' "$cache"; then
  echo "[build] $BUILD_DIR was configured with another generator; reconfiguring with Ninja" >&2
  rm -rf -- "$cache" "$BUILD_DIR/CMakeFiles"
fi

jobs="$(nproc 2>/dev/null || echo 2)"
echo "[build] cmake ${args[*]} ${cmake_args[*]}" >&2
cmake "${args[@]}" "${cmake_args[@]}"
echo "[build] cmake --build $BUILD_DIR --parallel $jobs ${targets[*]}" >&2
cmake --build "$BUILD_DIR" --parallel "$jobs" "${targets[@]}"
