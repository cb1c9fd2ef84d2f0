# Prerequisite checks shared by the test wrappers (sourced, not run). The
# rule (README, Tests): a test whose prerequisite this machine cannot provide
# exits 77 (ctest's SKIP_RETURN_CODE) after one line `SKIP: <reason>`;
# scripts/test.sh lists every skip with that reason, and with CI=true fails
# on one that tests/allowed-skips.txt does not name.
# shellcheck shell=bash

# skip_test REASON: print the one skip line and exit 77.
skip_test() {
  printf '[%s] SKIP: %s\n' "${PREREQ_TAG:-test}" "$*" >&2
  exit 77
}

# netns_problem: prints nothing and returns 0 when this process can create a
# network namespace with a veth pair in it (what the TURN and browser tests
# build); otherwise prints the reason on one line and returns 1.
netns_problem() {
  if [[ "$(id -u)" -ne 0 ]]; then echo "network namespaces need root"; return 1; fi
  if ! command -v ip >/dev/null 2>&1; then echo "no ip command (iproute2)"; return 1; fi
  local ns="rdv-probe-$$-$RANDOM" err
  if ! err="$(ip netns add "$ns" 2>&1)"; then
    ip netns del "$ns" >/dev/null 2>&1
    echo "cannot create a network namespace here (ip netns add: $(head -n1 <<<"$err"))"
    return 1
  fi
  if ! err="$(ip -n "$ns" link add p0 type veth peer name p1 2>&1)"; then
    ip netns del "$ns" >/dev/null 2>&1
    echo "cannot create a veth pair in a network namespace (ip link add: $(head -n1 <<<"$err"))"
    return 1
  fi
  ip netns del "$ns" >/dev/null 2>&1
  return 0
}
