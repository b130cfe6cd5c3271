#!/usr/bin/env bash
# Issue 49: disk per recorded hour, and where it is. A fresh `sealcast up` with NODES
# broadcast nodes and the default ladder's shape (the source rung, 720p, 480p and 360p
# x264, CMAF, 2 s segments, 0.333 s parts) records a 720p30 `sealcast source` (3000 kb/s)
# for SECONDS into its local archive (the default: `archive` in the data directory); then,
# once the recording is listed and the spool has drained, `du` gives the archive's bytes,
# the spool's and every other node directory's. Per recorded hour is the archive's bytes
# over the recording's duration; before issue 49 every node kept its own copy, NODES times
# that. Writes bench/out/archive-disk.json and a section in docs/benchmarks.md
# (ARCHIVE_DISK_DOCS= skips it; `sealcast-bench sample archive-recording`, `sample
# archive-disk` and `report archive-disk`).
# SEALCAST_BIN picks the binary (else the release build), SEALCAST_BENCH the driver (else
# the release build's).
#
# Usage: bench/archive-disk.sh [SECONDS] [NODES]   (defaults 120 and 3)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-120}"
NODES="${2:-3}"
GIVEN_BIN="${SEALCAST_BIN:+$(realpath "$SEALCAST_BIN")}"
GIVEN_BENCH="${SEALCAST_BENCH:+$(realpath "$SEALCAST_BENCH")}"
source bench/lib.sh
bench_clear_env
bench_install archive-disk curl
SEALCAST_BIN="$GIVEN_BIN" bench_binary
bench_driver
bench_workdir

dir="$WORK/up"
mkdir -p "$dir"
bench_latency_config 0.333 full > "$dir/sealcast.toml"
"$BIN" up --config "$dir/sealcast.toml" --data-dir "$dir/data" --certs-dir "$dir/certs" \
  --broadcast "$NODES" --rtmp-listen 127.0.0.1:0 --broadcast-listen 127.0.0.1:0 \
  --mqtt-listen 127.0.0.1:0 --https-listen 127.0.0.1:0 --http-listen 127.0.0.1:0 \
  --srt-listen 127.0.0.1:0 --webrtc-listen 127.0.0.1:0 \
  > "$dir/up.out" 2> "$dir/up.err" &
PIDS+=("$!")
bench_wait_for 90 grep -q "^broadcast$NODES " "$dir/up.out" || bench_fail archive-disk "sealcast up did not start"
node1="$(awk '$1 == "broadcast1" {print $2}' "$dir/up.out")"; node1="${node1%/}"
rtmp="$(awk '$1 == "obs-server" {print $2}' "$dir/up.out")"
key="$("$BIN" streams add disk --data-dir "$dir/data" 2>/dev/null | tail -1)"
echo "archive-disk: recording $SECS s on $NODES nodes" >&2
SEALCAST_SOURCE_URL="$rtmp/$key" "$BIN" source --size 1280x720 --fps 30 --bitrate 3000 --gop 2 \
  --duration "$SECS" > "$dir/source.out" 2> "$dir/source.err" \
  || bench_fail archive-disk "sealcast source failed"
"$DRIVER" sample archive-recording "$node1" disk --within 300 > "$dir/recording.json" \
  || bench_fail archive-disk "the recording was not archived within 300 s"
"$DRIVER" sample archive-disk "$dir" --nodes "$NODES" --seconds "$SECS" > "$WORK/result.json"
bench_report_docs "${ARCHIVE_DISK_DOCS-docs/benchmarks.md}"
"$DRIVER" report archive-disk "$WORK/result.json" --date "$(date +%F)" "${REPORT_DOCS[@]}"
