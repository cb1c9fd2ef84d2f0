#!/usr/bin/env bash
# Installs what the browser tests (tests/browser: the demo page and
# client/js/rendezvous.js in headless Chromium) need on Debian 12, on top of
# scripts/install-deps.sh (which brings node + npm):
#
#   scripts/install-deps-browser.sh
#
# - chromium: Debian's Chromium, driven by npm playwright-core through
#   executablePath /usr/bin/chromium (never `npx playwright install`: no
#   browser download is possible or wanted).
# - iproute2: `ip netns` for the network namespace the test runs in (Chromium
#   gathers no ICE candidates on loopback alone).
# - the npm packages of tests/browser (playwright-core, node-datachannel),
#   exactly as pinned in tests/browser/package-lock.json, with `npm ci`.
#
# Idempotent and non-interactive: checks the packages with dpkg-query first and
# runs `apt-get update` + `apt-get install` only when one is missing; npm ci
# only when node_modules does not match the lock file (a second run takes about
# a second). Uses sudo only when not root.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export DEBIAN_FRONTEND=noninteractive

log() { printf '[install-deps-browser] %s\n' "$*" >&2; }

if [[ "$(id -u)" -eq 0 ]]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo -n env DEBIAN_FRONTEND=noninteractive)
else
  log "not root and no sudo: cannot install packages"
  SUDO=(false)
fi

PACKAGES=(
  chromium   # /usr/bin/chromium, driven by playwright-core
  iproute2   # ip netns / veth for the test's network namespace
)

is_installed() {
  [[ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null)" == ii* ]]
}

missing=()
for pkg in "${PACKAGES[@]}"; do
  is_installed "$pkg" || missing+=("$pkg")
done

if ((${#missing[@]} == 0)); then
  log "all ${#PACKAGES[@]} Debian packages present; skipping apt"
else
  log "missing: ${missing[*]}"
  apt_opts=(-y -q -o DPkg::Lock::Timeout=300 -o Dpkg::Use-Pty=0
            -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
  ok=0
  for attempt in 1 2 3; do
    if "${SUDO[@]}" apt-get "${apt_opts[@]}" update </dev/null; then ok=1; break; fi
    log "apt-get update failed (attempt $attempt); retrying"
    sleep $((attempt * 5))
  done
  ((ok)) || { log "apt-get update failed"; exit 1; }
  ok=0
  for attempt in 1 2 3; do
    if "${SUDO[@]}" apt-get "${apt_opts[@]}" install --no-install-recommends "${missing[@]}" </dev/null; then
      ok=1; break
    fi
    log "apt-get install failed (attempt $attempt); retrying"
    sleep $((attempt * 5))
  done
  ((ok)) || { log "apt-get install failed"; exit 1; }
  still=()
  for pkg in "${missing[@]}"; do is_installed "$pkg" || still+=("$pkg"); done
  if ((${#still[@]})); then
    log "still missing after apt-get install: ${still[*]}"
    exit 1
  fi
  log "installed: ${missing[*]}"
fi

# npm packages of the browser tests (playwright-core, node-datachannel).
BROWSER_TESTS="$ROOT/tests/browser"
if [[ -f "$BROWSER_TESTS/package-lock.json" ]]; then
  if ! command -v npm >/dev/null 2>&1; then
    log "npm is missing: run scripts/install-deps.sh first (it installs node + npm)"
    exit 1
  fi
  stamp="$BROWSER_TESTS/node_modules/.rendezvous-deps"
  want="$(node --version) $(sha256sum "$BROWSER_TESTS/package-lock.json" | cut -d' ' -f1)"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    log "tests/browser/node_modules matches package-lock.json; skipping npm ci"
  else
    log "npm ci in tests/browser"
    # PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: playwright-core downloads nothing
    # anyway; set it in case a future version tries.
    (cd "$BROWSER_TESTS" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 \
      npm ci --no-audit --no-fund --prefer-offline --loglevel=error </dev/null)
    printf '%s\n' "$want" >"$stamp"
  fi
fi
log "done"
