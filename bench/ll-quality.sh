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
# Writes bench/out/ll-quality.json and a section in docs/benchmarks.md (`sealcast-bench
# report ll-quality`).
#
# Usage: bench/ll-quality.sh [SECONDS]   (default 30)
# Environment: SEALCAST_BENCH (else the release build's).
set -euo pipefail
GIVEN_BENCH="${SEALCAST_BENCH:+$(realpath "$SEALCAST_BENCH")}"
cd "$(dirname "$0")/.."
SECS="${1:-30}"
source bench/lib.sh
[[ "$SECS" =~ ^[1-9][0-9]*$ ]] || die "usage: bench/ll-quality.sh [SECONDS]"
bench_install ll-quality ffmpeg
bench_driver
bench_workdir

ffmpeg -v error -f lavfi -i "testsrc2=size=1280x720:rate=30,noise=alls=12:allf=t" -t "$SECS" \
  -c:v rawvideo -pix_fmt yuv420p "$WORK/source.nut"

: > "$WORK/encodes.tsv"
for rung in "720p 720 3000" "480p 480 1200" "360p 360 730"; do
  set -- $rung
  name="$1" height="$2" kbps="$3"
  maxrate=$((kbps * 107 / 100)); bufsize=$((kbps * 3 / 2))
  base="keyint=60:min-keyint=60:scenecut=0:open-gop=0:vbv-maxrate=$maxrate:vbv-bufsize=$bufsize"
  for mode in plain ll; do
    params="$base"
    [ "$mode" = ll ] && params="$base:bframes=0:rc-lookahead=0:sync-lookahead=0:sliced-threads=1"
    out="$WORK/$name-$mode.mp4"
    start=$(date +%s%N)
    ffmpeg -v error -y -i "$WORK/source.nut" -vf "scale=-2:$height" -c:v libx264 -preset veryfast \
      -b:v "${kbps}k" -x264-params "$params" -an "$out"
    nanos=$(($(date +%s%N) - start))
    metrics=$(ffmpeg -v info -i "$out" -i "$WORK/source.nut" -lavfi \
      "[0:v]split[a][b];[1:v]scale=-2:$height,split[r1][r2];[a][r1]psnr;[b][r2]ssim" -f null - 2>&1 >/dev/null \
      | grep -E "Parsed_(psnr|ssim)" | tr '\n' ' ')
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$mode" "$kbps" "$(stat -c %s "$out")" "$nanos" "$metrics" >> "$WORK/encodes.tsv"
  done
done

"$DRIVER" report ll-quality "$WORK/encodes.tsv" --seconds "$SECS"
