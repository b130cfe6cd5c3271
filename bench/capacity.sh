#!/usr/bin/env bash
# Benchmark (docs/benchmarks.md): how many real-time viewers one edge worker
# holds, ours against nginx (plain HTTP) and, through a load balancer over TLS, ours against
# HAProxy, side by side on the same live stream, interleaved.
#
# The live stream: a cluster of separate processes, so that the node under test runs alone
# on its core: a mosquitto broker, `sealcast ingest` and `sealcast source` (a 640x360 30 fps
# test pattern, ~730 kb/s, 2 s GOP, real time, for the whole run) on core 1, and one
# `sealcast broadcast` node (TOKIO_WORKER_THREADS=1) on core 0. The ladder is the source
# rung only, named `360p` (the publisher's own H.264, not re-encoded: no transcode CPU
# anywhere), CMAF, 2 s segments, a window of 6, no LL-HLS parts (plain HLS, as the viewers
# play it).
#
# The peers:
#   - nginx 1.22 (`worker_processes 1`, `sendfile on`, `access_log off`, no open_file_cache,
#     core 0) serving a mirror of the node's live stream from tmpfs: a poller on core 1
#     (`sealcast-bench mirror --interval 0.1`) asks the node for its 360p media playlist
#     every 100 ms over keep-alive HTTP and, when it
#     changed, fetches the new segments (and the init segment) first, then the playlist,
#     each written to a temporary file and renamed into place, so nginx never serves a
#     partial file nor a playlist listing a segment it lacks. Same bytes, the same window,
#     at most ~100 ms behind the node. While nginx is measured the node moves to core 1
#     (it keeps taking the live stream and feeding the mirror), so core 0 is nginx's alone.
#   - HAProxy 2.6 (`nbthread 1`, core 0) over TLS 1.3 with HTTP/2 by ALPN, in front of the
#     same node, against `sealcast lb` (TOKIO_WORKER_THREADS=1, core 0), which finds the node
#     by its signed presence over MQTT as in a cluster and keys its sticky cookie with the
#     key `sealcast keys init` made; the same certificate (`sealcast certs`). HAProxy offers
#     only the TLS 1.3 cipher suite ours picks; both negotiations are printed. In this part
#     the node stays on core 0 with the load balancer under test: the count is what one
#     load-balancer worker and one node worker on one core hold, and both peers pay the same
#     node.
#
# The load: `sealcast-viewers` (bench/viewers, one runtime thread, core 1) ramps viewers of
# the 360p rung, each like hls.js (master, the media playlist once per target duration open
# loop, every new segment as soon as it is listed, from the live edge; its own client and
# keep-alive connections; plain HTTP/1.1 to the node and nginx, TLS + h2 through the load
# balancers). Every STEP_SECS it adds viewers (START, then +STEP or ×GROWTH, whichever adds
# more, up to MAX_VIEWERS; new viewers join over the step's first JOIN_SECS) and judges the
# step on the requests that were due in it: it passes when none failed and the segments'
# time to first byte (response headers, from the time the request was due) has p99 <
# TTFB_MS. The count is the viewers of the last step that passed. The emulator also reports,
# per step, how late it issued requests (issue lag) and the CPU of itself, of the server
# under test and of each core: when the step that failed shows the load generator short of
# CPU (issue lag p99 > LAG_LIMIT_MS, or core 1 busy ≥ GEN_BUSY), the count is reported as
# a lower bound ("≥ N, limited by the load generator"), not as the server's; likewise a
# ramp that reached MAX_VIEWERS.
#
# RUNS runs; each runs the pairs A B, the order flipping every run (node nginx lb haproxy,
# then nginx node haproxy lb, ...). Ratios ours/peer per run (median, min–max over the runs
# where both counts are exact), and the peer against itself in consecutive runs (A/A) as the
# noise floor. Writes bench/out/capacity.json (CAPACITY_RESULTS) and the section
# "## Viewers per edge worker (bench/capacity.sh)" in docs/benchmarks.md (CAPACITY_DOCS;
# CAPACITY_DOCS= skips it), and prints the section.
#
# Usage: bench/capacity.sh [RUNS]   (default 5)
# Environment (defaults in brackets):
#   SEALCAST_BIN, VIEWERS_BIN   prebuilt binaries instead of `cargo build --release`
#   SEALCAST_BENCH              the driver (`sealcast-bench report capacity`) likewise
#   PARTS="1 2"                 1: node vs nginx, 2: lb vs HAProxy
#   STEP_SECS=8 JOIN_SECS=4 SETTLE_SECS=1 TTFB_MS=250
#   START=1000 STEP=500 GROWTH=1.25 MAX_VIEWERS=9000   plain HTTP ramps
#   TLS_START=250 TLS_STEP=250 TLS_GROWTH=1.2 TLS_MAX_VIEWERS=6000   TLS ramps
#   LAG_LIMIT_MS=50 GEN_BUSY=0.95   when the load generator counts as saturated
set -euo pipefail
# Relative binaries are relative to where the script was started.
[ -z "${SEALCAST_BIN:-}" ] || SEALCAST_BIN="$(realpath -m "$SEALCAST_BIN")"
[ -z "${VIEWERS_BIN:-}" ] || VIEWERS_BIN="$(realpath -m "$VIEWERS_BIN")"
GIVEN_BENCH="${SEALCAST_BENCH:+$(realpath "$SEALCAST_BENCH")}"
cd "$(dirname "$0")/.."
WORK=""
RUNS="${1:-5}"
PARTS="${PARTS:-1 2}"
STEP_SECS="${STEP_SECS:-8}"; JOIN_SECS="${JOIN_SECS:-4}"; SETTLE_SECS="${SETTLE_SECS:-1}"; TTFB_MS="${TTFB_MS:-250}"
START="${START:-1000}"; STEP="${STEP:-500}"; GROWTH="${GROWTH:-1.25}"; MAX_VIEWERS="${MAX_VIEWERS:-9000}"
TLS_START="${TLS_START:-250}"; TLS_STEP="${TLS_STEP:-250}"; TLS_GROWTH="${TLS_GROWTH:-1.2}"; TLS_MAX_VIEWERS="${TLS_MAX_VIEWERS:-6000}"
LAG_LIMIT_MS="${LAG_LIMIT_MS:-50}"; GEN_BUSY="${GEN_BUSY:-0.95}"
RESULTS="${CAPACITY_RESULTS:-bench/out/capacity.json}"
DOCS="${CAPACITY_DOCS-docs/benchmarks.md}"
STREAM=cap
source bench/lib.sh
# The logs go with the work directory: bench_fail prints their ends first.
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "usage: bench/capacity.sh [RUNS]"
for p in $PARTS; do [[ "$p" =~ ^[12]$ ]] || die "PARTS is a list of 1 and 2"; done
[ "$(nproc)" -ge 2 ] || die "needs two cores (servers on core 0, everything else on core 1)"
# Every viewer holds up to two connections (HTTP/1.1), the servers one per connection.
ulimit -n "$(ulimit -Hn)"
NOFILE="$(ulimit -n)"
[ "$NOFILE" != unlimited ] || NOFILE=1048576
for m in "$MAX_VIEWERS" "$TLS_MAX_VIEWERS"; do
  [ $((2 * m + 1000)) -le "$NOFILE" ] \
    || die "MAX_VIEWERS=$m needs $((2 * m + 1000)) open files; the limit is $NOFILE"
done

bench_install capacity nginx haproxy mosquitto curl openssl util-linux
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
HAPROXY="$(command -v haproxy || echo /usr/sbin/haproxy)"
MOSQUITTO="$(command -v mosquitto || echo /usr/sbin/mosquitto)"

bench_tmpfs_workdir capacity
bench_binary
bench_driver
VIEWERS="${VIEWERS_BIN:-}"
if [ -z "$VIEWERS" ]; then bench_tool sealcast-viewers; VIEWERS="$TOOL"; fi
[ -x "$VIEWERS" ] || die "no sealcast-viewers binary at $VIEWERS"
bench_clear_env


# --- 1. the cluster: broker, keys, node, ingest, live source ------------------------------------------
MQ_PORT="$(free_port)"
bench_render mosquitto/mosquitto.conf "$WORK/mosquitto.conf" PORT="$MQ_PORT"
bench_start mosquitto 1 "$MOSQUITTO" -c "$WORK/mosquitto.conf"
MQ_PID=$LAST_PID
export SEALCAST_MQTT_URL="mqtt://127.0.0.1:$MQ_PORT"
bench_wait_for 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$MQ_PORT" || { cat "$WORK/mosquitto.err" >&2; die "mosquitto did not listen"; }

DATA="$WORK/data"
"$BIN" keys init --data-dir "$DATA" > "$WORK/keys.log" 2>&1 || { cat "$WORK/keys.log" >&2; die "sealcast keys init failed"; }
"$BIN" certs --certs-dir "$WORK/certs" > "$WORK/certs.log" 2>&1 || { cat "$WORK/certs.log" >&2; die "sealcast certs failed"; }
CA="$WORK/certs/ca.pem"
# The stream key goes to a file, and to the publisher through its environment.
"$BIN" streams --data-dir "$DATA" add "$STREAM" > "$WORK/stream-key" 2> "$WORK/streams.err" \
  || { cat "$WORK/streams.err" >&2; die "sealcast streams add failed"; }
[ -s "$WORK/stream-key" ] || die "sealcast streams add printed no key"

cat > "$WORK/sealcast.toml" <<'EOF'
# The source rung only, named 360p: the publisher's 640x360 ~730 kb/s H.264, not re-encoded.
[ladder]
segment_target = 2.0
window = 6
preset = "veryfast"
format = "cmaf"
part_target = 0
[[ladder.rungs]]
name = "360p"
kind = "source"
EOF

NODE_PORT="$(free_port)"
TOKIO_WORKER_THREADS=1 bench_start node 0 "$BIN" broadcast --data-dir "$DATA" --config "$WORK/sealcast.toml" \
  --listen "127.0.0.1:$NODE_PORT" --node-id capnode --ready-timeout 2
NODE_PID=$LAST_PID
NODE="http://127.0.0.1:$NODE_PORT"
bench_wait_for 30 grep -q '^capnode ' "$WORK/node.out" || { alive "$NODE_PID" "sealcast broadcast"; tail "$WORK/node.err" >&2; die "the node did not report ready in 30 s"; }

RTMP_PORT="$(free_port)"
bench_start ingest 1 "$BIN" ingest --data-dir "$DATA" --config "$WORK/sealcast.toml" \
  --rtmp-listen "127.0.0.1:$RTMP_PORT" --srt-listen 127.0.0.1:0 --webrtc-listen 127.0.0.1:0 \
  --metrics-listen "127.0.0.1:$(free_port)" --node-id ingest1
INGEST_PID=$LAST_PID
bench_wait_for 30 grep -q '^obs-server ' "$WORK/ingest.out" || { alive "$INGEST_PID" "sealcast ingest"; tail "$WORK/ingest.err" >&2; die "the ingest did not start in 30 s"; }

SEALCAST_SOURCE_URL="rtmp://127.0.0.1:$RTMP_PORT/live/$(cat "$WORK/stream-key")" \
  bench_start source 1 "$BIN" source --size 640x360 --fps 30 --bitrate 730 --gop 2
SOURCE_PID=$LAST_PID
PLAYLIST="/live/$STREAM/360p/index.m3u8"
MASTER="/live/$STREAM/master.m3u8"
listed() { [ "$(curl -sf --max-time 2 "$NODE$PLAYLIST" | grep -vc '^#')" -ge "$1" ]; }
echo "capacity: waiting for the node to list 3 segments of the live stream" >&2
bench_wait_for 60 listed 3 || { alive "$SOURCE_PID" "sealcast source"; tail "$WORK/ingest.err" "$WORK/node.err" >&2; die "the node did not list 3 segments in 60 s"; }
curl -sf "$NODE$MASTER" | grep -q '^360p/index.m3u8' || die "the master playlist does not list 360p/index.m3u8: $(curl -s "$NODE$MASTER")"

# --- 2. nginx on a mirror of the node's live stream -----------------------------------------------------
WWW="$WORK/www"; mkdir -p "$WWW"; chmod 755 "$WWW"
# The mirror: the playlist every 0.1 s, the new segments first, each file renamed into
# place; "ready" once it has the playlist.
bench_start mirror 1 "$DRIVER" mirror "$NODE" "$MASTER" "$PLAYLIST" "$WWW" --interval 0.1
MIRROR_PID=$LAST_PID
bench_wait_for 20 grep -q '^ready' "$WORK/mirror.out" || { cat "$WORK/mirror.err" >&2; die "the mirror did not start"; }

NGINX_PORT="$(free_port)"
bench_nginx_conf "$WORK/nginx" "$NGINX_PORT" "$WWW" "$NOFILE"
bench_start nginx 0 "$NGINX" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log"
NGINX_PID=$LAST_PID
NGINX_URL="http://127.0.0.1:$NGINX_PORT"
bench_wait_for 10 curl -sf "$NGINX_URL$MASTER" || { cat "$WORK/nginx/error.log" >&2; die "nginx did not answer"; }
NGINX_PIDS="$NGINX_PID $(pgrep -P "$NGINX_PID" | tr '\n' ' ')"

# Same bytes from both: the master, the init segment and a segment listed by both.
same() { [ "$(curl -sf "$NODE$1" | sha256sum)" = "$(curl -sf "$NGINX_URL$1" | sha256sum)" ]; }
same "$MASTER" || die "nginx and the node serve different master playlists"
pl="$(curl -sf "$NGINX_URL$PLAYLIST")"
init="$(grep -o 'URI="[^"]*"' <<< "$pl" | head -1 | sed 's/URI="//; s/"$//')"
seg="$(grep -v '^#' <<< "$pl" | tail -2 | head -1)"
[ -n "$seg" ] || die "nginx's playlist lists no segment"
[ -z "$init" ] || same "/live/$STREAM/360p/$init" || die "nginx and the node serve different init segments"
same "/live/$STREAM/360p/$seg" || die "nginx and the node serve different bytes for $seg"
SEG_BYTES="$(curl -sf "$NODE/live/$STREAM/360p/$seg" | wc -c)"
echo "capacity: node $NODE and nginx $NGINX_URL serve the same stream (segment $seg: $SEG_BYTES bytes)" >&2

# --- 3. the load balancers over TLS, in front of the node --------------------------------------------------
if [[ " $PARTS " == *" 2 "* ]]; then
  LB_PORT="$(free_port)"
  TOKIO_WORKER_THREADS=1 bench_start lb 0 "$BIN" lb --data-dir "$DATA" --certs-dir "$WORK/certs" \
    --https-listen "127.0.0.1:$LB_PORT" --http-listen "127.0.0.1:$(free_port)" \
    --metrics-listen "127.0.0.1:$(free_port)" --node-id caplb --no-access-log --no-limits
  LB_PID=$LAST_PID
  LB_URL="https://localhost:$LB_PORT"
  bench_wait_for 30 bench_ok200 "$LB_URL$PLAYLIST" || { alive "$LB_PID" "sealcast lb"; tail -20 "$WORK/lb.err" >&2; die "sealcast lb did not answer 200 on $PLAYLIST in 30 s"; }
  OURS_TLS="$(bench_cipher "$LB_URL")"
  suite="$(awk '{ print $2 }' <<< "$OURS_TLS")"
  [ -n "$suite" ] || die "no TLS cipher suite from our load balancer"

  HA_PORT="$(free_port)"
  cat "$WORK/certs/server.pem" "$WORK/certs/server.key" > "$WORK/haproxy.pem"
  bench_haproxy_conf "$WORK/haproxy.cfg" "$HA_PORT" "$WORK/haproxy.pem" "$suite" $((NOFILE / 2 - 100)) 120s \
    "127.0.0.1:$NODE_PORT"
  "$HAPROXY" -c -q -f "$WORK/haproxy.cfg" || die "HAProxy refuses $WORK/haproxy.cfg"
  bench_start haproxy 0 "$HAPROXY" -db -f "$WORK/haproxy.cfg"
  HA_PID=$LAST_PID
  HA_URL="https://localhost:$HA_PORT"
  bench_wait_for 20 bench_ok200 "$HA_URL$PLAYLIST" || { alive "$HA_PID" HAProxy; cat "$WORK/haproxy.err" >&2; die "HAProxy did not answer 200 in 20 s"; }
  HA_TLS="$(bench_cipher "$HA_URL")"
  echo "capacity: TLS ours: $OURS_TLS; HAProxy: $HA_TLS" >&2
  [ "$(awk '{ print $2 }' <<< "$HA_TLS")" = "$suite" ] || die "HAProxy negotiated $HA_TLS, ours $OURS_TLS"
  for u in "$LB_URL" "$HA_URL"; do
    [ "$(curl -s --cacert "$CA" "$u/live/$STREAM/360p/$seg" | sha256sum)" = "$(curl -s "$NODE/live/$STREAM/360p/$seg" | sha256sum)" ] \
      || die "$u serves different bytes for $seg"
  done
else
  OURS_TLS=""; HA_TLS=""
fi

# --- 4. ramps ----------------------------------------------------------------------------------------------
# ramp SYSTEM RUN: one ramp of sealcast-viewers (core 1, one thread) against SYSTEM; its
# report in $WORK/ramps/SYSTEM-RUN.json.
mkdir -p "$WORK/ramps"
ramp() {
  local system="$1" run="$2" url args=() watch=() p out="$WORK/ramps/$1-$2.json"
  case "$system" in
    node) url="$NODE$MASTER"; watch=("$NODE_PID"); args=(--http1) ;;
    nginx) url="$NGINX_URL$MASTER"; watch=($NGINX_PIDS); args=(--http1) ;;
    lb) url="$LB_URL$MASTER"; watch=("$LB_PID" "$NODE_PID"); args=(--ca "$CA") ;;
    haproxy) url="$HA_URL$MASTER"; watch=("$HA_PID" "$NODE_PID"); args=(--ca "$CA") ;;
  esac
  if [ "$system" = node ] || [ "$system" = nginx ]; then
    args+=(--start "$START" --step "$STEP" --growth "$GROWTH" --viewers "$MAX_VIEWERS")
  else
    args+=(--start "$TLS_START" --step "$TLS_STEP" --growth "$TLS_GROWTH" --viewers "$TLS_MAX_VIEWERS")
  fi
  for p in "${watch[@]}"; do args+=(--watch-pid "$p"); done
  # The node leaves core 0 to nginx while nginx is measured.
  if [ "$system" = nginx ]; then taskset -a -pc 1 "$NODE_PID" > /dev/null; else taskset -a -pc 0 "$NODE_PID" > /dev/null; fi
  alive "$SOURCE_PID" "sealcast source"; alive "$MIRROR_PID" "the mirror"
  for p in "${watch[@]}"; do alive "$p" "$system"; done
  echo "capacity: run $run/$RUNS $system" >&2
  taskset -c 1 "$VIEWERS" "$url" --rendition 360p --threads 1 --timeout 10 \
    --step-secs "$STEP_SECS" --join-secs "$JOIN_SECS" --settle-secs "$SETTLE_SECS" --stop-ttfb-ms "$TTFB_MS" \
    "${args[@]}" --json "$out" > /dev/null 2> "$WORK/ramps/$system-$run.err" &
  local vpid=$!
  PIDS+=("$vpid")
  # Progress: each step as it is judged.
  tail -n +1 -f --pid "$vpid" "$WORK/ramps/$system-$run.err" 2> /dev/null | "$DRIVER" progress capacity || true
  wait "$vpid" || die "sealcast-viewers failed against $system: $(tail -3 "$WORK/ramps/$system-$run.err")"
  [ -s "$out" ] || die "sealcast-viewers wrote no report for $system"
  # Connections closed, sockets gone, before the next ramp.
  sleep 3
}

SYSTEMS_A=(); SYSTEMS_B=()
[[ " $PARTS " == *" 1 "* ]] && SYSTEMS_A+=(node nginx) && SYSTEMS_B+=(nginx node)
[[ " $PARTS " == *" 2 "* ]] && SYSTEMS_A+=(lb haproxy) && SYSTEMS_B+=(haproxy lb)
T0=$(date +%s)
for run in $(seq 1 "$RUNS"); do
  if ((run % 2)); then order=("${SYSTEMS_A[@]}"); else order=("${SYSTEMS_B[@]}"); fi
  for s in "${order[@]}"; do ramp "$s" "$run"; done
done
taskset -a -pc 0 "$NODE_PID" > /dev/null
ELAPSED=$(($(date +%s) - T0))

# --- 5. report -----------------------------------------------------------------------------------------------
bench_report_docs "$DOCS"
"$DRIVER" report capacity "$WORK/ramps" --results "$RESULTS" --runs "$RUNS" --parts "$PARTS" \
  --step-secs "$STEP_SECS" --join-secs "$JOIN_SECS" --ttfb-ms "$TTFB_MS" \
  --start "$START" --step "$STEP" --growth "$GROWTH" --max-viewers "$MAX_VIEWERS" \
  --tls-start "$TLS_START" --tls-step "$TLS_STEP" --tls-growth "$TLS_GROWTH" --tls-max-viewers "$TLS_MAX_VIEWERS" \
  --lag-limit-ms "$LAG_LIMIT_MS" --gen-busy "$GEN_BUSY" --ours-tls "$OURS_TLS" --ha-tls "$HA_TLS" \
  --segment-bytes "$SEG_BYTES" --elapsed "$ELAPSED" \
  --nginx-version "$("$NGINX" -v 2>&1 || true)" --haproxy-version "$("$HAPROXY" -v 2>&1 || true)" \
  --date "$(date +%F)" "${REPORT_DOCS[@]}"
