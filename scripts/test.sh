#!/usr/bin/env bash
# Everything CI checks, in order (quick-start command 2; .ci/run runs this):
#
#   1. deps        scripts/install-deps.sh
#   2. build       scripts/build.sh build -DRENDEZVOUS_WERROR=ON
#   3. ctest       ctest --test-dir build (protocol_unit, server_unit, integration)
#   4. asan-build  scripts/build.sh build-asan -DRENDEZVOUS_SANITIZE=ON (ASan + UBSan)
#   5. asan-ctest  the same tests against the sanitizer build
#   6. fuzz        scripts/run-fuzz.sh, if it exists (FUZZ_SECONDS, default 60)
#
# Every stage runs even if an earlier one failed (a test stage whose build
# failed is reported as skipped). Prints each stage's result and duration at
# the end and exits non-zero if any stage failed.
#
# Skips: a test whose prerequisite the machine cannot provide exits 77 after
# one line `SKIP: <reason>` (ctest's SKIP_RETURN_CODE); node:test subtests
# skip with a reason too. The summary lists every skipped test and subtest of
# both ctest stages with its reason. With CI=true (not "false"/"0") a skip
# fails the run unless tests/allowed-skips.txt has an entry for it.
#
# Time: the whole run is kept within RENDEZVOUS_TEST_BUDGET_S seconds (default
# 4800 = 80 min, under CI's 90): a stage still running when the budget is
# used up is killed and counted as failed, and the summary is still printed.
# Each stage's output is also saved in build-logs/<stage>.log.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 1

export FUZZ_SECONDS="${FUZZ_SECONDS:-60}"
BUDGET="${RENDEZVOUS_TEST_BUDGET_S:-4800}"
LOG_DIR="$ROOT/build-logs"
mkdir -p "$LOG_DIR"

# LeakSanitizer reads tests/lsan.supp: GStreamer's and GLib's allocations
# that live as long as the process (each entry says why it is not ours).
# G_SLICE=always-malloc makes GLib's slice allocator use malloc, so ASan sees
# (and checks) those blocks instead of GLib's own pools.
SAN_ENV=(
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  "LSAN_OPTIONS=suppressions=$ROOT/tests/lsan.supp:print_suppressions=0"
  G_SLICE=always-malloc
)

names=() statuses=() durations=() notes=()
n_pass=0 n_fail=0 n_skip=0

fmt_dur() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }

record() {  # name status seconds note
  names+=("$1") statuses+=("$2") durations+=("$3") notes+=("$4")
  case "$2" in
    passed) n_pass=$((n_pass + 1)) ;;
    skipped) n_skip=$((n_skip + 1)) ;;
    *) n_fail=$((n_fail + 1)) ;;
  esac
}

skip() {  # name status note
  printf '\n==> [%s] %s: %s\n' "$(date +%H:%M:%S)" "$1" "$3"
  record "$1" "$2" 0 "$3"
}

# ctest's own count, e.g. "3/3 tests passed", from a stage log.
ctest_note() {
  local line
  line="$(grep -E '[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$1" | tail -n1)"
  [[ -n "$line" ]] || return 0
  local failed total
  failed="$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$line")"
  total="$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\2/' <<<"$line")"
  printf '%d/%d tests passed' $((total - failed)) "$total"
}

# run_stage NAME COMMAND...: runs COMMAND within what is left of the budget,
# its output shown and saved to build-logs/NAME.log. `timeout` puts the stage
# in its own process group, so everything the stage started (servers, fuzzers)
# is killed with it on a time-out or on Ctrl-C / SIGTERM of this script.
STAGE_PGID=""
run_stage() {
  local name="$1"; shift
  local left=$((BUDGET - SECONDS - 30))
  if ((left < 60)); then
    skip "$name" "failed" "not run: time budget (${BUDGET}s) used up"
    return 1
  fi
  printf '\n==> [%s] %s: %s\n' "$(date +%H:%M:%S)" "$name" "$*"
  local log="$LOG_DIR/$name.log" fifo="$LOG_DIR/.$name.fifo"
  rm -f "$fifo" && mkfifo "$fifo"
  tee "$log" <"$fifo" &
  local tee_pid=$!
  local t0=$SECONDS rc=0
  timeout --kill-after=30 "$left" "$@" </dev/null >"$fifo" 2>&1 &
  STAGE_PGID=$!
  wait "$STAGE_PGID" || rc=$?
  STAGE_PGID=""
  wait "$tee_pid" 2>/dev/null
  rm -f "$fifo"
  local dt=$((SECONDS - t0)) note=""
  [[ "$name" == *ctest* ]] && note="$(ctest_note "$log")"
  if ((rc == 0)); then
    record "$name" passed "$dt" "$note"
  elif ((rc == 124 || rc == 137)); then
    record "$name" "TIMED OUT" "$dt" "killed when the ${BUDGET}s budget ran out${note:+; $note}"
  else
    record "$name" FAILED "$dt" "exit $rc${note:+; $note}"
  fi
  printf '<== %s: %s in %s\n' "$name" "${statuses[-1]}" "$(fmt_dur "$dt")"
  return "$rc"
}

# ---------------------------------------------------------------------------
# Skips. SKIPS holds "stage|test|reason" lines, collected from each ctest
# stage: ctest's "(Skipped)" list names the tests that exited 77; their
# output in Testing/Temporary/LastTest.log has the `SKIP: <reason>` line.
# Tests that ran can still have skipped node:test subtests (the spec
# reporter's `﹣ NAME (TIME) # REASON` lines): those are listed as
# "test: subtest".
SKIPS=()
collect_skips() {  # stage stage-log build-dir
  local stage="$1" log="$2" lt="$3/Testing/Temporary/LastTest.log" line
  [[ -f "$log" && -f "$lt" ]] || return 0
  local skipped
  skipped="$(sed -nE 's/^[[:space:]]+[0-9]+ - (.+) \(Skipped\)$/\1/p' "$log" | tr '\n' ' ')"
  while IFS= read -r line; do
    [[ -n "$line" ]] && SKIPS+=("$stage|$line")
  done < <(awk -v skipped=" $skipped" '
    function flush() {
      if (name != "" && index(skipped, " " name " "))
        print name "|" (reason != "" ? reason : "exited 77 without a SKIP: line")
    }
    /^[0-9]+\/[0-9]+ Testing: / { flush(); name = $0; sub(/^[0-9]+\/[0-9]+ Testing: /, "", name); reason = ""; out = 1; next }
    /^<end of output>$/ { out = 0; next }
    out && /SKIP(PED)?: / { reason = $0; sub(/.*SKIP(PED)?: /, "", reason) }
    out && /^[[:space:]]*﹣ .* \([0-9.]+m?s\) # / {
      sub_name = $0; sub(/^[[:space:]]*﹣ /, "", sub_name); sub(/ \([0-9.]+m?s\) # .*$/, "", sub_name)
      why = $0; sub(/.* \([0-9.]+m?s\) # /, "", why)
      print name ": " sub_name "|" why
    }
    END { flush() }' "$lt")
}

# allowed_skip TEST REASON: whether tests/allowed-skips.txt accepts it.
allowed_skip() {
  local test="${1%%: *}" reason="$2" t r _why
  [[ -f "$ROOT/tests/allowed-skips.txt" ]] || return 1
  while IFS='|' read -r t r _why; do
    t="$(sed -E 's/^[[:space:]]+|[[:space:]]+$//g' <<<"$t")"; r="$(sed -E 's/^[[:space:]]+|[[:space:]]+$//g' <<<"$r")"
    [[ -z "$t" || "$t" == \#* ]] && continue
    [[ "$t" == "$test" ]] && grep -qE -- "$r" <<<"$reason" && return 0
  done <"$ROOT/tests/allowed-skips.txt"
  return 1
}

is_ci() { [[ -n "${CI:-}" && "${CI}" != "false" && "${CI}" != "0" ]]; }

# After the stages: the skips, and with CI=true the ones not allowed fail.
check_skips() {
  ((${#SKIPS[@]})) || return 0
  local entry stage test reason bad=0
  for entry in "${SKIPS[@]}"; do
    IFS='|' read -r stage test reason <<<"$entry"
    if allowed_skip "$test" "$reason"; then
      SKIP_LINES+=("$(printf '  %-10s %-40s %s (allowed: tests/allowed-skips.txt)' "$stage" "$test" "$reason")")
    else
      SKIP_LINES+=("$(printf '  %-10s %-40s %s' "$stage" "$test" "$reason")")
      bad=$((bad + 1))
    fi
  done
  if is_ci && ((bad)); then
    record skips FAILED 0 "CI=true: $bad skip(s) not in tests/allowed-skips.txt (listed below)"
  else
    record skips passed 0 "${#SKIPS[@]} skipped test(s), listed below"
  fi
}
SKIP_LINES=()

summary() {
  printf '\n==================== Rendezvous test summary ====================\n'
  printf '%-12s %-10s %8s  %s\n' stage result time note
  local i
  for i in "${!names[@]}"; do
    printf '%-12s %-10s %8s  %s\n' "${names[$i]}" "${statuses[$i]}" "$(fmt_dur "${durations[$i]}")" \
      "${notes[$i]}"
  done
  printf '%-12s %-10s %8s\n' total "" "$(fmt_dur "$SECONDS")"
  printf 'stages: %d passed, %d failed, %d skipped\n' "$n_pass" "$n_fail" "$n_skip"
  if ((${#SKIP_LINES[@]})); then
    printf 'skipped tests (stage, test, reason):\n'
    printf '%s\n' "${SKIP_LINES[@]}"
  else
    printf 'skipped tests: none\n'
  fi
}

on_signal() {
  trap '' INT TERM
  if [[ -n "$STAGE_PGID" ]]; then
    kill -TERM -- "-$STAGE_PGID" 2>/dev/null || kill -TERM "$STAGE_PGID" 2>/dev/null
    wait "$STAGE_PGID" 2>/dev/null
  fi
  record interrupted FAILED 0 "test.sh got a signal"
  check_skips
  summary
  exit 130
}
trap on_signal INT TERM

echo "Rendezvous test run: $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, budget ${BUDGET}s," \
  "FUZZ_SECONDS=$FUZZ_SECONDS, commit $(git rev-parse --short HEAD 2>/dev/null || echo none)"

run_stage deps scripts/install-deps.sh

if run_stage build scripts/build.sh build -DRENDEZVOUS_WERROR=ON; then
  run_stage ctest ctest --test-dir build --output-on-failure --no-tests=error --timeout 600
  collect_skips ctest "$LOG_DIR/ctest.log" build
else
  skip ctest skipped "not run: build failed"
fi

# Warnings are not errors in the sanitizer build: GCC 12 is known to emit
# false -Wstringop-overflow / -Wmaybe-uninitialized under -fsanitize=address
# at -O2, and the build stage above already enforces -Werror on the same code.
# The sanitizer build has every part: the server and protocol (unit,
# integration, TURN), the C++ client (unit and end-to-end: rendezvous-peer
# with GStreamer under ASan) and the bench tools the storm test drives. The
# browser and container tests run once, above (Chromium and podman run no
# code of ours that the sanitizers would see beyond the server, which the
# other tests cover).
if run_stage asan-build scripts/build.sh build-asan -DRENDEZVOUS_SANITIZE=ON -DRENDEZVOUS_WERROR=OFF; then
  run_stage asan-ctest env "${SAN_ENV[@]}" \
    ctest --test-dir build-asan --output-on-failure --no-tests=error --timeout 900 -E '^(container|browser)$'
  collect_skips asan-ctest "$LOG_DIR/asan-ctest.log" build-asan
else
  skip asan-ctest skipped "not run: sanitizer build failed"
fi

if [[ -f scripts/run-fuzz.sh ]]; then
  run_stage fuzz bash scripts/run-fuzz.sh
else
  skip fuzz skipped "not run: scripts/run-fuzz.sh does not exist yet"
fi

check_skips
summary
((n_fail == 0))
