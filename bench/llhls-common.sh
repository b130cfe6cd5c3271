# Sourced by bench/llhls-node.sh and bench/llhls-lb.sh (issue 33, the first two rows of
# "benchmarks of the real workload"), not run by itself. The caller sets ROW (node or lb),
# SYSTEMS and the ramp defaults (START, STEP, GROWTH, MAX_VIEWERS).
#
# The live stream: a cluster of separate processes as in bench/capacity.sh: a mosquitto
# broker, `sealcast ingest` and `sealcast source` (a 640x360 30 fps test pattern, ~730 kb/s,
# 2 s GOP, real time, for the whole run), and `sealcast broadcast` nodes. The ladder is the
# source rung only, named `360p` (not re-encoded: no transcode CPU anywhere), CMAF, 2 s
# segments, LL-HLS parts of PART_TARGET (0.333 s, the shipping default), a window of 6.
#
# The viewers: `sealcast-viewers --mode ll` (bench/viewers, src/ll.rs), each like hls.js in
# low-latency mode on the 360p rung: one blocking playlist reload after another
# (`_HLS_msn`/`_HLS_part` naming the part after the last listed one, `_HLS_skip=YES` once it
# has a full playlist), the preload-hinted part asked for as soon as it is hinted (the
# server holds it until it exists), every listed part from PART-HOLD-BACK behind the edge,
# rendition reports read; one client, so one HTTP/2 connection, per viewer, each from its
# own loopback address (`--sources`, SOURCES): a node counts its viewers by address, and
# the load balancer lets a viewer's playlist requests collapse only while the node has
# counted that viewer (loadbalancer/src/counted.rs), as on the Internet. A buffer model
# plays each part for its duration and counts a stall when the next has not arrived.
# Against a server that cannot block (nginx) the same viewers poll instead
# (`--mode ll-poll`: the playlist every part target, open loop, no hints, each new part at
# once): the best LL-HLS that server can offer.
#
# The ramp: viewers arrive open loop (Poisson, ARRIVAL) over the first JOIN_SECS of each
# STEP_SECS step (START, then +STEP or xGROWTH, whichever adds more, up to MAX_VIEWERS). A
# step passes when no request due in it failed, no viewer stalled in it, and the parts'
# time to first byte has p99 < TTFB_MS (a listed part's TTFB from when it was asked for; a
# hinted part's from when it existed, that is from the first answer any viewer had for it:
# the hold before that is by design). The count is the last step that passed. Each step
# also reports latency behind the live edge (wall clock at a part's arrival minus its
# EXT-X-PROGRAM-DATE-TIME), blocking-reload waits, requests per second by kind, the CPU of
# the servers under test, of the load generator and of each core, and how late the
# generator issued requests: when the step that failed shows the generator short of CPU
# (issue lag p99 > LAG_LIMIT_MS, or core 1 busy >= GEN_BUSY) the count is a lower bound.
#
# Placement on this 2-core machine: the servers under test on core 0; broker, ingest,
# source, mirror, the servers not under test and the load generator (one thread) on core 1.
# Processes whose thread count is their default are started on both cores (tokio sizes its
# runtime from the CPUs a process may use) and pinned after they started.
#
# RUNS runs; each runs every system once, the order rotating every run. Ratios ours/peer
# per run (median, min-max over runs where both counts are exact), the peer against itself
# in consecutive runs (A/A) as the noise floor. Writes RESULTS (JSON) and the row's section
# of docs/benchmarks.md (DOCS; DOCS= skips it), and prints the section
# (`sealcast-bench report llhls`).
#
# Environment: SEALCAST_BIN, VIEWERS_BIN (prebuilt binaries), SEALCAST_BENCH (the driver),
# STEP_SECS, JOIN_SECS,
# SETTLE_SECS, TTFB_MS, START, STEP, GROWTH, MAX_VIEWERS, ARRIVAL (poisson or paced),
# SOURCES (client addresses, default MAX_VIEWERS; 0: every viewer from 127.0.0.1),
# PART_TARGET, LAG_LIMIT_MS, GEN_BUSY, SYSTEMS (a subset, in order), LLHLS_RESULTS (the
# JSON, default bench/out/llhls-ROW.json), LLHLS_DOCS (default docs/benchmarks.md).

# Relative paths are relative to where the script was started.
[ -z "${SEALCAST_BIN:-}" ] || SEALCAST_BIN="$(realpath -m "$SEALCAST_BIN")"
[ -z "${VIEWERS_BIN:-}" ] || VIEWERS_BIN="$(realpath -m "$VIEWERS_BIN")"
[ -z "${LLHLS_RESULTS:-}" ] || LLHLS_RESULTS="$(realpath -m "$LLHLS_RESULTS")"
GIVEN_BENCH="${SEALCAST_BENCH:+$(realpath "$SEALCAST_BENCH")}"
cd "$(dirname "${BASH_SOURCE[0]}")/.."
WORK=""
RESULTS="${LLHLS_RESULTS:-bench/out/llhls-$ROW.json}"
DOCS="${LLHLS_DOCS-docs/benchmarks.md}"
RUNS="${1:-5}"
STEP_SECS="${STEP_SECS:-8}"; JOIN_SECS="${JOIN_SECS:-4}"; SETTLE_SECS="${SETTLE_SECS:-2}"; TTFB_MS="${TTFB_MS:-250}"
ARRIVAL="${ARRIVAL:-poisson}"; PART_TARGET="${PART_TARGET:-0.333}"; SOURCES="${SOURCES:-$MAX_VIEWERS}"
LAG_LIMIT_MS="${LAG_LIMIT_MS:-50}"; GEN_BUSY="${GEN_BUSY:-0.95}"
STREAM=ll
PLAYLIST="/live/$STREAM/360p/index.m3u8"
MASTER="/live/$STREAM/master.m3u8"
source bench/lib.sh
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "usage: bench/llhls-$ROW.sh [RUNS]"
[[ "$ARRIVAL" =~ ^(poisson|paced)$ ]] || die "ARRIVAL is poisson or paced"
[ "$(nproc)" -ge 2 ] || die "needs two cores (servers on core 0, everything else on core 1)"
# An LL-HLS viewer over HTTP/1.1 keeps up to 3 connections (a held reload, a held hint, a
# part), over HTTP/2 one; a proxy one more to the node per held request.
ulimit -n "$(ulimit -Hn)"
NOFILE="$(ulimit -n)"
[ "$NOFILE" != unlimited ] || NOFILE=1048576
[ $((4 * MAX_VIEWERS + 1000)) -le "$NOFILE" ] \
  || die "MAX_VIEWERS=$MAX_VIEWERS needs $((4 * MAX_VIEWERS + 1000)) open files; the limit is $NOFILE"

bench_install "llhls-$ROW" nginx haproxy mosquitto curl openssl util-linux
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
HAPROXY="$(command -v haproxy || echo /usr/sbin/haproxy)"
bench_tmpfs_workdir "llhls-$ROW"
bench_binary
bench_driver
VIEWERS="${VIEWERS_BIN:-}"
if [ -z "$VIEWERS" ]; then bench_tool sealcast-viewers; VIEWERS="$TOOL"; fi
[ -x "$VIEWERS" ] || die "no sealcast-viewers binary at $VIEWERS"
bench_clear_env
# pin CORE PID...: every thread of each process onto CORE.
pin() { local core="$1" p; shift; for p in "$@"; do taskset -a -pc "$core" "$p" > /dev/null; done; }

# --- 1. the live stream ---------------------------------------------------------------------------------
bench_mosquitto 1 || die "no broker"
bench_ll_cluster "$STREAM" "$PART_TARGET" || die "could not set up the cluster"
# start_node NAME [ENV...]: a broadcast node on a free port, on both cores until pinned; sets
# NODE_PORT and NODE_PID.
start_node() {
  local name="$1"; shift
  NODE_PORT="$(free_port)"
  env "$@" taskset -c 0,1 "$BIN" broadcast --data-dir "$DATA" --config "$WORK/sealcast.toml" \
    --listen "127.0.0.1:$NODE_PORT" --node-id "$name" --recordings "$WORK/rec-$name" --ready-timeout 2 \
    > "$WORK/$name.out" 2> "$WORK/$name.err" &
  NODE_PID=$!
  PIDS+=("$NODE_PID")
  bench_wait_for 30 grep -q "^$name " "$WORK/$name.out" || { alive "$NODE_PID" "$name"; die "$name did not report ready in 30 s"; }
}
start_node llnode
NODE_URL="http://127.0.0.1:$NODE_PORT"; NODE_MAIN=$NODE_PID
if [ "$ROW" = node ]; then
  start_node llnode1w TOKIO_WORKER_THREADS=1
  NODE1_URL="http://127.0.0.1:$NODE_PORT"; NODE1_PID=$NODE_PID
fi
NODE_PID=$NODE_MAIN

bench_ll_publish 1 || die "could not publish"
# Three segments and their parts listed: a window to join.
listed() { curl -sf --max-time 2 "$1$PLAYLIST" | "$DRIVER" check ll-window; }
echo "llhls-$ROW: waiting for the node to list 3 segments with parts" >&2
bench_wait_for 60 listed "$NODE_URL" || { alive "$SOURCE_PID" "sealcast source"; die "the node did not list 3 segments with parts in 60 s"; }
[ "$ROW" != node ] || bench_wait_for 20 listed "$NODE1_URL" || die "the second node did not list the stream"
pl="$(curl -sf "$NODE_URL$PLAYLIST")"
# last_part PLAYLIST_TEXT: the URI of the last part it lists.
last_part() { grep '^#EXT-X-PART:' <<< "$1" | grep -o 'URI="[^"]*"' | tail -1 | cut -d'"' -f2; }
PART_BYTES="$(curl -sf "$NODE_URL/live/$STREAM/360p/$(last_part "$pl")" | wc -c)"
echo "llhls-$ROW: live, a part is $PART_BYTES bytes" >&2
SERVER_TLS=""; PEER_TLS=""

# --- 2a. nginx on a mirror of the node's LL-HLS files ------------------------------------------------------
if [ "$ROW" = node ]; then
  bench_ll_nginx "$NODE1_URL" "$STREAM" "$NOFILE" || die "could not put nginx on a mirror of the node"
  echo "llhls-$ROW: nginx $NGINX_URL mirrors the node (part $NGINX_SAME_PART: the same bytes)" >&2
fi

# --- 2b. the load balancers over TLS, in front of the node ---------------------------------------------------
if [ "$ROW" = lb ]; then
  bench_ll_lb lldefault "$PLAYLIST"; LB0_URL=$LB_URL; LB0_PID=$LB_PID
  bench_ll_lb ll1w "$PLAYLIST" TOKIO_WORKER_THREADS=1; LB1_URL=$LB_URL; LB1_PID=$LB_PID
  SERVER_TLS="$(bench_cipher "$LB0_URL")"
  suite="$(awk '{ print $2 }' <<< "$SERVER_TLS")"
  [ -n "$suite" ] || die "no TLS cipher suite from our load balancer"
  HA_PORT="$(free_port)"
  cat "$WORK/certs/server.pem" "$WORK/certs/server.key" > "$WORK/haproxy.pem"
  # Timeouts above the node's hold of a blocking request (3 target durations).
  bench_haproxy_conf "$WORK/haproxy.cfg" "$HA_PORT" "$WORK/haproxy.pem" "$suite" $((NOFILE / 2 - 100)) 120s \
    "127.0.0.1:${NODE_URL##*:}"
  "$HAPROXY" -c -q -f "$WORK/haproxy.cfg" || die "HAProxy refuses $WORK/haproxy.cfg"
  bench_start haproxy 0 "$HAPROXY" -db -f "$WORK/haproxy.cfg"
  HA_PID=$LAST_PID
  HA_URL="https://localhost:$HA_PORT"
  bench_wait_for 20 bench_ok200 "$HA_URL$PLAYLIST" || { alive "$HA_PID" HAProxy; die "HAProxy did not answer 200 in 20 s"; }
  PEER_TLS="$(bench_cipher "$HA_URL")"
  echo "llhls-$ROW: TLS ours: $SERVER_TLS; HAProxy: $PEER_TLS" >&2
  [ "$(awk '{ print $2 }' <<< "$PEER_TLS")" = "$suite" ] || die "HAProxy negotiated $PEER_TLS, ours $SERVER_TLS"
fi

# --- 3. ramps ----------------------------------------------------------------------------------------------
mkdir -p "$WORK/ramps"
# ramp SYSTEM RUN: one ramp of sealcast-viewers (core 1, one thread) against SYSTEM; its
# report in $WORK/ramps/SYSTEM-RUN.json.
ramp() {
  local system="$1" run="$2" url mode=ll args=() watch=() p out="$WORK/ramps/$1-$2.json"
  case "$system" in
    node) url="$NODE_URL"; watch=("$NODE_PID"); args=(--http1); pin 0 "$NODE_PID"; pin 1 "$NODE1_PID" ;;
    node-1w) url="$NODE1_URL"; watch=("$NODE1_PID"); args=(--http1); pin 0 "$NODE1_PID"; pin 1 "$NODE_PID" ;;
    nginx) url="$NGINX_URL"; watch=($NGINX_PIDS); args=(--http1); mode=ll-poll; pin 1 "$NODE_PID" "$NODE1_PID" ;;
    lb) url="$LB0_URL"; watch=("$LB0_PID" "$NODE_PID"); args=(--ca "$CA"); pin 0 "$LB0_PID" "$NODE_PID"; pin 1 "$LB1_PID" ;;
    lb-1w) url="$LB1_URL"; watch=("$LB1_PID" "$NODE_PID"); args=(--ca "$CA"); pin 0 "$LB1_PID" "$NODE_PID"; pin 1 "$LB0_PID" ;;
    haproxy) url="$HA_URL"; watch=("$HA_PID" "$NODE_PID"); args=(--ca "$CA"); pin 0 "$NODE_PID"; pin 1 "$LB0_PID" "$LB1_PID" ;;
  esac
  for p in "${watch[@]}"; do args+=(--watch-pid "$p"); alive "$p" "$system"; done
  alive "$SOURCE_PID" "sealcast source"
  echo "llhls-$ROW: run $run/$RUNS $system" >&2
  # There before tail looks for it (the redirection below makes it only once the tool starts).
  : > "$WORK/ramps/$system-$run.err"
  taskset -c 1 "$VIEWERS" "$url$MASTER" --mode "$mode" --arrival "$ARRIVAL" --seed "$run" --rendition 360p \
    --threads 1 --timeout 15 --step-secs "$STEP_SECS" --join-secs "$JOIN_SECS" --settle-secs "$SETTLE_SECS" \
    --stop-ttfb-ms "$TTFB_MS" --start "$START" --step "$STEP" --growth "$GROWTH" --viewers "$MAX_VIEWERS" \
    --sources "$SOURCES" "${args[@]}" --json "$out" > /dev/null 2> "$WORK/ramps/$system-$run.err" &
  local vpid=$!
  PIDS+=("$vpid")
  tail -n +1 -f --pid "$vpid" "$WORK/ramps/$system-$run.err" 2> /dev/null | "$DRIVER" progress llhls || true
  wait "$vpid" || die "sealcast-viewers failed against $system: $(tail -3 "$WORK/ramps/$system-$run.err")"
  [ -s "$out" ] || die "sealcast-viewers wrote no report for $system"
  # Through ours, which collapses playlist requests only for viewers the node counted lately:
  # the viewers the node counts now (the last 10 s, so the ramp's last step), for the report.
  case "$system" in lb|lb-1w)
    curl -sf --max-time 2 "$NODE_URL/metrics" | awk '/^sealcast_viewers[{ ]/ { n += $NF } END { print n + 0 }' \
      > "$WORK/ramps/$system-$run.counted" || true ;;
  esac
  # Connections closed, sockets gone, before the next ramp.
  sleep 3
}
read -r -a ORDER <<< "$SYSTEMS"
T0=$(date +%s)
for run in $(seq 1 "$RUNS"); do
  # Rotate: each system leads once in every len(SYSTEMS) runs.
  for i in "${!ORDER[@]}"; do
    ramp "${ORDER[$(((i + run - 1) % ${#ORDER[@]}))]}" "$run"
  done
done
ELAPSED=$(($(date +%s) - T0))

# --- 4. report -------------------------------------------------------------------------------------------------
bench_report_docs "$DOCS"
"$DRIVER" report llhls "$WORK/ramps" --results "$RESULTS" --row "$ROW" --runs "$RUNS" --cores "$(nproc)" \
  --systems "$SYSTEMS" --step-secs "$STEP_SECS" --join-secs "$JOIN_SECS" --ttfb-ms "$TTFB_MS" --start "$START" \
  --step "$STEP" --growth "$GROWTH" --max-viewers "$MAX_VIEWERS" --arrival "$ARRIVAL" --sources "$SOURCES" \
  --part-target "$PART_TARGET" --part-bytes "$PART_BYTES" --elapsed "$ELAPSED" --lag-limit-ms "$LAG_LIMIT_MS" \
  --gen-busy "$GEN_BUSY" --server-tls "$SERVER_TLS" --peer-tls "$PEER_TLS" \
  --nginx-version "$("$NGINX" -v 2>&1 || true)" --haproxy-version "$("$HAPROXY" -v 2>&1 || true)" \
  --date "$(date +%F)" "${REPORT_DOCS[@]}"
