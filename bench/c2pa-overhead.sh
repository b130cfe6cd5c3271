#!/usr/bin/env bash
# Issue 47: what C2PA live video (docs/provenance.md) costs a viewer in bytes, beside what
# our own statements cost. One `sealcast up` (one ingest, one broadcast node, the default
# ladder: src, 720p, 480p, 360p; CMAF, 2 s segments, 0.333 s parts) with `sealcast source`
# publishing 720p30 at 3000 kb/s over RTMP; after a 10 s settle, a client follows every
# rung's media playlist for SECONDS and fetches each new part and segment once with its
# statement (`.sig`), as a viewer of parts and a viewer of segments would, and each init
# segment. Per rung:
#   - a parts viewer's C2PA bytes: the VSI `emsg` boxes at the front of each part, as a
#     share of the parts' bytes; a segments viewer's: every VSI in each segment (its own
#     and its parts'), as a share of the segments' bytes;
#   - the statements' share (the `.sig` sidecars a viewer fetches beside them);
#   - the init segment's size and its C2PA `uuid` box.
# Writes bench/out/c2pa-overhead.json and a section in docs/benchmarks.md
# (C2PA_OVERHEAD_DOCS= skips it; `sealcast-bench sample c2pa-overhead` and `report
# c2pa-overhead`). SEALCAST_BIN picks the binary (else the release build), SEALCAST_BENCH
# the driver.
#
# Usage: bench/c2pa-overhead.sh [SECONDS]   (default 30)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-30}"
GIVEN_BIN="${SEALCAST_BIN:+$(realpath "$SEALCAST_BIN")}"
GIVEN_BENCH="${SEALCAST_BENCH:+$(realpath "$SEALCAST_BENCH")}"
source bench/lib.sh
bench_clear_env
bench_install c2pa-overhead curl
SEALCAST_BIN="$GIVEN_BIN" bench_binary
bench_driver
bench_workdir

dir="$WORK/run"
mkdir -p "$dir"
bench_latency_config 0.333 full > "$dir/sealcast.toml"
"$BIN" up --config "$dir/sealcast.toml" --data-dir "$dir/data" --certs-dir "$dir/certs" \
  --broadcast 1 --rtmp-listen 127.0.0.1:0 --broadcast-listen 127.0.0.1:0 \
  --mqtt-listen 127.0.0.1:0 --https-listen 127.0.0.1:0 --http-listen 127.0.0.1:0 \
  --srt-listen 127.0.0.1:0 --webrtc-listen 127.0.0.1:0 \
  > "$dir/up.out" 2> "$dir/up.err" &
PIDS+=("$!")
bench_wait_for 60 grep -q '^broadcast1 ' "$dir/up.out" || die "sealcast up did not start"
node="$(awk '$1 == "broadcast1" {print $2}' "$dir/up.out")"; node="${node%/}"
rtmp="$(awk '$1 == "obs-server" {print $2}' "$dir/up.out")"
key="$("$BIN" streams add bytes --data-dir "$dir/data" 2>/dev/null | tail -1)"
SEALCAST_SOURCE_URL="$rtmp/$key" "$BIN" source --size 1280x720 --fps 30 --bitrate 3000 --gop 2 \
  > "$dir/source.out" 2> "$dir/source.err" &
PIDS+=("$!")
bench_wait_for 30 curl -sf "$node/live/bytes/360p/index.m3u8" || die "no playlist in 30 s"
sleep 10
"$DRIVER" sample c2pa-overhead "$node/live/bytes" --seconds "$SECS" > "$dir/measure.json"
bench_report_docs "${C2PA_OVERHEAD_DOCS-docs/benchmarks.md}"
"$DRIVER" report c2pa-overhead "$dir/measure.json" --seconds "$SECS" --date "$(date +%F)" \
  "${REPORT_DOCS[@]}"
