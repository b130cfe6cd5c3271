#!/usr/bin/env bash
# Issue 33, third row of "benchmarks of the real workload": LL-HLS viewers through a cache
# tier (Varnish with deploy/varnish/sealcast.vcl) in front of the load balancer. What it
# shows: how many requests reach the origin as the audience grows (the goal: flat, the same
# at 100, 1,000 and 10,000 viewers), and the latency the cache adds (goal ≤ 0.3 s at p50).
#
# The live stream as bench/llhls-common.sh makes it: a mosquitto broker, `sealcast ingest`
# and `sealcast source` (a 640x360 30 fps test pattern, ~730 kb/s, 2 s GOP, real time), the
# source rung only, named 360p (not re-encoded), CMAF, 2 s segments, LL-HLS parts of
# PART_TARGET (0.333 s, the shipping default), a window of 6; one `sealcast broadcast` node
# and one `sealcast lb`, both at their shipping defaults (one tokio worker per core), the
# node found by its signed presence over MQTT. The load balancer also listens on its origin
# listener (`--origin-listen`: plain HTTP, for a cache; Varnish does not speak TLS to a
# backend), and Varnish (Debian's 7.1, the VCL of deploy/varnish/, an origin.vcl written
# here naming that listener) sits in front of it.
#
# Placement on this 2-core machine: node, load balancer and Varnish on core 0; broker,
# ingest, source and the load generator (`sealcast-viewers`, one thread) on core 1.
#
# Systems, each a fixed audience for STEP_SECS (viewers arriving open loop, Poisson, over the
# first JOIN_SECS), interleaved over RUNS runs, the order rotating every run:
#   - lb-100: 100 viewers straight to the load balancer over TLS + HTTP/2, the reference for
#     the latency the cache adds;
#   - cdn-N for each N of AUDIENCES (100 1000 10000): N viewers through Varnish over HTTP/2
#     without TLS (h2c, one connection per viewer as a browser has to a CDN; HTTP/1.1 would
#     need up to three per viewer, 30,000 descriptors at 10,000 viewers, over this
#     machine's limit of 20,000 per process).
# Each viewer is `sealcast-viewers --mode ll` (bench/viewers, src/ll.rs): like hls.js in
# low-latency mode, one blocking reload after another, the preload-hinted part asked for as
# it is hinted, every listed part, delta updates.
#
# Measured in each run of each system, over the part of the step after the viewers joined
# (from JOIN_SECS + 1 s to the step's end):
#   - origin requests per second: the node's own request counter
#     (`sealcast_http_requests_total`, the routes a viewer's request reaches: master, media,
#     part, segment, init; not the load balancer's health checks), sampled every second; and
#     per part per rendition (divided by the parts the node published per second);
#   - Varnish's backend requests, hits and misses (varnishstat) over the same time;
#   - what the viewers saw: latency behind the live edge (wall clock at a part's arrival
#     minus its EXT-X-PROGRAM-DATE-TIME), part time to first byte, blocking-reload waits,
#     stalls, failed requests, requests per second; and how late the generator issued its
#     requests and its CPU. When it was short of CPU (issue lag p99 > LAG_LIMIT_MS, or
#     core 1 ≥ GEN_BUSY busy), the audience asked for is more than the machine could
#     generate: the row says the client was the limit.
# The latency the cache adds: latency behind the edge p50 of cdn-100 minus that of lb-100
# in the same run (median over runs).
#
# Writes bench/out/llhls-cdn.json (LLHLS_RESULTS) and the section "## LL-HLS viewers
# through a cache" of docs/benchmarks.md (LLHLS_DOCS; LLHLS_DOCS= skips it).
#
# Usage: bench/llhls-cdn.sh [RUNS]   (default 5)
# Environment: AUDIENCES="100 1000 10000", STEP_SECS=30, JOIN_SECS=10, PART_TARGET=0.333,
# LAG_LIMIT_MS=50, GEN_BUSY=0.95, VARNISH_THREADS=12000 (most worker threads: its HTTP/2
# sessions hold one each), SEALCAST_BIN, VIEWERS_BIN (prebuilt binaries), SEALCAST_BENCH
# (the driver, whose `report llhls-cdn` writes the report), LLHLS_RESULTS, LLHLS_DOCS.
#
# Smoke run (one run, a few viewers, nothing written into the docs):
#   AUDIENCES="5 20" STEP_SECS=12 JOIN_SECS=2 LLHLS_DOCS= \
#   LLHLS_RESULTS=/tmp/llhls-cdn.json bench/llhls-cdn.sh 1
set -euo pipefail
# Relative paths are relative to where the script was started.
[ -z "${SEALCAST_BIN:-}" ] || SEALCAST_BIN="$(realpath -m "$SEALCAST_BIN")"
[ -z "${VIEWERS_BIN:-}" ] || VIEWERS_BIN="$(realpath -m "$VIEWERS_BIN")"
[ -z "${LLHLS_RESULTS:-}" ] || LLHLS_RESULTS="$(realpath -m "$LLHLS_RESULTS")"
GIVEN_BENCH="${SEALCAST_BENCH:+$(realpath "$SEALCAST_BENCH")}"
cd "$(dirname "$0")/.."
WORK=""
RESULTS="${LLHLS_RESULTS:-bench/out/llhls-cdn.json}"
DOCS="${LLHLS_DOCS-docs/benchmarks.md}"
RUNS="${1:-5}"
AUDIENCES="${AUDIENCES:-100 1000 10000}"
STEP_SECS="${STEP_SECS:-30}"; JOIN_SECS="${JOIN_SECS:-10}"; PART_TARGET="${PART_TARGET:-0.333}"
LAG_LIMIT_MS="${LAG_LIMIT_MS:-50}"; GEN_BUSY="${GEN_BUSY:-0.95}"; VARNISH_THREADS="${VARNISH_THREADS:-12000}"
STREAM=ll
PLAYLIST="/live/$STREAM/360p/index.m3u8"
MASTER="/live/$STREAM/master.m3u8"
source bench/lib.sh
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "usage: bench/llhls-cdn.sh [RUNS]"
for n in $AUDIENCES; do [[ "$n" =~ ^[1-9][0-9]*$ ]] || die "AUDIENCES are viewer counts: $AUDIENCES"; done
[ "$STEP_SECS" -gt $((JOIN_SECS + 3)) ] || die "STEP_SECS must leave at least 3 s after JOIN_SECS"
[ "$(nproc)" -ge 2 ] || die "needs two cores (servers on core 0, everything else on core 1)"
ulimit -n "$(ulimit -Hn)"
NOFILE="$(ulimit -n)"
[ "$NOFILE" != unlimited ] || NOFILE=1048576
MOST=0; for n in $AUDIENCES; do [ "$n" -le "$MOST" ] || MOST=$n; done
[ $((MOST + 1000)) -le "$NOFILE" ] || die "$MOST viewers need $((MOST + 1000)) open files; the limit is $NOFILE"

bench_install llhls-cdn varnish mosquitto curl openssl util-linux
VARNISHD="$(command -v varnishd || echo /usr/sbin/varnishd)"
bench_tmpfs_workdir llhls-cdn
bench_binary
bench_driver
VIEWERS="${VIEWERS_BIN:-}"
if [ -z "$VIEWERS" ]; then bench_tool sealcast-viewers; VIEWERS="$TOOL"; fi
[ -x "$VIEWERS" ] || die "no sealcast-viewers binary at $VIEWERS"
bench_clear_env

# --- 1. the live stream, its node and its load balancer ----------------------------------------------
bench_mosquitto 1 || die "no broker"
bench_ll_cluster "$STREAM" "$PART_TARGET" || die "setting up the stream failed"
NODE_PORT="$(free_port)"
bench_start node 0 "$BIN" broadcast --data-dir "$DATA" --config "$WORK/sealcast.toml" \
  --listen "127.0.0.1:$NODE_PORT" --node-id llnode --recordings "$WORK/rec" --ready-timeout 2
NODE_PID=$LAST_PID
NODE_URL="http://127.0.0.1:$NODE_PORT"
bench_wait_for 30 grep -q '^llnode ' "$WORK/node.out" || { alive "$NODE_PID" "the node"; die "the node did not report ready in 30 s"; }
bench_ll_publish 1 || die "publishing failed"

LB_PORT="$(free_port)"; ORIGIN_PORT="$(free_port)"
# Every emulated viewer has this machine's one address: no per-client limits (issue 34), as
# behind a CDN, whose addresses a deployment exempts the same way.
bench_start lb 0 "$BIN" lb --data-dir "$DATA" --certs-dir "$WORK/certs" \
  --https-listen "127.0.0.1:$LB_PORT" --http-listen "127.0.0.1:$(free_port)" \
  --origin-listen "127.0.0.1:$ORIGIN_PORT" --metrics-listen "127.0.0.1:$(free_port)" \
  --node-id llcdn --no-access-log --no-limits
LB_PID=$LAST_PID
LB_URL="https://localhost:$LB_PORT"

# --- 2. Varnish in front of the load balancer's origin listener ---------------------------------------
VARNISH_PORT="$(free_port)"
mkdir -p "$WORK/vcl"
bench_render varnish/origin.vcl "$WORK/vcl/origin.vcl" ORIGIN_PORT="$ORIGIN_PORT"
# As deploy/docker/varnish does (HTTP/2 on, 256 MB of objects), with room for this many
# viewers: a worker thread per HTTP/2 session, long idle connections, a deep backlog. Its
# shared memory log and compiled VCL in the work directory; no jail (a benchmark's own
# process). Started afresh on a new port before every audience (varnish_restart): the
# threads of 10,000 HTTP/2 sessions keep about 2 MB of memory each after their viewers
# left (20 GB of the machine's 24), and the next audience would be measured on a machine
# short of memory.
varnish_start() {
  bench_start varnish 0 "$VARNISHD" -F -j none -n "$WORK/varnish" -a "127.0.0.1:$VARNISH_PORT" \
    -f "$PWD/deploy/varnish/sealcast.vcl" -p "vcl_path=$WORK/vcl:$PWD/deploy/varnish" \
    -s malloc,256m -p feature=+http2 -p timeout_idle=60 -p listen_depth=4096 \
    -p thread_pools=2 -p thread_pool_min=200 -p "thread_pool_max=$((VARNISH_THREADS / 2))"
  VARNISH_PID=$LAST_PID
  VARNISH_URL="http://127.0.0.1:$VARNISH_PORT"
}
varnish_start
# Varnish's manager and its child (the cache): the CPU of both is the cache's.
varnish_pids() { echo "$VARNISH_PID $(pgrep -P "$VARNISH_PID" | tr '\n' ' ')"; }

# Three segments and their parts listed, through the cache: a window to join.
listed() { curl -sf --max-time 2 "$@" | "$DRIVER" check ll-window; }
echo "llhls-cdn: waiting for the stream through the load balancer and Varnish" >&2
# stream_listed NODE_SECS: the stream listed at the node (within NODE_SECS), then through
# the load balancer and through Varnish.
stream_listed() {
  bench_wait_for "$1" listed "$NODE_URL$PLAYLIST" || { alive "$SOURCE_PID" "sealcast source"; die "the node did not list 3 segments with parts in $1 s"; }
  bench_wait_for 60 listed --cacert "$CA" "$LB_URL$PLAYLIST" || { alive "$LB_PID" "sealcast lb"; die "the load balancer did not answer in 60 s"; }
  bench_wait_for 20 listed "$VARNISH_URL$PLAYLIST" || { alive "$VARNISH_PID" Varnish; die "Varnish did not answer in 20 s"; }
}
stream_listed 60
# Before each audience: a fresh Varnish, once the stream is listed again (after an audience
# the machine could not serve, the node may have fallen behind its ingest and the load
# balancer may have taken it out of rotation for a while); how long that took, when it took
# a while.
varnish_restart() {
  local t0=$SECONDS
  kill "$VARNISH_PID" 2> /dev/null || true
  wait "$VARNISH_PID" 2> /dev/null || true
  VARNISH_PORT="$(free_port)"
  varnish_start
  stream_listed 120
  [ $((SECONDS - t0)) -lt 5 ] || echo "llhls-cdn: the stream was listed again after $((SECONDS - t0)) s" >&2
}
cache_status="$(curl -s -o /dev/null -D - "$VARNISH_URL$MASTER" | tr -d '\r' | awk -F': ' 'tolower($1) == "x-sealcast-cache" { print $2 }')"
[ -n "$cache_status" ] || die "Varnish answered without x-sealcast-cache: not deploy/varnish/sealcast.vcl?"
echo "llhls-cdn: live; Varnish $VARNISH_URL in front of $LB_URL (origin listener :$ORIGIN_PORT)" >&2

# --- 3. runs ------------------------------------------------------------------------------------------
mkdir -p "$WORK/runs"
# run SYSTEM RUN: one fixed audience of SYSTEM (lb-N or cdn-N); the viewers' report in
# $WORK/runs/SYSTEM-RUN.json, the samples in $WORK/runs/SYSTEM-RUN.samples, the start and
# end times in $WORK/runs/SYSTEM-RUN.times.
run() {
  local system="$1" run="$2" url args=() base="$WORK/runs/$1-$2"
  local n="${system#*-}"
  for p in "$NODE_PID" "$LB_PID" "$VARNISH_PID" "$SOURCE_PID"; do alive "$p" "a server (pid $p)"; done
  echo "llhls-cdn: run $run/$RUNS $system" >&2
  varnish_restart
  case "$system" in
    lb-*) url="$LB_URL"; args=(--ca "$CA") ;;
    cdn-*) url="$VARNISH_URL"; args=(--h2c) ;;
  esac
  # Every second, "unix-time node-requests varnish-backend-requests hits misses", the
  # node's requests summed over the routes viewers reach, until killed.
  "$DRIVER" sample llhls-cdn-origin "$NODE_URL" "$WORK/varnish" "$base.samples" 2>> "$WORK/sample.err" &
  local spid=$!
  PIDS+=("$spid")
  sleep 1
  date +%s.%N > "$base.times"
  # shellcheck disable=SC2046 # the pids are words
  taskset -c 1 "$VIEWERS" "$url$MASTER" --mode ll --arrival poisson --seed "$run" --rendition 360p \
    --threads 1 --timeout 15 --step-secs "$STEP_SECS" --join-secs "$JOIN_SECS" --settle-secs 2 \
    --stop-ttfb-ms 1000000 --start "$n" --step "$n" --viewers "$n" "${args[@]}" \
    --watch-pid "$NODE_PID" --watch-pid "$LB_PID" $(varnish_pids | sed 's/[0-9]\+/--watch-pid &/g') \
    --json "$base.json" > /dev/null 2> "$base.err" \
    || die "sealcast-viewers failed against $system: $(tail -3 "$base.err")"
  date +%s.%N >> "$base.times"
  kill "$spid" 2> /dev/null || true
  wait "$spid" 2> /dev/null || true
  [ -s "$base.json" ] || die "sealcast-viewers wrote no report for $system"
  "$DRIVER" sample llhls-cdn-step "$base.json" >&2 || true
  # Connections closed, sockets gone, the cache's held objects expired, before the next.
  sleep 5
}
SYSTEMS=(lb-100); for n in $AUDIENCES; do SYSTEMS+=("cdn-$n"); done
T0=$(date +%s)
for run in $(seq 1 "$RUNS"); do
  for i in "${!SYSTEMS[@]}"; do
    run "${SYSTEMS[$(((i + run - 1) % ${#SYSTEMS[@]}))]}" "$run"
  done
done
ELAPSED=$(($(date +%s) - T0))
# Parts the node published per second over the runs, from its playlist: PART-TARGET is what
# the segmenter aims at; the measured rate is what the per-part figures divide by.
curl -sf --max-time 5 "$NODE_URL$PLAYLIST" > "$WORK/playlist.m3u8"
PARTS_PER_SEC="$("$DRIVER" sample parts-per-second "$WORK/playlist.m3u8")"

# --- 4. report ------------------------------------------------------------------------------------------
bench_report_docs "$DOCS"
"$DRIVER" report llhls-cdn "$WORK/runs" --results "$RESULTS" --runs "$RUNS" --systems "${SYSTEMS[*]}" \
  --step-secs "$STEP_SECS" --join-secs "$JOIN_SECS" --lag-limit-ms "$LAG_LIMIT_MS" --gen-busy "$GEN_BUSY" \
  --parts-per-sec "$PARTS_PER_SEC" --part-target "$PART_TARGET" --cores "$(nproc)" \
  --varnish-version "$("$VARNISHD" -V 2>&1 | head -1)" --elapsed "$ELAPSED" --date "$(date +%F)" "${REPORT_DOCS[@]}"
