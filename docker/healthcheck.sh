#!/bin/bash
# Container HEALTHCHECK for rendezvous-server: GET /healthz must answer 200.
# No curl in the image: plain HTTP goes through bash's /dev/tcp; with
# RENDEZVOUS_TLS_CERT set the port speaks only TLS, so `openssl s_client`
# carries the request (the certificate is not verified: this checks the
# process, from inside the container). The port is the one of
# RENDEZVOUS_LISTEN (HOST:PORT or [V6]:PORT), default 8080.
set -uo pipefail
listen="${RENDEZVOUS_LISTEN:-0.0.0.0:8080}"
port="${listen##*:}"
[[ "$port" =~ ^[0-9]+$ ]] || port=8080
request=$'GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n'
if [[ -n "${RENDEZVOUS_TLS_CERT:-}" ]]; then
  status="$(printf '%s' "$request" |
    timeout 4 openssl s_client -quiet -connect "127.0.0.1:${port}" -servername localhost 2>/dev/null | head -n 1)"
else
  exec 3<>"/dev/tcp/127.0.0.1/${port}" || exit 1
  printf '%s' "$request" >&3
  status="$(timeout 4 head -n 1 <&3)"
  exec 3<&-
fi
[[ "$status" == "HTTP/1."?" 200 "* ]] && exit 0
echo "unhealthy: ${status:-no answer} from 127.0.0.1:${port}/healthz" >&2
exit 1
