#!/usr/bin/env bash
# Installs what tests/turn needs, on Debian 12: Debian's coturn (the
# `turnserver` binary; the test runs its own foreground instance inside a
# network namespace; on a machine running systemd the package's own service
# may start, which the test does not need), iproute2, and this folder's npm
# packages from package-lock.json (node-datachannel 0.33.4 prebuilt, ws).
#
#   tests/turn/install.sh
#
# Idempotent and non-interactive: apt runs only when coturn is missing, npm
# only when node_modules does not match the lock file.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export DEBIAN_FRONTEND=noninteractive
log() { printf '[turn/install] %s\n' "$*" >&2; }

if [[ "$(id -u)" -eq 0 ]]; then SUDO=(); else SUDO=(sudo -n env DEBIAN_FRONTEND=noninteractive); fi

# coturn: the TURN server under test; iproute2: `ip netns` for the peers' namespaces.
missing=()
for pkg in coturn iproute2; do
  [[ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null)" == ii* ]] || missing+=("$pkg")
done
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  apt_opts=(-y -q -o DPkg::Lock::Timeout=300 -o Dpkg::Use-Pty=0
            -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
  "${SUDO[@]}" apt-get "${apt_opts[@]}" update </dev/null
  "${SUDO[@]}" apt-get "${apt_opts[@]}" install --no-install-recommends "${missing[@]}" </dev/null
fi
command -v turnserver >/dev/null || { log "turnserver not found after installing coturn"; exit 1; }

# npm ci only when the installed tree does not match the lock file.
stamp="$HERE/node_modules/.rendezvous-lock-stamp"
want="$(sha256sum "$HERE/package-lock.json" | cut -d' ' -f1) node-$(node --version)"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  log "npm ci in $HERE"
  (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error)
  printf '%s\n' "$want" >"$stamp"
else
  log "node_modules matches package-lock.json; skipping npm ci"
fi
