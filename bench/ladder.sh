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
# its section of docs/benchmarks.md.
#
# Usage: bench/ladder.sh [RUNS]   (default 5)
# Environment: LADDER_PARTS=0   the ladder without LL-HLS parts (and x264 defaults on both sides);
#   SEALCAST_BIN=path   a prebuilt sealcast binary instead of `cargo build --release`
set -euo pipefail
[ -z "${SEALCAST_BIN:-}" ] || SEALCAST_BIN="$(realpath -m "$SEALCAST_BIN")"
cd "$(dirname "$0")/.."
source scripts/setup.sh
RUNS="${1:-5}"
PARTS="${LADDER_PARTS:-1}"

source bench/lib.sh
bench_install ladder ffmpeg
bench_workdir
bench_binary
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

python3 - "$WORK" "$RUNS" "$PARTS" "$X264_PARAMS" <<'PY'
import json, os, sys, glob, datetime
sys.dont_write_bytecode = True; sys.path.insert(0, "bench"); from docsection import put; from lib.stats import spread
work, runs, parts, x264 = sys.argv[1], int(sys.argv[2]), sys.argv[3] != "0", sys.argv[4]
rows = [l.split() for l in open(os.path.join(work, "runs"))]
ours = [(float(w), float(u) + float(s)) for k, w, u, s in rows if k == "ours"]
ff = [(float(w), float(u) + float(s)) for k, w, u, s in rows if k == "ffmpeg"]
stat = spread
cpu_ratio = [f[1] / o[1] for f, o in zip(ff, ours)]
wall_ratio = [f[0] / o[0] for f, o in zip(ff, ours)]
aa_cpu = [ff[i][1] / ff[i + 1][1] for i in range(len(ff) - 1)] or [1.0]
aa_wall = [ff[i][0] / ff[i + 1][0] for i in range(len(ff) - 1)] or [1.0]

RUNGS = ["src", "720p", "480p", "360p"]
def rung_stats(files_by_rung):
    out = {}
    for rung, (init, segments) in files_by_rung.items():
        size = sum(os.path.getsize(f) for f in segments + init)
        out[rung] = {"segments": len(segments), "kbps": size * 8 / 60 / 1000}
    return out
ours_files = {r: (glob.glob(os.path.join(work, "ours1", r, "init.mp4")), glob.glob(os.path.join(work, "ours1", r, "*.m4s"))) for r in RUNGS}
ff_files = {r: (glob.glob(os.path.join(work, "ff1", f"{r}_init.mp4")), glob.glob(os.path.join(work, "ff1", f"{r}_*.m4s"))) for r in RUNGS}
rungs = {"sealcast": rung_stats(ours_files), "ffmpeg": rung_stats(ff_files)}
psnr = {}
for line in open(os.path.join(work, "quality")):
    side, rung, value = (line.split() + [""])[:3]
    psnr.setdefault(rung, {})["sealcast" if side == "ours" else "ffmpeg"] = float(value) if value else None
checks = {}
for rung in RUNGS:
    o, f = rungs["sealcast"][rung], rungs["ffmpeg"][rung]
    c = {"kbps_ratio": o["kbps"] / f["kbps"] if f["kbps"] else None}
    c["kbps_ok"] = c["kbps_ratio"] is not None and abs(c["kbps_ratio"] - 1) <= 0.05
    if rung in psnr:
        p = psnr[rung]
        c["psnr_db"] = p
        c["psnr_delta_db"] = p["sealcast"] - p["ffmpeg"] if None not in p.values() else None
        c["psnr_ok"] = c["psnr_delta_db"] is not None and abs(c["psnr_delta_db"]) <= 0.1
    checks[rung] = c
like_for_like = all(c["kbps_ok"] and c.get("psnr_ok", True) for c in checks.values())
result = {
    "benchmark": "ladder transcode, 60 s 720p30 H.264+AAC FLV, as fast as possible",
    "date": datetime.date.today().isoformat(),
    "runs": runs,
    "ll_hls_parts": parts,
    "x264_params_both": x264,
    "cpu_seconds": {"sealcast": stat([o[1] for o in ours]), "ffmpeg": stat([f[1] for f in ff])},
    "wall_seconds": {"sealcast": stat([o[0] for o in ours]), "ffmpeg": stat([f[0] for f in ff])},
    "ratio_ffmpeg_over_ours": {"cpu": stat(cpu_ratio), "wall": stat(wall_ratio)},
    "noise_floor_ffmpeg_aa": {"cpu": stat(aa_cpu), "wall": stat(aa_wall)},
    "rungs": rungs,
    "checks": checks,
    "like_for_like": like_for_like,
}
os.makedirs("bench/out", exist_ok=True)
name = "bench/out/ladder.json" if parts else "bench/out/ladder-plain.json"
json.dump(result, open(name, "w"), indent=2)
r = result
rc, rw = r["ratio_ffmpeg_over_ours"]["cpu"], r["ratio_ffmpeg_over_ours"]["wall"]
mode = ("sealcast's default ladder (CMAF with LL-HLS parts: x264 without B-frames or lookahead, slice threads), "
        f"ffmpeg given the same x264 parameters (`{x264}`)" if parts else
        "the ladder without LL-HLS parts (`part_target = 0`): x264's own `veryfast` settings on both sides")
title = "## Ladder transcode (bench/ladder.sh)" if parts else "## Ladder transcode without parts (LADDER_PARTS=0 bench/ladder.sh)"
table = [
    title, "",
    f"60 s 720p30 FLV → src + 720p/480p/360p, CMAF (fMP4) on both sides, x264 veryfast, 2 s closed GOPs, VBV, "
    f"bicubic scaling, frames passed through; {mode}. {runs} interleaved runs, {r['date']}, median (min–max).", "",
    "| | sealcast | ffmpeg | ratio ffmpeg/ours | A/A noise | goal |",
    "|---|---|---|---|---|---|",
    f"| CPU-seconds | {r['cpu_seconds']['sealcast']['median']:.1f} | {r['cpu_seconds']['ffmpeg']['median']:.1f} | {rc['median']:.2f} ({rc['min']:.2f}–{rc['max']:.2f}) | {r['noise_floor_ffmpeg_aa']['cpu']['median']:.2f} | ≥ 1.0 ({'met' if rc['median'] >= 1.0 else 'NOT met'}: {rc['median']:.3f}) |",
    f"| wall seconds | {r['wall_seconds']['sealcast']['median']:.1f} | {r['wall_seconds']['ffmpeg']['median']:.1f} | {rw['median']:.2f} ({rw['min']:.2f}–{rw['max']:.2f}) | {r['noise_floor_ffmpeg_aa']['wall']['median']:.2f} | ≥ 1.3 ({'met' if rw['median'] >= 1.3 else 'NOT met'}: {rw['median']:.3f}) |",
    "",
    "Like for like (run 1): bitrate within 5 % and PSNR against the source, scaled to the rung, within 0.1 dB of ffmpeg's, "
    f"per rung: **{'yes' if like_for_like else 'NO: the ratios above compare different work'}**.", "",
    "| rung | sealcast segments | sealcast kb/s | ffmpeg segments | ffmpeg kb/s | kb/s ours/ffmpeg | PSNR dB ours / ffmpeg | Δ dB |",
    "|---|---|---|---|---|---|---|---|",
]
for rung in RUNGS:
    o, f, c = r["rungs"]["sealcast"][rung], r["rungs"]["ffmpeg"][rung], r["checks"][rung]
    p = c.get("psnr_db")
    ps = f"{p['sealcast']:.2f} / {p['ffmpeg']:.2f}" if p and None not in p.values() else "— (copied)"
    d = f"{c['psnr_delta_db']:+.2f}" if c.get("psnr_delta_db") is not None else "—"
    table.append(f"| {rung} | {o['segments']} | {o['kbps']:.0f} | {f['segments']} | {f['kbps']:.0f} | {c['kbps_ratio']:.3f} | {ps} | {d} |")
table += ["", "Run it with `bench/ladder.sh [RUNS]` (`LADDER_PARTS=0` for the ladder without parts); "
          f"raw numbers in `{name}`.", ""]
notes = "bench/ladder-notes.md"
if parts and os.path.exists(notes):
    table[-2:-2] = [open(notes).read().strip(), ""]
section = "\n".join(table)
# The variant without parts goes right after the default's section.
put(section, title, after=None if parts else "## Ladder transcode (bench/ladder.sh)", results=name)
print(section)
if not like_for_like:
    sys.exit("ladder: the outputs are not like for like (bitrate or PSNR per rung differ beyond the limits); see the table")
PY
