#!/usr/bin/env bash
# Memory per live stream (docs/benchmarks.md): the RSS a broadcast
# node adds for each live stream, against the floor, the bytes of the window it lists.
#
# The roles run one per process, as a cluster runs them, so the node's RSS is its own (not
# the ingest's transcoders and buffers): a private Mosquitto on a free loopback port
# (anonymous, loopback only), `sealcast keys init` and `sealcast streams add` for the keys
# and the catalog, `sealcast ingest`, and `sealcast broadcast` (1 tokio worker, the node
# under test). Live streams are published with `sealcast source` at real-time pace, added
# one by one: stream k starts, and once every rung of it lists a full window and has slid
# on by GRACE+1 segments (the node then also holds the segments it keeps fetchable after
# they leave the window; polled, no fixed sleep), the node is sampled for SAMPLE_SECONDS
# (every 0.5 s): VmRSS, RssAnon, RssFile (/proc/PID/status) and Pss (smaps_rollup), and
# the floor, read from the node itself: every rung's media playlist of every stream, and
# the size (HEAD, Content-Length) of every segment, LL-HLS part and init segment it lists.
# Medians over the samples. RSS(0) is sampled the same way before the first stream.
#
# Figures, per run (fresh processes every run), median and min–max over RUNS:
#   - added RSS per stream, (RSS(k) − RSS(0)) / k at k = STREAMS;
#   - the floor per stream: listed bytes / k (segments + parts + init, as the playlists
#     list them: the last PART_SEGMENTS segments are listed both whole and as parts);
#   - ratio = added RSS / floor at k = STREAMS (goal ≤ 1.3), also against the unique bytes
#     (each byte once: the segments, the open segment's parts, init) and against what the
#     node serves (listed + the segments kept fetchable after the window + every part it
#     answers for);
#   - the marginal cost: least-squares slope of RSS over k = 1..STREAMS against the
#     floor's slope (leaves out what the first stream sets up once: threads, allocator
#     arenas and their transparent huge pages).
#
# The ladder (LADDER=cheap, the default) — the product's default ladder transcodes a 720p
# source at about 1.4 cores per stream, which this 2-core shared machine cannot do for
# more than one stream in real time. So: the default ladder's shape and bitrates (src +
# three encoded rungs at 3000 / 1200 / 730 kb/s, 2 s segments, window 6, CMAF with 0.333 s
# parts) at a quarter of the pixels: the source 640x360 30 fps at 2500 kb/s (veryfast),
# encoded rungs 360 / 270 / 180 lines, x264 ultrafast, one thread each. What a node keeps
# depends on bytes, rungs and parts, not on pixels; the bitrates reached are reported (the
# floor over the window's duration). LADDER=default uses the product's defaults (no
# configuration file) and a 1280x720 source, for a machine with the cores for it.
#
# Writes bench/out/stream-memory.json (STREAM_MEMORY_RESULTS moves it) and the section
# "## Memory per live stream (bench/stream-memory.sh)" in docs/benchmarks.md
# (STREAM_MEMORY_DOCS=FILE writes it there instead, STREAM_MEMORY_DOCS= skips it), with
# bench/stream-memory-notes.md (where the memory goes, from a profile) when it exists
# (`sealcast-bench report stream-memory`).
#
# Usage: bench/stream-memory.sh [RUNS [STREAMS]]   (default 5 runs of 3 streams, about 8 minutes)
# Environment:
#   SEALCAST_BIN=path   a prebuilt sealcast binary instead of `cargo build --release`
#   SEALCAST_BENCH=path the report's sealcast-bench (default: the one beside SEALCAST_BIN)
#   LADDER=cheap|default   see above (default cheap)
#   SAMPLE_SECONDS=4   how long each point is sampled
#   NODE_WORKERS=1     tokio worker threads of the node
#   NODE_PREFIX="..."  words put before the node's command, for experiments and profiles
#     (e.g. "env MIMALLOC_PURGE_DELAY=0", or "valgrind --tool=massif --pages-as-heap=yes
#     --massif-out-file=/tmp/node.massif"); the figures then describe that, not the product.
#     The prefix must exec the node in its own process (env and valgrind do; heaptrack's
#     script forks, so attach it with `heaptrack -p PID` instead)
set -euo pipefail
# A relative SEALCAST_BIN is relative to where the script was started.
[ -z "${SEALCAST_BIN:-}" ] || SEALCAST_BIN="$(realpath -m "$SEALCAST_BIN")"
GIVEN_BENCH="${SEALCAST_BENCH:+$(realpath "$SEALCAST_BENCH")}"
cd "$(dirname "$0")/.."
RUNS="${1:-5}"
STREAMS="${2:-3}"
LADDER="${LADDER:-cheap}"
SAMPLE_SECONDS="${SAMPLE_SECONDS:-4}"
NODE_WORKERS="${NODE_WORKERS:-1}"
NODE_PREFIX="${NODE_PREFIX:-}"
RESULTS="${STREAM_MEMORY_RESULTS:-bench/out/stream-memory.json}"
DOCS="${STREAM_MEMORY_DOCS-docs/benchmarks.md}"
WINDOW=6   # [ladder] window (the product's default, and the cheap ladder's)
GRACE=2    # broadcast::stream::GRACE_SEGMENTS: segments kept fetchable after the window
source bench/lib.sh
say() { echo "stream-memory: $*" >&2; }
[[ "$RUNS" =~ ^[1-9][0-9]*$ && "$STREAMS" =~ ^[1-9][0-9]*$ ]] || die "usage: bench/stream-memory.sh [RUNS [STREAMS]]"
[[ "$SAMPLE_SECONDS" =~ ^[1-9][0-9]*$ ]] || die "SAMPLE_SECONDS is a whole number of seconds"

bench_install stream-memory mosquitto curl
MOSQUITTO="$(command -v mosquitto || echo /usr/sbin/mosquitto)"
[ -x "$MOSQUITTO" ] || die "no mosquitto"
bench_workdir
bench_binary
bench_driver
bench_clear_env

case "$LADDER" in
  cheap)
    SIZE=640x360; SOURCE_KBPS=2500; RUNGS=4
    CONFIG="$WORK/sealcast.toml"
    cat > "$CONFIG" <<'EOF'
[ingest]
encoder_threads = 1
end_grace_seconds = 2.0

[ladder]
segment_target = 2.0
window = 6
preset = "ultrafast"
format = "cmaf"
part_target = 0.333

[[ladder.rungs]]
name = "src"
kind = "source"

[[ladder.rungs]]
name = "360p"
kind = "encode"
height = 360
bitrate_kbps = 3000
maxrate_kbps = 3210
bufsize_kbits = 4500

[[ladder.rungs]]
name = "270p"
kind = "encode"
height = 270
bitrate_kbps = 1200
maxrate_kbps = 1284
bufsize_kbits = 1800

[[ladder.rungs]]
name = "180p"
kind = "encode"
height = 180
bitrate_kbps = 730
maxrate_kbps = 781
bufsize_kbits = 1095
EOF
    CONFIG_ARGS=(--config "$CONFIG")
    ;;
  default)
    SIZE=1280x720; SOURCE_KBPS=2500; RUNGS=4; CONFIG_ARGS=() ;;
  *) die "LADDER is cheap or default" ;;
esac

# The keys, once: root, push token, edge key, ingest1's signing key (no secret on a
# command line: the roles find them through SEALCAST_KEYS_DIR).
KEYS="$WORK/keys"
"$BIN" keys --data-dir "$WORK/keys-data" --keys-dir "$KEYS" init > "$WORK/keys.log" 2>&1 \
  || { cat "$WORK/keys.log" >&2; die "sealcast keys init failed"; }

# stop PID: stops a process started here and waits for it.
stop() { kill "$1" 2> /dev/null || true; wait "$1" 2> /dev/null || true; }
# wait_line FILE PATTERN PID SECONDS: waits until FILE has a line matching PATTERN.
wait_line() {
  local i
  for ((i = 0; i < $4 * 10; i++)); do
    grep -q "$2" "$1" 2> /dev/null && return 0
    kill -0 "$3" 2> /dev/null || return 1
    sleep 0.1
  done
  return 1
}

RAW="$WORK/raw.jsonl"; : > "$RAW"
for ((run = 1; run <= RUNS; run++)); do
  R="$WORK/run$run"; mkdir -p "$R"
  # --- the broker, a catalog with the streams, the ingest, the node ---------------------
  mq_port="$(free_port)"
  printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stderr\nlog_type error\nlog_type warning\n' \
    "$mq_port" > "$R/mosquitto.conf"
  "$MOSQUITTO" -c "$R/mosquitto.conf" > "$R/mosquitto.log" 2>&1 &
  MQ_PID=$!; PIDS+=("$MQ_PID")
  for _ in $(seq 1 50); do (exec 3<> "/dev/tcp/127.0.0.1/$mq_port") 2> /dev/null && break; sleep 0.1; done
  export SEALCAST_MQTT_URL="mqtt://127.0.0.1:$mq_port" SEALCAST_KEYS_DIR="$KEYS"

  declare -A STREAM_KEY=()
  for ((k = 1; k <= STREAMS; k++)); do
    STREAM_KEY[$k]="$("$BIN" streams add "s$k" --data-dir "$R/ingest")" || die "sealcast streams add failed"
  done

  "$BIN" ingest --data-dir "$R/ingest" "${CONFIG_ARGS[@]}" --rtmp-listen 127.0.0.1:0 \
    --srt-listen 127.0.0.1:0 --webrtc-listen 127.0.0.1:0 \
    --metrics-listen 127.0.0.1:0 --node-id ingest1 > "$R/ingest.out" 2> "$R/ingest.err" &
  INGEST_PID=$!; PIDS+=("$INGEST_PID")
  wait_line "$R/ingest.out" '^metrics ' "$INGEST_PID" 30 || { tail "$R/ingest.err" >&2; die "sealcast ingest did not start"; }
  RTMP="$(awk '/^obs-server /{print $2}' "$R/ingest.out")"
  INGEST_METRICS="$(awk '/^metrics /{print $2}' "$R/ingest.out")"

  # shellcheck disable=SC2086 # NODE_PREFIX is words on purpose
  TOKIO_WORKER_THREADS="$NODE_WORKERS" $NODE_PREFIX "$BIN" broadcast --data-dir "$R/node" "${CONFIG_ARGS[@]}" \
    --listen 127.0.0.1:0 --node-id sm-node > "$R/node.out" 2> "$R/node.err" &
  NODE_PID=$!; PIDS+=("$NODE_PID")
  wait_line "$R/node.out" '^sm-node ' "$NODE_PID" 60 || { tail "$R/node.err" >&2; die "sealcast broadcast did not become ready"; }
  NODE="$(awk '/^sm-node /{print $2}' "$R/node.out")"; NODE="${NODE%/}"
  unset SEALCAST_MQTT_URL SEALCAST_KEYS_DIR

  # --- RSS(0), then the streams one by one ---------------------------------------------
  point="$("$DRIVER" sample stream-memory "$NODE" "$NODE_PID" "$SAMPLE_SECONDS")"
  echo "{\"run\": $run, \"streams\": 0, \"point\": $point}" >> "$RAW"
  say "run $run: 0 streams: RSS $("$DRIVER" sample stream-memory-point "$point" --show rss) KiB"
  SOURCES=()
  names=()
  for ((k = 1; k <= STREAMS; k++)); do
    SEALCAST_SOURCE_URL="$RTMP/${STREAM_KEY[$k]}" "$BIN" source --size "$SIZE" --fps 30 \
      --bitrate "$SOURCE_KBPS" --gop 2 > "$R/source$k.log" 2>&1 &
    SOURCES+=($!); PIDS+=($!)
    names+=("s$k")
    t0=$SECONDS
    "$DRIVER" check stream-window "$NODE" "s$k" --rungs "$RUNGS" --window "$WINDOW" --grace "$GRACE" --timeout 120 \
      || { tail -5 "$R/source$k.log" "$R/ingest.err" "$R/node.err" >&2; die "stream s$k: no full window on the node"; }
    waited=$((SECONDS - t0))
    for p in "${SOURCES[@]}"; do kill -0 "$p" 2> /dev/null || die "a publisher stopped (see $R)"; done
    point="$("$DRIVER" sample stream-memory "$NODE" "$NODE_PID" "$SAMPLE_SECONDS" "${names[@]}")"
    echo "{\"run\": $run, \"streams\": $k, \"wait_s\": $waited, \"point\": $point}" >> "$RAW"
    listed_rungs="$("$DRIVER" sample stream-memory-point "$point" --show rungs)"
    [ "$listed_rungs" -eq $((k * RUNGS)) ] \
      || say "run $run: $k streams list $listed_rungs rungs, not $((k * RUNGS)): a rung was shed (CPU), the floor misses it"
    say "run $run: $k streams (window full after $waited s): $("$DRIVER" sample stream-memory-point "$point")"
  done
  shed="$(curl -sf "$INGEST_METRICS" | awk '/^sealcast_ingest_rungs_shed/ { s += $NF } END { print s + 0 }')"
  node_cpu="$(cpu_ticks "$NODE_PID")"; ingest_cpu="$(cpu_ticks "$INGEST_PID")"
  echo "{\"run\": $run, \"shed\": $shed, \"node_ticks\": $node_cpu, \"ingest_ticks\": $ingest_cpu, \"hz\": $(getconf CLK_TCK)}" >> "$RAW"
  grep -E " (WARN|ERROR) " "$R/node.err" "$R/ingest.err" | cut -c1-300 | head -20 | sed 's/^/stream-memory: log: /' >&2 || true
  for p in "${SOURCES[@]}"; do stop "$p"; done
  stop "$NODE_PID"; stop "$INGEST_PID"; stop "$MQ_PID"
  rm -rf "$R/node/recordings"
done

bench_report_docs "$DOCS"
"$DRIVER" report stream-memory "$RAW" --runs "$RUNS" --streams "$STREAMS" --ladder "$LADDER" --size "$SIZE" \
  --source-kbps "$SOURCE_KBPS" --sample-seconds "$SAMPLE_SECONDS" --node-workers "$NODE_WORKERS" --grace "$GRACE" \
  --date "$(date +%F)" --results "$RESULTS" "${REPORT_DOCS[@]}"
