#!/usr/bin/env bash
# Issue 46 item 2: each fragment crosses from ingest to edge once. With LL-HLS parts, the
# ingest pushes a segment to a node that took all its parts without its bytes (the node
# joins the parts); `SEALCAST_PUSH_WHOLE_SEGMENTS=1` makes it push every segment whole, as
# before. This runs both in one run, ROUNDS times interleaved (assembled, whole, ...): each
# time a fresh `sealcast up` (one ingest, two broadcast nodes, the source rung only, CMAF,
# 2 s segments, 0.333 s parts) with `sealcast source` publishing 720p30 at 3000 kb/s over
# RTMP, a 10 s settle, then SECONDS measured:
#   - ingest→edge bytes: the ingest's `sealcast_ingest_push_bytes_total` (body bytes sent,
#     retries included, per node and kind), per second of media and per node;
#   - the segments' publication latency on node 1: a client follows the media playlist with
#     blocking reloads (`_HLS_msn`) and takes, for every segment as it is listed, the time
#     since its end (its EXT-X-PROGRAM-DATE-TIME, the ingest's capture clock, plus EXTINF);
#     the parts' path is the same in both modes;
#   - gaps: `#EXT-X-GAP` listed and `sealcast_segment_gaps_total` on both nodes; how the
#     segments went (`sealcast_ingest_segment_pushes_total` by form).
# Writes bench/out/push-bytes.json and a section in docs/benchmarks.md
# (PUSH_BYTES_DOCS= skips it; `sealcast-bench report push-bytes`). SEALCAST_BIN picks the
# binary (else the release build), SEALCAST_BENCH the driver.
#
# Usage: bench/push-bytes.sh [SECONDS] [ROUNDS]   (defaults 60 and 2)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-60}"
ROUNDS="${2:-2}"
GIVEN_BIN="${SEALCAST_BIN:+$(realpath "$SEALCAST_BIN")}"
GIVEN_BENCH="${SEALCAST_BENCH:+$(realpath "$SEALCAST_BENCH")}"
source bench/lib.sh
bench_clear_env
bench_install push-bytes curl
SEALCAST_BIN="$GIVEN_BIN" bench_binary
bench_driver
bench_workdir

# run MODE ROUND: one cluster in MODE (assembled or whole), measured; appends a JSON line
# to $WORK/results.jsonl.
run() {
  local mode="$1" round="$2" dir="$WORK/$1-$2" node1 node2 rtmp key
  mkdir -p "$dir"
  bench_latency_config 0.333 src > "$dir/sealcast.toml"
  local whole=()
  [ "$mode" = whole ] && whole=(env SEALCAST_PUSH_WHOLE_SEGMENTS=1)
  "${whole[@]}" "$BIN" up --config "$dir/sealcast.toml" --data-dir "$dir/data" --certs-dir "$dir/certs" \
    --broadcast 2 --rtmp-listen 127.0.0.1:0 --broadcast-listen 127.0.0.1:0 \
    --mqtt-listen 127.0.0.1:0 --https-listen 127.0.0.1:0 --http-listen 127.0.0.1:0 \
    --srt-listen 127.0.0.1:0 --webrtc-listen 127.0.0.1:0 \
    > "$dir/up.out" 2> "$dir/up.err" &
  local up=$!
  PIDS+=("$up")
  bench_wait_for 60 grep -q '^broadcast2 ' "$dir/up.out" || bench_fail push-bytes "sealcast up did not start"
  node1="$(awk '$1 == "broadcast1" {print $2}' "$dir/up.out")"; node1="${node1%/}"
  node2="$(awk '$1 == "broadcast2" {print $2}' "$dir/up.out")"; node2="${node2%/}"
  rtmp="$(awk '$1 == "obs-server" {print $2}' "$dir/up.out")"
  key="$("$BIN" streams add bytes --data-dir "$dir/data" 2>/dev/null | tail -1)"
  SEALCAST_SOURCE_URL="$rtmp/$key" "$BIN" source --size 1280x720 --fps 30 --bitrate 3000 --gop 2 \
    > "$dir/source.out" 2> "$dir/source.err" &
  local source=$!
  PIDS+=("$source")
  bench_wait_for 30 curl -sf "$node1/live/bytes/src/index.m3u8" || bench_fail push-bytes "no playlist in 30 s"
  sleep 10
  curl -sf "$node1/metrics" > "$dir/before-1.txt"
  curl -sf "$node2/metrics" > "$dir/before-2.txt"
  "$DRIVER" sample push-latency "$node1/live/bytes/src/index.m3u8" --seconds "$SECS" > "$dir/latency.json"
  curl -sf "$node1/metrics" > "$dir/after-1.txt"
  curl -sf "$node2/metrics" > "$dir/after-2.txt"
  kill "$source" "$up" 2>/dev/null || true
  wait "$source" "$up" 2>/dev/null || true
  "$DRIVER" sample push-bytes "$dir" "$mode" "$round" --seconds "$SECS" >> "$WORK/results.jsonl"
}

: > "$WORK/results.jsonl"
for round in $(seq 1 "$ROUNDS"); do
  for mode in assembled whole; do
    echo "push-bytes: round $round, $mode" >&2
    run "$mode" "$round"
  done
done

bench_report_docs "${PUSH_BYTES_DOCS-docs/benchmarks.md}"
"$DRIVER" report push-bytes "$WORK/results.jsonl" --seconds "$SECS" --rounds "$ROUNDS" \
  --date "$(date -u +%F)" "${REPORT_DOCS[@]}"
