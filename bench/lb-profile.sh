#!/usr/bin/env bash
# Where the load balancer's CPU goes, counted repeatably: user-space instructions per
# request of `sealcast lb` (Pingora) and of HAProxy 2.6, each run under valgrind's callgrind
# with the same load, in front of the same nginx backend, over TLS 1.3 (one suite, h2 by
# ALPN), sticky by cookie. Instruction counts do not depend on what else the machine runs,
# so this complements bench/lb.sh's CPU-seconds (which include the kernel's share).
#
# For the playlist (193 B): h2load -c CLIENTS -n REQUESTS --rps PLAYLIST_RPS; for the
# segment (200 KiB): -c SEG_CLIENTS -n REQUESTS/20 --rps SEGMENT_RPS; each with the
# backend's cookie, after an uncounted warm-up. Instrumentation is switched on just before
# the load and off just after it (start-up, certificates, the cookie fetch and the warm-up
# are not counted); the clients' TLS handshakes are. Ours is then broken down by the crate each
# instruction's function comes from (exclusive counts; memcpy separately).
#
# Read with care: valgrind's virtual CPU has no SHA extensions and no VAES, so SHA-256
# (the sticky cookie's HMAC) and AES-GCM take slower code paths here than on the machine;
# the crypto share is overstated for both. And valgrind counts every byte a `rep movsb`
# copies as one instruction (glibc's memcpy uses it for large copies on CPUs with ERMS/FSRM,
# as here): copies are overstated for both, so each figure is also given without memcpy.
#
# Writes bench/out/lb-profile.json and its section of docs/benchmarks.md
# (LB_PROFILE_RESULTS and LB_PROFILE_DOCS move them; LB_PROFILE_DOCS= skips the docs;
# `sealcast-bench report lb-profile`).
#
# Usage: bench/lb-profile.sh [REQUESTS [CLIENTS]]   (default 20000 playlist requests, a
#   twentieth as many segments, 100 clients; about 6 minutes)
# Environment: SEALCAST_BIN=path   a prebuilt sealcast binary instead of `cargo build --release`;
#   SEALCAST_BENCH=path   the report's sealcast-bench (default: the one beside SEALCAST_BIN);
#   PLAYLIST_RPS=2 SEGMENT_RPS=1   requests per second per client; SEG_CLIENTS=10
set -euo pipefail
[ -z "${SEALCAST_BIN:-}" ] || SEALCAST_BIN="$(realpath -m "$SEALCAST_BIN")"
GIVEN_BENCH="${SEALCAST_BENCH:+$(realpath "$SEALCAST_BENCH")}"
cd "$(dirname "$0")/.."
REQUESTS="${1:-20000}"
CLIENTS="${2:-100}"
RESULTS="${LB_PROFILE_RESULTS:-bench/out/lb-profile.json}"
DOCS="${LB_PROFILE_DOCS-docs/benchmarks.md}"
TLS13_CIPHER=TLS_AES_128_GCM_SHA256
# Requests per second per client: paced well below what a load balancer manages under
# valgrind (~50x slower), so its health checks keep answering in time.
PLAYLIST_RPS="${PLAYLIST_RPS:-2}"
SEGMENT_RPS="${SEGMENT_RPS:-1}"
source bench/lib.sh
[[ "$REQUESTS" =~ ^[1-9][0-9]*$ && "$CLIENTS" =~ ^[1-9][0-9]*$ ]] || die "usage: bench/lb-profile.sh [REQUESTS [CLIENTS]]"
SEG_REQUESTS=$(((REQUESTS + 19) / 20))
# Segments with fewer clients: 200 KiB answers at 100 a second are more than a load
# balancer under valgrind keeps up with while its health checks answer in time.
SEG_CLIENTS="${SEG_CLIENTS:-10}"

bench_install lb-profile valgrind haproxy nghttp2-client nginx mosquitto mosquitto-clients curl
bench_tmpfs_workdir lbprof
bench_binary
bench_tool sealcast-presence
PRESENCE="$TOOL"
bench_driver
bench_clear_env
wait_ok() { # SECONDS URL
  local i
  for ((i = 0; i < $1 * 10; i++)); do
    curl -sf --max-time 5 --cacert "$WORK/certs/ca.pem" -o /dev/null "$2" && return 0
    sleep 0.1
  done
  return 1
}

# --- the backend, the broker, keys -------------------------------------------------------
mkdir -p "$WORK/www/live/bench/src" "$WORK/nginx/tmp"
{
  printf '#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:1\n'
  for i in 1 2 3 4 5 6; do printf '#EXTINF:2.000,\n%s.ts\n' "$i"; done
} > "$WORK/www/live/bench/src/index.m3u8"
"$DRIVER" random-ts 1088 > "$WORK/www/live/bench/src/1.ts"
chmod -R a+rX "$WORK/www"
BACKEND="$(free_port)"
bench_render nginx/lb-profile-backend.conf "$WORK/nginx/nginx.conf" DIR="$WORK/nginx" PORT="$BACKEND" \
  ROOT="$WORK/www"
taskset -c 0 nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log" 2>> "$WORK/nginx/error.log" &
PIDS+=("$!")
MQ_PORT="$(free_port)"
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n' "$MQ_PORT" > "$WORK/mosquitto.conf"
mosquitto -c "$WORK/mosquitto.conf" > "$WORK/mosquitto.log" 2>&1 &
PIDS+=("$!")
"$BIN" certs --certs-dir "$WORK/certs" > "$WORK/certs.log" 2>&1 || { cat "$WORK/certs.log" >&2; die "sealcast certs failed"; }
"$BIN" keys init --data-dir "$WORK/data" > "$WORK/keys.log" 2>&1 || { cat "$WORK/keys.log" >&2; die "sealcast keys init failed"; }
cat "$WORK/certs/server.pem" "$WORK/certs/server.key" > "$WORK/haproxy.pem"
"$PRESENCE" --keys-dir "$WORK/data/keys" bench-b1 "http://127.0.0.1:$BACKEND" > "$WORK/presence"
for ((i = 0; i < 100; i++)); do
  timeout 2 mosquitto_pub -h 127.0.0.1 -p "$MQ_PORT" -r -q 1 -t sealcast/v1/nodes/bench-b1/presence -f "$WORK/presence" 2> /dev/null && break
  sleep 0.1
done

# --- one profiled run: NAME KIND -> instructions in $WORK/cg.NAME.KIND ----------------------
# start_lb NAME OUT: starts the load balancer under callgrind (instrumentation off), sets
# LB_PID and URL_BASE, and waits until it answers.
start_lb() {
  local name="$1" out="$2" port
  port="$(free_port)"
  local vg=(valgrind --tool=callgrind --callgrind-out-file="$out" --dump-instr=no --instr-atstart=no)
  # --no-collapse: the profile of proxying a request, as bench/lb.sh measures it.
  if [ "$name" = sealcast ]; then
    TOKIO_WORKER_THREADS=1 taskset -c 1 "${vg[@]}" "$BIN" lb --data-dir "$WORK/data" --certs-dir "$WORK/certs" \
      --mqtt-url "mqtt://127.0.0.1:$MQ_PORT" --https-listen "127.0.0.1:$port" --http-listen "127.0.0.1:$(free_port)" \
      --metrics-listen "127.0.0.1:$(free_port)" --node-id bench-lb --no-access-log --no-limits --no-collapse > "$WORK/lb.out" 2> "$WORK/lb.err" &
  else
    bench_render haproxy/lb-profile.cfg "$WORK/haproxy.cfg" PORT="$port" PEM="$WORK/haproxy.pem" \
      BACKEND_PORT="$BACKEND"
    taskset -c 1 "${vg[@]}" haproxy -db -f "$WORK/haproxy.cfg" > "$WORK/haproxy.log" 2>&1 &
  fi
  LB_PID=$!
  PIDS+=("$LB_PID")
  URL_BASE="https://localhost:$port"
  wait_ok 120 "$URL_BASE/live/bench/src/index.m3u8" \
    || { tail -20 "$WORK/lb.err" "$WORK/haproxy.log" 2> /dev/null >&2; die "$name did not answer under valgrind in 120 s"; }
}

profile() { # NAME KIND
  local name="$1" kind="$2" n path cookie out i rps c
  out="$WORK/cg.$name.$kind"
  start_lb "$name" "$out"
  cookie="$(curl -s --cacert "$WORK/certs/ca.pem" -D - -o /dev/null "$URL_BASE/live/bench/src/index.m3u8" \
    | tr -d '\r' | awk -F': ' 'tolower($1) == "set-cookie" { print $2 }' | grep -o '^sealcast_node=[^;]*' || true)"
  [ -n "$cookie" ] || die "$name issued no sticky cookie"
  if [ "$kind" = playlist ]; then n="$REQUESTS"; path=/live/bench/src/index.m3u8; rps="$PLAYLIST_RPS"; c="$CLIENTS"
  else n="$SEG_REQUESTS"; path=/live/bench/src/1.ts; rps="$SEGMENT_RPS"; c="$SEG_CLIENTS"; fi
  # Warm-up, not counted: CLIENTS connections each, so the pool to the backend is full
  # (under valgrind, 100 connections opened at once can miss the 1 s connect timeout).
  taskset -c 0 h2load -t1 -c "$c" -n $((c * 4)) --tls13-ciphers="$TLS13_CIPHER" -H "cookie: $cookie" \
    "$URL_BASE$path" > /dev/null 2>&1 || true
  wait_ok 30 "$URL_BASE$path" || die "$name does not answer after the warm-up"
  callgrind_control -i on "$LB_PID" > /dev/null
  taskset -c 0 h2load -t1 -c "$c" -n "$n" --rps "$rps" --tls13-ciphers="$TLS13_CIPHER" -H "cookie: $cookie" \
    "$URL_BASE$path" > "$WORK/h2load.$name.$kind" 2>&1 || { cat "$WORK/h2load.$name.$kind" >&2; die "h2load failed on $name"; }
  callgrind_control -i off "$LB_PID" > /dev/null
  # callgrind writes its counts when the process exits.
  kill -TERM "$LB_PID" 2> /dev/null || true
  for ((i = 0; i < 600; i++)); do kill -0 "$LB_PID" 2> /dev/null || break; sleep 0.1; done
  kill -KILL "$LB_PID" 2> /dev/null || true
  wait "$LB_PID" 2> /dev/null || true
  [ -s "$out" ] || die "callgrind wrote nothing for $name"
  callgrind_annotate --auto=no --threshold=100 "$out" > "$out.txt"
  grep -E "succeeded|TLS Protocol|Cipher|Application protocol" "$WORK/h2load.$name.$kind" | tr '\n' ' ' > "$out.h2load"
  echo "lb-profile: $name $kind: $(head -c 200 "$out.h2load")" >&2
}

for kind in playlist segment; do
  for name in sealcast haproxy; do profile "$name" "$kind"; done
done

# --- report -----------------------------------------------------------------------------
bench_report_docs "$DOCS"
"$DRIVER" report lb-profile "$WORK" --requests "$REQUESTS" --seg-requests "$SEG_REQUESTS" \
  --clients "$CLIENTS" --seg-clients "$SEG_CLIENTS" --playlist-rps "$PLAYLIST_RPS" --segment-rps "$SEGMENT_RPS" \
  --date "$(date +%F)" --results "$RESULTS" "${REPORT_DOCS[@]}"
