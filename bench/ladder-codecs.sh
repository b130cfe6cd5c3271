#!/usr/bin/env bash
# Ladder CPU for a 1080p60 HEVC and a 1080p60 AV1 source on this machine (issue 32): does
# the ingest keep real time with the default ladder (src passed through, 720p, 480p and
# 360p encoded by x264), or shed rungs visibly (sealcast_ingest_rungs_shed, the
# dashboard's realtime factor) without stalling the stream?
#
# FFmpeg 9 (PyPI's imageio-ffmpeg, as scripts/setup.sh test installs it) first encodes
# SECONDS of a 1920x1080 60 fps test pattern with a 1 kHz tone once per codec, ahead of
# time (x265 `ultrafast` at 8 Mb/s; SVT-AV1 preset 10 at 6 Mb/s; a keyframe every 2 s,
# no scene cuts, Opus audio), so that no encoder of the publisher competes with the ingest
# during the measurement; then, for each codec in turn, publishes that file in real time
# over Enhanced RTMP (`-re -c copy -f flv`) to `sealcast up` (default ladder, 2 broadcast
# nodes). Every 2 s it samples the CPU of `sealcast up` and, from a node's /metrics, each
# rung's realtime factor, the pipeline's lag and the rungs shed. At the end it reads the
# src rung's playlist: its segments must cover the publish without a gap (the stream never
# stalls, whatever was shed).
#
# Writes bench/out/ladder-codecs.json and its section of docs/benchmarks.md (`sealcast-bench
# sample ladder-codecs` and `report ladder-codecs`).
#
# Usage: bench/ladder-codecs.sh [SECONDS] [CODECS]   (defaults 60 and "hevc av1")
set -euo pipefail
[ -z "${SEALCAST_BIN:-}" ] || SEALCAST_BIN="$(realpath -m "$SEALCAST_BIN")"
GIVEN_BENCH="${SEALCAST_BENCH:+$(realpath "$SEALCAST_BENCH")}"
cd "$(dirname "$0")/.."
source scripts/setup.sh test
SECS="${1:-60}"
CODECS="${2:-hevc av1}"

source bench/lib.sh
bench_clear_env
bench_install ladder-codecs curl
bench_workdir
bench_binary
bench_driver
FFMPEG9="${SEALCAST_TEST_FFMPEG9:-$("${SEALCAST_KUBERNETES_TOOLS:-$HOME/.cache/sealcast/kubernetes-tools}/bin/python" -c 'import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())')}"
[ -x "$FFMPEG9" ] || { echo "ladder-codecs: no FFmpeg 9 (run scripts/setup.sh test)" >&2; exit 1; }

for codec in $CODECS; do
  case "$codec" in
    hevc) video=(-c:v libx265 -preset ultrafast -b:v 8M -x265-params "keyint=120:min-keyint=120:scenecut=0:log-level=error") ;;
    av1) video=(-c:v libsvtav1 -preset 10 -b:v 6M -g 120 -svtav1-params "scd=0") ;;
    *) echo "ladder-codecs: unknown codec $codec (hevc, av1)" >&2; exit 1 ;;
  esac
  echo "ladder-codecs: encoding ${SECS}s of 1080p60 $codec ahead of time" >&2
  "$FFMPEG9" -hide_banner -loglevel error -nostdin -y \
    -f lavfi -i "testsrc2=size=1920x1080:rate=60" -f lavfi -i "sine=frequency=1000:sample_rate=48000" \
    -t "$SECS" -pix_fmt yuv420p "${video[@]}" -c:a libopus -b:a 128k -f flv "$WORK/$codec.flv" 2> "$WORK/encode-$codec.err"
done

dir="$WORK/cluster"
mkdir -p "$dir"
printf '[ingest]\nend_grace_seconds = 2.0\n' > "$dir/sealcast.toml"
"$BIN" up --config "$dir/sealcast.toml" --data-dir "$dir/data" --certs-dir "$dir/certs" \
  --broadcast 2 --rtmp-listen 127.0.0.1:0 --broadcast-listen 127.0.0.1:0 \
  --mqtt-listen 127.0.0.1:0 --https-listen 127.0.0.1:0 --http-listen 127.0.0.1:0 \
  --srt-listen 127.0.0.1:0 --webrtc-listen 127.0.0.1:0 \
  > "$dir/up.out" 2> "$dir/up.err" &
UP=$!
PIDS+=("$UP")
for _ in $(seq 1 600); do grep -q '^broadcast2 ' "$dir/up.out" && break; sleep 0.1; done
grep -q '^broadcast2 ' "$dir/up.out" || { echo "ladder-codecs: sealcast up did not start" >&2; tail "$dir/up.err" >&2; exit 1; }
OBS="$(awk '$1 == "obs-server" {print $2}' "$dir/up.out" | head -1)"
NODE="$(awk '$1 == "broadcast1" {print $2}' "$dir/up.out" | head -1)"
KEY="$(awk '/^stream-key main /{print $3}' "$dir/up.out" | head -1)"
TICK="$(getconf CLK_TCK)"

: > "$WORK/samples.jsonl"
for codec in $CODECS; do
  echo "ladder-codecs: publishing 1080p60 $codec over E-RTMP for ${SECS}s" >&2
  "$FFMPEG9" -hide_banner -loglevel error -nostdin -re -i "$WORK/$codec.flv" -c copy \
    -f flv "$OBS/$KEY" > "$WORK/publish-$codec.log" 2>&1 &
  PUB=$!
  PIDS+=("$PUB")
  start=$(date +%s.%N)
  before=$(cpu_ticks "$UP")
  while kill -0 "$PUB" 2>/dev/null; do
    sleep 2
    now=$(date +%s.%N)
    ticks=$(cpu_ticks "$UP")
    curl -sf "${NODE%/}/metrics" > "$WORK/metrics.txt" || : > "$WORK/metrics.txt"
    "$DRIVER" sample ladder-codecs "$codec" "$start" "$now" "$before" "$ticks" "$TICK" "$WORK/metrics.txt" >> "$WORK/samples.jsonl"
  done
  wait "$PUB" || echo "ladder-codecs: the $codec publisher exited with an error: $(tail -c 400 "$WORK/publish-$codec.log")" >&2
  # The src playlist once the stream ended (grace 2 s): what it covered, and any gap.
  sleep 4
  curl -sf --cacert "$dir/certs/ca.pem" "${NODE%/}/live/main/src/index.m3u8" > "$WORK/src-$codec.m3u8" || : > "$WORK/src-$codec.m3u8"
  curl -sf --cacert "$dir/certs/ca.pem" "${NODE%/}/live/main/master.m3u8" > "$WORK/master-$codec.m3u8" || : > "$WORK/master-$codec.m3u8"
  sleep 4
done

# shellcheck disable=SC2086 # CODECS is a list
"$DRIVER" report ladder-codecs "$WORK" --seconds "$SECS" $CODECS
