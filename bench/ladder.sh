#!/usr/bin/env bash
# Benchmark (docs/benchmarks.md): the ingest ladder transcoder vs the ffmpeg CLI.
#
# The same 60 s OBS-like 720p30 FLV (H.264 with B-frames, 2 s GOP, AAC) goes through
# `sealcast ladder` and through `ffmpeg -filter_complex split/scale` with the same settings,
# run as fast as possible, interleaved A B A B:
#   - both write CMAF (fMP4 init + .m4s segments), 2 s segments, a passthrough `src` rung,
#     audio copied, frames passed through as they come (no frame-rate conversion);
#   - the encoded rungs: x264 `veryfast`, 2 s closed GOPs without scene cuts, the same
#     bitrate / maxrate / bufsize (VBV) per rung, bicubic scaling;
#   - by default sealcast runs its shipping ladder (CMAF with LL-HLS parts), where x264 runs
#     without B-frames or lookahead and with slice threads (what `tune=zerolatency` sets), and
#     ffmpeg is given the same x264 parameters; LADDER_PARTS=0 runs the ladder without parts
#     (sealcast.example.toml with `part_target = 0`) and ffmpeg with x264's own defaults.
# Checked, from the first run's outputs: each encoded rung's PSNR against the source scaled to
# the rung's size (frames paired by index) within 0.1 dB of ffmpeg's, and its bitrate within
# 5 %; otherwise the comparison is not like for like and the script says so and fails.
# Reports CPU-seconds and wall-time ratios (ffmpeg / ours, > 1 means we are ahead), with an
# A/A ratio of ffmpeg against itself as the noise floor. Writes bench/out/ladder.json and
# its section of docs/benchmarks.md (`sealcast-bench report ladder`).
#
# Usage: bench/ladder.sh [RUNS]   (default 5)
# Environment: LADDER_PARTS=0   the ladder without LL-HLS parts (and x264 defaults on both sides);
#   SEALCAST_BIN=path   a prebuilt sealcast binary instead of `cargo build --release`;
#   SEALCAST_BENCH=path the report's sealcast-bench (default: the one beside SEALCAST_BIN)
set -euo pipefail
[ -z "${SEALCAST_BIN:-}" ] || SEALCAST_BIN="$(realpath -m "$SEALCAST_BIN")"
GIVEN_BENCH="${SEALCAST_BENCH:+$(realpath "$SEALCAST_BENCH")}"
cd "$(dirname "$0")/.."
source scripts/setup.sh
RUNS="${1:-5}"
PARTS="${LADDER_PARTS:-1}"

source bench/lib.sh
bench_install ladder ffmpeg
bench_workdir
bench_binary
bench_driver
FIXTURE="$WORK/fixture.flv"
"$BIN" source --output "$FIXTURE" --size 1280x720 --fps 30 --bitrate 4000 --gop 2 --duration 60 --fast >&2

OURS_ARGS=()
X264_PARAMS="bframes=0:rc-lookahead=0:sync-lookahead=0:sliced-threads=1"
if [ "$PARTS" = 0 ]; then
  sed 's/^part_target = .*/part_target = 0/' sealcast.example.toml > "$WORK/plain.toml"
  grep -q '^part_target = 0$' "$WORK/plain.toml" || die "sealcast.example.toml has no part_target to turn off"
  OURS_ARGS=(--config "$WORK/plain.toml")
  X264_PARAMS=""
fi

run_ours() { # out_dir → "wall user sys"
  /usr/bin/time -f "%e %U %S" -o "$WORK/time" env -u SEALCAST_CONFIG "$BIN" ladder "${OURS_ARGS[@]}" --input "$FIXTURE" --output "$1" > "$1.report" 2> "$1.err" \
    || { tail -5 "$1.err" >&2; die "sealcast ladder failed"; }
  cat "$WORK/time"
}

run_ffmpeg() {
  mkdir -p "$1"
  /usr/bin/time -f "%e %U %S" -o "$WORK/time" ffmpeg -hide_banner -loglevel error -nostdin -y -i "$FIXTURE" \
    -filter_complex "[0:v]split=3[a][b][c];[a]scale=1280:720:flags=bicubic[v720];[b]scale=854:480:flags=bicubic[v480];[c]scale=640:360:flags=bicubic[v360]" \
    -map 0:v -map "[v720]" -map "[v480]" -map "[v360]" -map 0:a -map 0:a -map 0:a -map 0:a \
    -c:v:0 copy \
    -c:v:1 libx264 -b:v:1 3000k -maxrate:v:1 3210k -bufsize:v:1 4500k \
    -c:v:2 libx264 -b:v:2 1200k -maxrate:v:2 1284k -bufsize:v:2 1800k \
    -c:v:3 libx264 -b:v:3 730k -maxrate:v:3 781k -bufsize:v:3 1095k \
    -preset veryfast -g 60 -keyint_min 60 -sc_threshold 0 -flags +cgop -pix_fmt yuv420p -fps_mode passthrough \
    ${X264_PARAMS:+-x264-params "$X264_PARAMS"} \
    -c:a copy \
    -f hls -hls_time 2 -hls_playlist_type vod -hls_segment_type fmp4 \
    -hls_fmp4_init_filename "%v_init.mp4" -hls_segment_filename "$1/%v_%d.m4s" \
    -var_stream_map "v:0,a:0,name:src v:1,a:1,name:720p v:2,a:2,name:480p v:3,a:3,name:360p" \
    -master_pl_name master.m3u8 "$1/%v.m3u8"
  cat "$WORK/time"
}

: > "$WORK/runs"
for i in $(seq 1 "$RUNS"); do
  echo "ladder: run $i/$RUNS" >&2
  echo "ours $(run_ours "$WORK/ours$i")" >> "$WORK/runs"
  echo "ffmpeg $(run_ffmpeg "$WORK/ff$i")" >> "$WORK/runs"
done

# --- like for like? bitrate and PSNR per rung, from run 1 ---------------------------------
# One fMP4 file per rung: the init segment and the media segments in order.
join_rung() { # DIR INIT PREFIX OUT
  { cat "$2"; find "$1" -maxdepth 1 -name "$3[0-9]*.m4s" -printf '%f\n' | sort -V | sed "s#^#$1/#" | xargs cat; } > "$4"
}
# Frames paired by index: the outputs' timestamps lie on a 1/30 s grid, the FLV's are whole
# milliseconds, so pairing by time would compare neighbours.
psnr() { # FILE WIDTH HEIGHT → average PSNR (dB) against the source scaled bicubic
  local grid="settb=1/90000,setpts=N*3000"
  ffmpeg -hide_banner -nostdin -i "$1" -i "$FIXTURE" \
    -lavfi "[0:v]$grid[d];[1:v]scale=$2:$3:flags=bicubic,$grid[r];[d][r]psnr" -f null - 2>&1 \
    | sed -n 's/.*PSNR .*average:\([0-9.]*\).*/\1/p' | tail -1
}
: > "$WORK/quality"
for rung in 720p:1280:720 480p:854:480 360p:640:360; do
  IFS=: read -r name w h <<< "$rung"
  join_rung "$WORK/ours1/$name" "$WORK/ours1/$name/init.mp4" "" "$WORK/ours.$name.mp4"
  join_rung "$WORK/ff1" "$WORK/ff1/${name}_init.mp4" "${name}_" "$WORK/ff.$name.mp4"
  for side in ours ff; do
    size="$(ffprobe -v error -select_streams v -show_entries stream=width,height -of csv=p=0 "$WORK/$side.$name.mp4")"
    [ "$size" = "$w,$h" ] || die "$side's $name is $size, not $w,$h"
    echo "$side $name $(psnr "$WORK/$side.$name.mp4" "$w" "$h")" >> "$WORK/quality"
  done
done

"$DRIVER" report ladder "$WORK" --runs "$RUNS" --parts "$PARTS" --x264 "$X264_PARAMS" --date "$(date +%F)"
