#!/usr/bin/env bash
# Issue 49's goal: seeking back in a live stream plays within 1 s in Chromium. A fresh
# `sealcast up` (one broadcast node, the source rung only, CMAF, 2 s segments, a 30-minute
# time-shift window) gets an 854x480 30 fps `sealcast source` over RTMP; the peer gets the
# same pattern from a second `sealcast source`, packaged by FFmpeg's hls muxer (2 s fMP4
# segments, a 30-minute sliding playlist) and served as files by nginx with a page running
# the same hls.js (bench/peers/dvr/index.html). Once both windows hold BACK seconds and a
# margin, bench/viewers' `sealcast-dvr-seek` plays each live in a fresh headless Chromium
# and goes BACK seconds behind live, ROUNDS times interleaved, timing from the request to
# playing media. Ours verifies every fragment it plays; the peer checks nothing.
#
# Writes bench/out/dvr-seek.json and a section in docs/benchmarks.md (DVR_SEEK_DOCS= skips
# it). SEALCAST_BIN picks the binary (else the release build; `sealcast-dvr-seek` is taken
# from beside it), SEALCAST_BENCH the doc driver.
#
# Usage: bench/dvr-seek.sh [BACK] [ROUNDS]   (defaults 600 and 6)
set -euo pipefail
cd "$(dirname "$0")/.."
BACK="${1:-600}"
ROUNDS="${2:-6}"
GIVEN_BIN="${SEALCAST_BIN:+$(realpath "$SEALCAST_BIN")}"
GIVEN_BENCH="${SEALCAST_BENCH:+$(realpath "$SEALCAST_BENCH")}"
source bench/lib.sh
bench_clear_env
bench_install dvr-seek chromium chromium-driver curl ffmpeg nginx
SEALCAST_BIN="$GIVEN_BIN" bench_binary
bench_tool sealcast-dvr-seek
SEEK="$TOOL"
bench_driver
bench_tmpfs_workdir dvr-seek
PUBLISH=$((BACK + 600))

dir="$WORK/up"
mkdir -p "$dir"
bench_latency_config 0.333 src > "$dir/sealcast.toml"
"$BIN" up --config "$dir/sealcast.toml" --data-dir "$dir/data" --certs-dir "$dir/certs" \
  --broadcast 1 --dvr-window 30m --rtmp-listen 127.0.0.1:0 --broadcast-listen 127.0.0.1:0 \
  --mqtt-listen 127.0.0.1:0 --https-listen 127.0.0.1:0 --http-listen 127.0.0.1:0 \
  --srt-listen 127.0.0.1:0 --webrtc-listen 127.0.0.1:0 \
  > "$dir/up.out" 2> "$WORK/up.err" &
PIDS+=("$!")
bench_wait_for 90 grep -q '^broadcast1 ' "$dir/up.out" || die "sealcast up did not start"
ORIGIN="$(awk '$1 == "player" {print $2}' "$dir/up.out" | head -1)"; ORIGIN="${ORIGIN%/}"
NODE="$(awk '$1 == "broadcast1" {print $2}' "$dir/up.out")"; NODE="${NODE%/}"
RTMP="$(awk '$1 == "obs-server" {print $2}' "$dir/up.out" | head -1)"
key="$("$BIN" streams add dvr --data-dir "$dir/data" 2>/dev/null | tail -1)"
[ -n "$key" ] || die "no stream key"
SEALCAST_SOURCE_URL="$RTMP/$key" "$BIN" source --size 854x480 --fps 30 --bitrate 1200 --gop 2 \
  --duration "$PUBLISH" > "$WORK/ours-source.out" 2> "$WORK/ours-source.err" &
PIDS+=("$!")

# The peer: the same pattern, packaged by FFmpeg, served by nginx.
ROOT="$WORK/peer"
mkdir -p "$ROOT/hls"
cp bench/peers/dvr/index.html "$ROOT/index.html"
cp web/vendor/hls.js-1.7.4/hls.min.js "$ROOT/hls.min.js"
fifo="$WORK/peer.flv"
mkfifo "$fifo"
"$BIN" source --output "$fifo" --size 854x480 --fps 30 --bitrate 1200 --gop 2 \
  --duration "$PUBLISH" > "$WORK/peer-source.out" 2> "$WORK/peer-source.err" &
PIDS+=("$!")
ffmpeg -hide_banner -loglevel warning -nostdin -f flv -i "$fifo" -c copy -f hls \
  -hls_time 2 -hls_list_size 900 -hls_segment_type fmp4 \
  -hls_flags delete_segments+independent_segments+temp_file "$ROOT/hls/index.m3u8" \
  > "$WORK/peer-hls.out" 2> "$WORK/peer-hls.err" &
PIDS+=("$!")
PORT="$(free_port)"
bench_nginx_conf "$WORK/nginx" "$PORT" "$ROOT" 4096
nginx -c "$WORK/nginx/nginx.conf" > "$WORK/nginx.out" 2> "$WORK/nginx.err" &
PIDS+=("$!")

echo "dvr-seek: waiting until both windows hold $((BACK + 30)) s" >&2
window_ours() {
  curl -sf "$NODE/api/v1/streams" | "$DRIVER" check dvr-window dvr --at-least "$1"
}
window_peer() {
  "$DRIVER" check playlist-seconds "$ROOT/hls/index.m3u8" --at-least "$1"
}
bench_wait_for $((BACK + 300)) window_ours $((BACK + 30)) || die "our time-shift window never held $((BACK + 30)) s"
bench_wait_for 120 window_peer $((BACK + 30)) || die "the peer's playlist never held $((BACK + 30)) s"

echo "dvr-seek: $ROUNDS rounds, $BACK s back" >&2
"$SEEK" "$ORIGIN" dvr --peer "http://127.0.0.1:$PORT/index.html" --back "$BACK" --rounds "$ROUNDS" \
  > "$WORK/result.json" 2> "$WORK/seek.err" || die "sealcast-dvr-seek failed"
bench_report_docs "${DVR_SEEK_DOCS-docs/benchmarks.md}"
"$DRIVER" report dvr-seek "$WORK/result.json" --back "$BACK" --rounds "$ROUNDS" \
  --date "$(date +%F)" "${REPORT_DOCS[@]}"
