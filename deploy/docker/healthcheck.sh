#!/bin/bash
# sealcast-healthcheck [PORT] [PATH]: succeeds when http://127.0.0.1:PORT/PATH answers 200.
# The image's HEALTHCHECK (no curl or wget in the runtime image: bash's /dev/tcp instead).
port="${1:-8080}"
path="${2:-/healthz}"
exec 3<>"/dev/tcp/127.0.0.1/${port}" || exit 1
printf 'GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' "$path" >&3
IFS=' ' read -r -t 3 _ status _ <&3 || exit 1
[ "${status%$'\r'}" = 200 ]
