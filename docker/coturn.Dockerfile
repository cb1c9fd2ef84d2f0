# coturn from Debian's package (4.6.1 in bookworm: the version the TURN test
# in tests/turn runs), for compose.yaml. Flags come from the compose file.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends coturn \
 && rm -rf /var/lib/apt/lists/*
# The package's system user; /var/lib/turn (the user db) belongs to it.
USER turnserver
EXPOSE 3478/udp 3478/tcp
ENTRYPOINT ["turnserver"]
