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
LOG_TAG=install-deps-browser
# shellcheck source=scripts/lib/deps.sh
source "$ROOT/scripts/lib/deps.sh"

PACKAGES=(
  chromium   # /usr/bin/chromium, driven by playwright-core
  iproute2   # ip netns / veth for the test's network namespace
)

ensure_packages "${PACKAGES[@]}"

# PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: playwright-core downloads nothing anyway;
# set it in case a future version tries.
npm_ci_dir "$ROOT/tests/browser" PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
log "done"
