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
