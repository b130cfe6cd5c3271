#!/usr/bin/env bash
# What the ingest's low-latency x264 settings cost in quality (issue 17): the same source
# encoded at the same bitrate with the settings of an encoded rung without parts
# (`veryfast`, frame threads, B-frames and lookahead as the preset has them) and with parts
# (the same plus `bframes=0:rc-lookahead=0:sync-lookahead=0:sliced-threads=1`, as
# `ingest::transcode` opens x264 when parts are on). Both keep the ingest's other settings
# (2 s closed GOPs, no scene cuts, VBV maxrate 107 %, buffer 150 %). PSNR and SSIM against
# the source, the bitrate reached, and the encode speed, for each of the ladder's three
# encoded rungs, on a 30 s 720p30 source with motion and detail (ffmpeg's testsrc2 with
# noise). The x264 here is the same library the ingest links.
#
# Writes bench/out/ll-quality.json and a section in docs/benchmarks.md.
#
# Usage: bench/ll-quality.sh [SECONDS]   (default 30)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-30}"
source bench/lib.sh
bench_install ll-quality ffmpeg python3
bench_workdir

ffmpeg -v error -f lavfi -i "testsrc2=size=1280x720:rate=30,noise=alls=12:allf=t" -t "$SECS" \
  -c:v rawvideo -pix_fmt yuv420p "$WORK/source.nut"

: > "$WORK/results.jsonl"
for rung in "720p 720 3000" "480p 480 1200" "360p 360 730"; do
  set -- $rung
  name="$1" height="$2" kbps="$3"
  maxrate=$((kbps * 107 / 100)); bufsize=$((kbps * 3 / 2))
  base="keyint=60:min-keyint=60:scenecut=0:open-gop=0:vbv-maxrate=$maxrate:vbv-bufsize=$bufsize"
  for mode in plain ll; do
    params="$base"
    [ "$mode" = ll ] && params="$base:bframes=0:rc-lookahead=0:sync-lookahead=0:sliced-threads=1"
    out="$WORK/$name-$mode.mp4"
    start=$(date +%s.%N)
    ffmpeg -v error -y -i "$WORK/source.nut" -vf "scale=-2:$height" -c:v libx264 -preset veryfast \
      -b:v "${kbps}k" -x264-params "$params" -an "$out"
    secs=$(python3 -c "import time; print(time.time() - $start)")
    metrics=$(ffmpeg -v info -i "$out" -i "$WORK/source.nut" -lavfi \
      "[0:v]split[a][b];[1:v]scale=-2:$height,split[r1][r2];[a][r1]psnr;[b][r2]ssim" -f null - 2>&1 >/dev/null \
      | grep -E "Parsed_(psnr|ssim)" | tr '\n' ' ')
    python3 "$BENCH_DIR/lib/reports/ll_quality.py" measure "$name" "$mode" "$kbps" "$out" "$secs" "$SECS" "$metrics" >> "$WORK/results.jsonl"
  done
done

mkdir -p bench/out
python3 "$BENCH_DIR/lib/reports/ll_quality.py" report "$WORK/results.jsonl" "$SECS"
