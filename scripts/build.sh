#!/usr/bin/env bash
# Configures and builds Rendezvous with CMake + Ninja.
#
#   scripts/build.sh [BUILD_DIR] [extra cmake args...]
#
# BUILD_DIR defaults to `build`; a relative BUILD_DIR is taken relative to the
# repository root. The build type is RelWithDebInfo (override with
# -DCMAKE_BUILD_TYPE=...). When CI is set (and not "false"/"0"), warnings are
# errors (-DRENDEZVOUS_WERROR=ON). Builds with all cores. Does not install
# dependencies: see scripts/install-deps.sh.
#
# Examples:
#   scripts/build.sh
#   scripts/build.sh build-asan -DRENDEZVOUS_SANITIZE=ON
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

BUILD_DIR="${1:-build}"
if (($#)); then shift; fi

args=(-S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo)
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
echo "[build] cmake ${args[*]} $*" >&2
cmake "${args[@]}" "$@"
echo "[build] cmake --build $BUILD_DIR --parallel $jobs" >&2
cmake --build "$BUILD_DIR" --parallel "$jobs"
