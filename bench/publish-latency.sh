#!/usr/bin/env bash
# Benchmarks (docs/benchmarks.md), as far as the build allows: how long
# after a segment closes at the ingest it is listed on every broadcast node, how far apart
# the 3 nodes list it, and what the signature gate adds.
#
# `sealcast up --broadcast 3` gets a real-time `sealcast source` publish at 720p30 for
# SECONDS; `sealcast-bench sample publish-latency` polls each node's 720p and src media
# playlists every 10 ms and records when each sequence number first appears on each node.
# The ingest exports no per-segment close time, so the script reports the skew across nodes
# (last − first listing per segment) and the listing jitter against the publisher's
# real-time clock, plus, from the nodes' /metrics, `sealcast_signature_verify_seconds` (mean
# verify time),
# `sealcast_signature_wait_seconds` (bytes arrived → published: the gate's added latency),
# `sealcast_ingest_push_seconds` and `sealcast_ingest_sign_seconds`, and verification time as
# a share of the process CPU. There is no "verification off" switch to compare against.
# Writes bench/out/publish-latency.json and a section in docs/benchmarks.md
# (`sealcast-bench report publish-latency`).
#
# Usage: bench/publish-latency.sh [SECONDS]   (default 60; RENDITIONS=720p,src by default)
# Environment: SEALCAST_BIN, SEALCAST_BENCH (the driver; else the one beside the binary).
set -euo pipefail
GIVEN_BENCH="${SEALCAST_BENCH:+$(realpath "$SEALCAST_BENCH")}"
cd "$(dirname "$0")/.."
source scripts/setup.sh
SECS="${1:-60}"
RENDITIONS="${RENDITIONS:-720p,src}"

source bench/lib.sh
bench_install publish-latency curl
bench_workdir
if [ -n "${SEALCAST_BIN:-}" ]; then BIN="$(realpath "$SEALCAST_BIN")"; else bench_build; fi
bench_driver

"$BIN" up --data-dir "$WORK/data" --broadcast 3 \
  --rtmp-listen 127.0.0.1:0 --srt-listen 127.0.0.1:0 --webrtc-listen 127.0.0.1:0 --broadcast-listen 127.0.0.1:0 --mqtt-listen 127.0.0.1:0 \
  > "$WORK/up.out" 2> "$WORK/up.err" &
UP_PID=$!
PIDS+=("$UP_PID")
for _ in $(seq 1 300); do grep -q '^broadcast3 ' "$WORK/up.out" && break; sleep 0.1; done
grep -q '^broadcast3 ' "$WORK/up.out" || { echo "publish-latency: sealcast up did not start" >&2; tail "$WORK/up.err" >&2; exit 1; }
mapfile -t NODES < <(awk '/^broadcast[0-9]+ /{print $2}' "$WORK/up.out")
RTMP="$(awk '/^obs-server /{print $2}' "$WORK/up.out")"
KEY="$(awk '/^stream-key main /{print $3}' "$WORK/up.out")"
# Every node ready (caught up with the ingest) before the publish starts.
for u in "${NODES[@]}"; do
  for _ in $(seq 1 100); do curl -sf "${u%/}/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
done
sleep 1

"$DRIVER" sample publish-latency --pid "$UP_PID" --renditions "$RENDITIONS" --interval 0.01 \
  --ready "$WORK/ready" --stop "$WORK/stop" \
  --publisher "\`sealcast source\` 1280x720 30 fps 2500 kb/s, 2 s GOP, real time, ${SECS} s" \
  "${NODES[@]}" > "$WORK/raw.json" &
POLL_PID=$!
PIDS+=("$POLL_PID")
for _ in $(seq 1 100); do [ -e "$WORK/ready" ] && break; sleep 0.1; done

echo "publish-latency: publishing ${SECS}s of 720p30 to ${#NODES[@]} nodes" >&2
# The stream key reaches the publisher through its environment, not its arguments.
SEALCAST_SOURCE_URL="$RTMP/$KEY" "$BIN" source --size 1280x720 --fps 30 --duration "$SECS" > "$WORK/source.log" 2>&1
sleep 3 # the last segment: cut on unpublish, pushed, verified
touch "$WORK/stop"
wait "$POLL_PID"
grep -E " (WARN|ERROR) " "$WORK/up.err" | grep -v 'client_id="probe"' | cut -c1-300 | sed 's/^/publish-latency: up: /' >&2 || true

"$DRIVER" report publish-latency "$WORK/raw.json" --date "$(date +%F)"
