#!/usr/bin/env bash
# Builds docker/Dockerfile with podman and tests the image for real:
#
#   docker/test-container.sh
#
#  1. sets podman up as ../shared/ENVIRONMENT.md says (apt: podman runc
#     debootstrap; containers.conf: runc + default ulimits) and makes the
#     base image docker.io/library/debian:bookworm-slim from Debian packages
#     (debootstrap minbase + the official slim image's apt/dpkg settings)
#     when it is missing; the rootfs tarball is cached;
#  2. builds the image (docker format, so HEALTHCHECK is kept) and checks its
#     metadata: non-root user, EXPOSE 8080, RENDEZVOUS_LISTEN, HEALTHCHECK,
#     no missing shared library, `--version` and `token` run;
#  3. container 1, defaults only (`run -p 127.0.0.1:H:8080 IMAGE`): waits for
#     the HEALTHCHECK to report healthy (podman inspect), then drives a
#     WebSocket relay and a node-datachannel data channel through the
#     published port (tests/turn/container-check.mjs); runs as uid 10001;
#     `podman stop` (SIGTERM) ends it with exit code 0;
#  4. container 2, configured only by env vars: TLS (a certificate made now,
#     mounted read-only), JWT auth, TURN credentials, JSON logs; healthy
#     through the TLS health check; wss relay with tokens, 4401 without,
#     TURN credentials in the welcome, data channel; every log line JSON;
#  5. container 3: the health check can fail (the server listens on another
#     port than RENDEZVOUS_LISTEN says): `podman healthcheck run` is refused.
#
# Containers are removed at the end (by their IDs); the image is kept
# (localhost/rendezvous:test, or $RENDEZVOUS_IMAGE). Exit 0: all passed;
# 1: a check failed; 77: podman cannot run containers on this machine (not
# root, cannot install it, or it cannot start a container), so that ctest
# can report the test as skipped (SKIP_RETURN_CODE 77).
#
# Environment: RENDEZVOUS_IMAGE (tag), RENDEZVOUS_CONTAINER_CACHE (where the
# base rootfs tarball is kept; default /var/cache/rendezvous-container).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
IMAGE="${RENDEZVOUS_IMAGE:-localhost/rendezvous:test}"
BASE="docker.io/library/debian:bookworm-slim"
CACHE="${RENDEZVOUS_CONTAINER_CACHE:-/var/cache/rendezvous-container}"
START=$SECONDS
export DEBIAN_FRONTEND=noninteractive

# Without systemd, podman complains on every run of a container with a
# HEALTHCHECK that it cannot add a timer for it; the checks here run it with
# `podman healthcheck run` instead, so that noise is dropped.
podman() { command podman "$@" 2> >(grep -v --line-buffered 'unable to get systemd connection' >&2); }
log() { printf '[test-container %4ds] %s\n' "$((SECONDS - START))" "$*" >&2; }
skip() { log "SKIP: $*"; exit 77; }
fail() { log "FAILED: $*"; exit 1; }

TMP="$(mktemp -d /tmp/rendezvous-container.XXXXXX)"
CONTAINERS=()
cleanup() {
  local rc=$?
  for id in "${CONTAINERS[@]}"; do
    podman rm -f -t 0 "$id" >/dev/null 2>&1 || true
  done
  rm -rf "$TMP"
  log "done in $((SECONDS - START)) s (exit $rc)"
}
trap cleanup EXIT

# ---------------------------------------------------------------------------
# 1. podman, configured as ENVIRONMENT.md says

[[ "$(id -u)" -eq 0 ]] || skip "needs root (podman is set up for root here)"

missing=()
for pkg in podman runc debootstrap; do
  [[ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null)" == ii* ]] || missing+=("$pkg")
done
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  apt_opts=(-y -q -o DPkg::Lock::Timeout=300 -o Dpkg::Use-Pty=0)
  { apt-get "${apt_opts[@]}" update && apt-get "${apt_opts[@]}" install --no-install-recommends "${missing[@]}"; } \
    </dev/null >"$TMP/apt.log" 2>&1 || { tail -n 20 "$TMP/apt.log" >&2; skip "cannot install ${missing[*]}"; }
fi

# crun fails on this cgroup layout; podman fails to raise ulimits without the
# override. Our own drop-in, so that a containers.conf of the machine stays.
mkdir -p /etc/containers/containers.conf.d
cat >/etc/containers/containers.conf.d/50-rendezvous-test.conf <<'EOF'
# written by rendezvous docker/test-container.sh (see ENVIRONMENT.md)
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "runc"
EOF

# Node and the npm packages of tests/turn (node-datachannel, ws) drive the checks.
command -v node >/dev/null || skip "node is not installed (the checks are node scripts)"
if [[ ! -d "$ROOT/tests/turn/node_modules/node-datachannel" ]]; then
  log "npm ci in tests/turn"
  (cd "$ROOT/tests/turn" && npm ci --no-audit --no-fund --loglevel=error) || fail "npm ci in tests/turn"
fi

# ---------------------------------------------------------------------------
# The base image, from Debian packages (no registry is reachable here)

debian_mirror() {
  local m=""
  if [[ -f /etc/apt/sources.list.d/debian.sources ]]; then
    m="$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)"
  fi
  if [[ -z "$m" && -f /etc/apt/sources.list ]]; then
    m="$(awk '$1 == "deb" && $3 ~ /^bookworm$/ {print $2; exit}' /etc/apt/sources.list)"
  fi
  echo "${m:-http://deb.debian.org/debian}"
}

make_base_tarball() {  # $1: output tarball
  local rootfs="$TMP/rootfs" mirror
  mirror="$(debian_mirror)"
  log "debootstrap --variant=minbase bookworm from $mirror (about 35 s)"
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$TMP/debootstrap.log" 2>&1 ||
    { tail -n 20 "$TMP/debootstrap.log" >&2; return 1; }
  # The same Debian sources as this machine (with updates and security).
  if [[ -f /etc/apt/sources.list.d/debian.sources ]]; then
    cp /etc/apt/sources.list.d/debian.sources "$rootfs/etc/apt/sources.list.d/debian.sources"
    rm -f "$rootfs/etc/apt/sources.list"
  fi
  # The official slim image's settings: no apt caches or index languages,
  # no docs/man/locales from dpkg (else each apt-get layer grows ~80 MB).
  cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  echo 'Acquire::Languages "none";' >"$rootfs/etc/apt/apt.conf.d/docker-no-languages"
  echo 'Acquire::GzipIndexes "true";' >"$rootfs/etc/apt/apt.conf.d/docker-gzip-indexes"
  echo 'APT::AutoRemove::SuggestsImportant "false";' >"$rootfs/etc/apt/apt.conf.d/docker-autoremove-suggests"
  cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
EOF
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/*
  tar --numeric-owner -C "$rootfs" -cf "$1.tmp" . && mv "$1.tmp" "$1"
  rm -rf "$rootfs"
}

if ! podman image exists "$BASE"; then
  mkdir -p "$CACHE"
  tarball="$CACHE/debian-bookworm-minbase.tar"
  if [[ ! -s "$tarball" ]]; then
    make_base_tarball "$tarball" || skip "cannot make the base image with debootstrap"
  else
    log "base rootfs from cache $tarball"
  fi
  podman import --quiet --change 'CMD ["bash"]' "$tarball" "$BASE" >/dev/null || skip "podman import failed"
  log "imported $BASE"
fi

# Can podman run a container here at all?
if ! out="$(podman run --rm --network=none "$BASE" bash -c 'ulimit -n' 2>&1)"; then
  skip "podman cannot start a container on this machine ($(grep -v '^[[:space:]]*$' <<<"$out" | tail -n1 | cut -c1-160))"
fi
log "podman runs containers (nofile limit inside: $out)"

# ---------------------------------------------------------------------------
# 2. build and check the image

# --jobs 2: the runtime stage (apt only) runs while the build stage compiles.
# The dependency layers are cached by podman (--layers) and change only with
# their package lists; the compile reuses the ccache of the build cache mount.
log "podman build -f docker/Dockerfile -t $IMAGE (the first build compiles the server: minutes)"
build_start=$SECONDS
podman build --format docker --layers --jobs 2 -f "$ROOT/docker/Dockerfile" \
  --ignorefile "$ROOT/docker/Dockerfile.dockerignore" -t "$IMAGE" "$ROOT" >"$TMP/build.log" 2>&1 ||
  { tail -n 40 "$TMP/build.log" >&2; fail "podman build"; }
grep -E 'Hits|Misses|Cacheable' "$TMP/build.log" | sed 's/^/[test-container] ccache: /' >&2 || true
log "built in $((SECONDS - build_start)) s; size $(podman image inspect --format '{{.Size}}' "$IMAGE" | awk '{printf "%.1f MB", $1/1e6}')"

inspect() { podman image inspect --format "$1" "$IMAGE"; }
[[ "$(inspect '{{.Config.User}}')" == "10001:10001" ]] || fail "image user is '$(inspect '{{.Config.User}}')', want 10001:10001"
inspect '{{json .Config.ExposedPorts}}' | grep -q '"8080/tcp"' || fail "8080/tcp is not exposed"
inspect '{{json .Config.Env}}' | grep -q 'RENDEZVOUS_LISTEN=0.0.0.0:8080' || fail "RENDEZVOUS_LISTEN is not set"
inspect '{{json .Config.Healthcheck}}' | grep -q 'rendezvous-healthcheck' ||
  fail "no HEALTHCHECK in the image (built in OCI format?): $(inspect '{{json .Config.Healthcheck}}')"
podman run --rm "$IMAGE" --version | grep -q '^rendezvous-server ' || fail "--version"
if podman run --rm --entrypoint ldd "$IMAGE" /usr/local/bin/rendezvous-server | grep 'not found'; then
  fail "shared libraries missing in the runtime image"
fi
if podman run --rm --entrypoint bash "$IMAGE" -c 'command -v g++ || command -v cmake || command -v curl'; then
  fail "the runtime image holds build tools or curl"
fi
token="$(podman run --rm "$IMAGE" token --room demo --sub alice --secret s3cret)"
[[ "$token" =~ ^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$ ]] || fail "token subcommand printed '$token'"
log "image metadata, libraries, --version and token: ok"

free_port() {
  node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"
}

# Runs the HEALTHCHECK (podman has no systemd timer here to run it on its
# own) until it passes, then requires podman inspect to say "healthy".
wait_healthy() {  # container, deadline seconds
  local id="$1" deadline=$((SECONDS + $2))
  until podman healthcheck run "$id" >/dev/null 2>&1; do
    [[ "$(podman inspect --format '{{.State.Running}}' "$id")" == true ]] ||
      { podman logs "$id" >&2; fail "container $id exited: $(podman inspect --format '{{.State.ExitCode}}' "$id")"; }
    ((SECONDS < deadline)) || { podman logs "$id" >&2; fail "container $id not healthy within $2 s"; }
    sleep 0.5
  done
  local status
  status="$(podman inspect --format '{{.State.Health.Status}}' "$id" 2>/dev/null ||
    podman inspect --format '{{.State.Healthcheck.Status}}' "$id")"
  [[ "$status" == healthy ]] || fail "podman inspect health status of $id is '$status', want healthy"
}

stop_clean() {  # container: SIGTERM drains and exits 0
  local id="$1"
  podman stop -t 15 "$id" >/dev/null
  local code
  code="$(podman inspect --format '{{.State.ExitCode}}' "$id")"
  [[ "$code" == 0 ]] || { podman logs "$id" >&2; fail "container $id exited with $code after podman stop"; }
}

# ---------------------------------------------------------------------------
# 3. container 1: nothing but the published port

H1="$(free_port)"
c1="$(podman run -d -p "127.0.0.1:$H1:8080" "$IMAGE")"
CONTAINERS+=("$c1")
wait_healthy "$c1" 60
log "container 1 healthy on 127.0.0.1:$H1"
[[ "$(podman exec "$c1" id -u)" == 10001 ]] || fail "the server runs as uid $(podman exec "$c1" id -u)"
podman logs "$c1" 2>&1 | grep -q 'listening on 0.0.0.0:8080 (http/ws)' || fail "no 'listening on 0.0.0.0:8080' in the log"
node "$ROOT/tests/turn/container-check.mjs" --base "ws://127.0.0.1:$H1" || fail "checks through container 1"
stop_clean "$c1"
log "container 1: relay, data channel, uid, clean stop: ok"

# ---------------------------------------------------------------------------
# 4. container 2: TLS + auth + TURN + JSON logs, all from env vars

mkdir -p "$TMP/tls"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=localhost \
  -addext subjectAltName=IP:127.0.0.1,DNS:localhost -keyout "$TMP/tls/server.key" -out "$TMP/tls/server.crt" 2>/dev/null
chmod 0755 "$TMP/tls" && chmod 0644 "$TMP/tls/server.key"  # readable by the container's uid 10001 (test only)
H2="$(free_port)"
TURN_URI='turn:turn.example.org:3478?transport=udp'
c2="$(podman run -d -p "127.0.0.1:$H2:8080" -v "$TMP/tls:/etc/rendezvous/tls:ro" \
  -e RENDEZVOUS_TLS_CERT=/etc/rendezvous/tls/server.crt -e RENDEZVOUS_TLS_KEY=/etc/rendezvous/tls/server.key \
  -e RENDEZVOUS_AUTH_JWT_SECRET=container-jwt-secret \
  -e RENDEZVOUS_TURN_SECRET=container-turn-secret -e RENDEZVOUS_TURN_URIS="$TURN_URI" \
  -e RENDEZVOUS_LOG_FORMAT=json "$IMAGE")"
CONTAINERS+=("$c2")
wait_healthy "$c2" 60
log "container 2 (TLS) healthy on 127.0.0.1:$H2"
node "$ROOT/tests/turn/container-check.mjs" --base "wss://127.0.0.1:$H2" --ca "$TMP/tls/server.crt" \
  --jwt-secret container-jwt-secret --turn-secret container-turn-secret --turn-uri "$TURN_URI" ||
  fail "checks through container 2"
podman logs "$c2" >"$TMP/c2.log" 2>&1
node -e '
  const lines = require("fs").readFileSync(process.argv[1], "utf8").split("\n").filter(Boolean);
  for (const l of lines) JSON.parse(l);
  if (!lines.some((l) => /listening on 0\.0\.0\.0:8080 \(https\/wss, auth on\)/.test(l))) throw new Error("no listening line");
  if (!lines.some((l) => /join /.test(l))) throw new Error("no join line");
  if (lines.some((l) => /eyJ[A-Za-z0-9_-]{10,}/.test(l))) throw new Error("a token in the log");
' "$TMP/c2.log" || { cat "$TMP/c2.log" >&2; fail "container 2 logs are not JSON lines with joins and no tokens"; }
stop_clean "$c2"
log "container 2: wss, auth, TURN credentials, JSON logs, clean stop: ok"

# ---------------------------------------------------------------------------
# 5. container 3: the health check fails when nothing answers on its port

c3="$(podman run -d "$IMAGE" --listen 0.0.0.0:8081)"
CONTAINERS+=("$c3")
deadline=$((SECONDS + 20))
until podman logs "$c3" 2>&1 | grep -q 'listening on 0.0.0.0:8081'; do
  ((SECONDS < deadline)) || fail "container 3 did not start"
  sleep 0.2
done
if podman healthcheck run "$c3" >/dev/null 2>&1; then
  fail "the health check passed although nothing listens on 8080"
fi
log "container 3: the health check fails when /healthz does not answer: ok"

# ---------------------------------------------------------------------------
# 6. compose.yaml's wiring: coturn from docker/coturn.Dockerfile with the
#    flags of compose.yaml's coturn service, the server with compose's TURN
#    variables and one shared secret; relay-only peers get relay candidates
#    (coturn accepted the credentials of their welcome).

grep -q 'RENDEZVOUS_TURN_SECRET: ${TURN_SECRET' "$ROOT/docker/compose.yaml" &&
  grep -q -- '--static-auth-secret=${TURN_SECRET}' "$ROOT/docker/compose.yaml" ||
  fail "compose.yaml no longer shares TURN_SECRET between the server and coturn"
COTURN_IMAGE="${IMAGE%:*}-coturn:${IMAGE##*:}"
podman build --format docker --layers -f "$ROOT/docker/coturn.Dockerfile" -t "$COTURN_IMAGE" "$ROOT/docker" \
  >"$TMP/coturn-build.log" 2>&1 || { tail -n 20 "$TMP/coturn-build.log" >&2; fail "podman build coturn"; }
TURN_PORT="$(free_port)"
TURN_SECRET="compose-turn-secret-$$"
# The service's command list, with the variables filled in and a free port.
mapfile -t coturn_flags < <(awk '
  /^  coturn:/ {svc = 1; next}
  svc && /^  [a-z]/ {svc = 0}
  svc && /^    command:/ {cmd = 1; next}
  cmd && /^      - / {sub(/^      - /, ""); sub(/ +#.*$/, ""); print; next}
  cmd && !/^ *#/ {cmd = 0}' "$ROOT/docker/compose.yaml" |
  sed -e "s/\${PUBLIC_HOST}/127.0.0.1/g" -e "s/\${TURN_SECRET}/$TURN_SECRET/g" \
      -e "s/^--listening-port=.*/--listening-port=$TURN_PORT/")
((${#coturn_flags[@]} > 5)) || fail "could not read coturn's command from compose.yaml"
c4="$(podman run -d --network host "$COTURN_IMAGE" "${coturn_flags[@]}")"
CONTAINERS+=("$c4")
node "$ROOT/tests/turn/lib/stun-probe.mjs" 127.0.0.1 "$TURN_PORT" 20000 ||
  { podman logs "$c4" >&2; fail "coturn (compose flags) does not answer STUN on $TURN_PORT"; }
H4="$(free_port)"
c5="$(podman run -d -p "127.0.0.1:$H4:8080" \
  -e RENDEZVOUS_TURN_SECRET="$TURN_SECRET" -e RENDEZVOUS_TURN_URIS="turn:127.0.0.1:$TURN_PORT?transport=udp" \
  -e RENDEZVOUS_AUTH_JWT_SECRET=compose-jwt-secret -e RENDEZVOUS_LOG_FORMAT=json "$IMAGE")"
CONTAINERS+=("$c5")
wait_healthy "$c5" 60
node "$ROOT/tests/turn/container-check.mjs" --base "ws://127.0.0.1:$H4" --jwt-secret compose-jwt-secret \
  --turn-secret "$TURN_SECRET" --turn-uri "turn:127.0.0.1:$TURN_PORT?transport=udp" --expect-relay ||
  { podman logs "$c4" 2>&1 | tail -n 30 >&2; fail "server + coturn as compose.yaml wires them"; }
podman logs "$c4" 2>&1 | grep -q 'ALLOCATE processed, success' ||
  log "(coturn logs no ALLOCATE lines without --verbose; the relay candidates prove the allocations)"
log "compose wiring (coturn + server, shared TURN secret): ok"

log "all container checks passed"
