#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz with clang and runs each one for
# a bounded time. Fails on any crash, leak, sanitizer report or oracle mismatch.
#
#   FUZZ_SECONDS   seconds per fuzzer (default 60)
#   FUZZ_BUILD_DIR build directory (default <repo>/build-fuzz)
#   FUZZ_CXX       compiler (default clang++)
#   FUZZ_TARGETS   fuzzers to run (default "protocol endpoint http")
#
# The committed seed corpus is copied to a temporary directory first, so runs
# never grow it. Crash reproducers land in $FUZZ_BUILD_DIR/artifacts/.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
seconds=${FUZZ_SECONDS:-60}
build=${FUZZ_BUILD_DIR:-$root/build-fuzz}
targets=${FUZZ_TARGETS:-protocol endpoint http}

generator=()
if command -v ninja >/dev/null; then generator=(-G Ninja); fi
if [[ ! -f "$build/CMakeCache.txt" ]]; then
  CXX=${FUZZ_CXX:-clang++} cmake -S "$root/tests/fuzz" -B "$build" "${generator[@]}"
fi
cmake --build "$build"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$build/artifacts"

status=0
for target in $targets; do
  corpus="$work/$target"
  mkdir -p "$corpus"
  cp "$root/tests/fuzz/corpus/$target"/* "$corpus/"
  echo "== ${target}_fuzz for ${seconds}s"
  log="$work/$target.log"
  # -timeout: one input taking seconds is a hang worth reporting.
  dict=()
  if [[ -f "$root/tests/fuzz/$target.dict" ]]; then dict=(-dict="$root/tests/fuzz/$target.dict"); fi
  # http reads whole requests: past the server's 16 KiB header limit.
  max_len=4096
  if [[ $target == http ]]; then max_len=20480; fi
  rc=0
  (cd "$work" && "$build/${target}_fuzz" "$corpus" "${dict[@]}" \
      -max_len="$max_len" -max_total_time="$seconds" -timeout=10 \
      -print_final_stats=1 -artifact_prefix="$build/artifacts/${target}-") >"$log" 2>&1 || rc=$?
  grep -E '^(Done |stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb|new_units_added))' "$log" || true
  if [[ $rc -ne 0 ]] || grep -qE 'ERROR: (libFuzzer|AddressSanitizer|LeakSanitizer)|runtime error:|_fuzz: ' "$work/$target.log"; then
    echo "!! ${target}_fuzz failed; log tail:" >&2
    tail -n 60 "$work/$target.log" >&2
    status=1
  fi
done
exit $status
