#!/usr/bin/env bash
# Benchmark (c) of shared/brief/benchmarks.md: the ingest ladder transcoder vs the ffmpeg CLI.
#
# The same 60 s OBS-like 720p30 FLV (H.264 with B-frames, 2 s GOP, AAC) goes through
# `sealcast ladder` and through `ffmpeg -filter_complex split/scale` with the same preset,
# GOP, VBV, audio (copied), segment length and a passthrough `src` rung, run as fast as
# possible, interleaved A B A B. Reports CPU-seconds and wall-time ratios (ffmpeg / ours,
# > 1 means we are ahead), bitrate per rung and segment counts, with an A/A ratio of ffmpeg
# against itself as the noise floor. Writes bench/results/ladder.json and the table in
# docs/benchmarks.md.
#
# Usage: bench/ladder.sh [RUNS]   (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
RUNS="${1:-5}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

cargo build --release --locked -p sealcast >&2
BIN="$PWD/target/release/sealcast"
FIXTURE="$WORK/fixture.flv"
"$BIN" source --output "$FIXTURE" --size 1280x720 --fps 30 --bitrate 4000 --gop 2 --duration 60 --fast >&2

run_ours() { # out_dir → "wall user sys"
  /usr/bin/time -f "%e %U %S" -o "$WORK/time" "$BIN" ladder --input "$FIXTURE" --output "$1" > "$1.report" 2>/dev/null
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
    -preset veryfast -g 60 -keyint_min 60 -sc_threshold 0 -flags +cgop -pix_fmt yuv420p \
    -c:a copy \
    -f hls -hls_time 2 -hls_playlist_type vod -hls_segment_filename "$1/%v_%d.ts" \
    -var_stream_map "v:0,a:0,name:src v:1,a:1,name:720p v:2,a:2,name:480p v:3,a:3,name:360p" \
    -master_pl_name master.m3u8 "$1/%v.m3u8"
  cat "$WORK/time"
}

: > "$WORK/runs"
for i in $(seq 1 "$RUNS"); do
  echo "run $i/$RUNS" >&2
  echo "ours $(run_ours "$WORK/ours$i")" >> "$WORK/runs"
  echo "ffmpeg $(run_ffmpeg "$WORK/ff$i")" >> "$WORK/runs"
done

python3 - "$WORK" "$RUNS" <<'PY'
import json, os, statistics, sys, glob, datetime
work, runs = sys.argv[1], int(sys.argv[2])
rows = [l.split() for l in open(os.path.join(work, "runs"))]
ours = [(float(w), float(u) + float(s)) for k, w, u, s in rows if k == "ours"]
ff = [(float(w), float(u) + float(s)) for k, w, u, s in rows if k == "ffmpeg"]
def stat(xs): return {"median": statistics.median(xs), "min": min(xs), "max": max(xs)}
cpu_ratio = [f[1] / o[1] for f, o in zip(ff, ours)]
wall_ratio = [f[0] / o[0] for f, o in zip(ff, ours)]
aa_cpu = [ff[i][1] / ff[i + 1][1] for i in range(len(ff) - 1)] or [1.0]
aa_wall = [ff[i][0] / ff[i + 1][0] for i in range(len(ff) - 1)] or [1.0]

def rung_stats(files_by_rung):
    out = {}
    for rung, files in files_by_rung.items():
        size = sum(os.path.getsize(f) for f in files)
        out[rung] = {"segments": len(files), "kbps": round(size * 8 / 60 / 1000)}
    return out
ours_files = {r: glob.glob(os.path.join(work, "ours1", r, "*.ts")) for r in ["src", "720p", "480p", "360p"]}
ff_files = {r: glob.glob(os.path.join(work, "ff1", f"{r}_*.ts")) for r in ["src", "720p", "480p", "360p"]}
result = {
    "benchmark": "ladder transcode, 60 s 720p30 H.264+AAC FLV, as fast as possible",
    "date": datetime.date.today().isoformat(),
    "runs": runs,
    "cpu_seconds": {"sealcast": stat([o[1] for o in ours]), "ffmpeg": stat([f[1] for f in ff])},
    "wall_seconds": {"sealcast": stat([o[0] for o in ours]), "ffmpeg": stat([f[0] for f in ff])},
    "ratio_ffmpeg_over_ours": {"cpu": stat(cpu_ratio), "wall": stat(wall_ratio)},
    "noise_floor_ffmpeg_aa": {"cpu": stat(aa_cpu), "wall": stat(aa_wall)},
    "rungs": {"sealcast": rung_stats(ours_files), "ffmpeg": rung_stats(ff_files)},
}
os.makedirs("bench/results", exist_ok=True)
json.dump(result, open("bench/results/ladder.json", "w"), indent=2)
r = result
table = [
    "## Ladder transcode (bench/ladder.sh)",
    "",
    f"60 s 720p30 FLV → src + 720p/480p/360p, x264 veryfast, 2 s closed GOPs, VBV; {runs} interleaved runs, {r['date']}.",
    "",
    "| | sealcast | ffmpeg | ratio ffmpeg/ours (median, min–max) | A/A noise |",
    "|---|---|---|---|---|",
    f"| CPU-seconds | {r['cpu_seconds']['sealcast']['median']:.1f} | {r['cpu_seconds']['ffmpeg']['median']:.1f} | {r['ratio_ffmpeg_over_ours']['cpu']['median']:.2f} ({r['ratio_ffmpeg_over_ours']['cpu']['min']:.2f}–{r['ratio_ffmpeg_over_ours']['cpu']['max']:.2f}) | {r['noise_floor_ffmpeg_aa']['cpu']['median']:.2f} |",
    f"| wall seconds | {r['wall_seconds']['sealcast']['median']:.1f} | {r['wall_seconds']['ffmpeg']['median']:.1f} | {r['ratio_ffmpeg_over_ours']['wall']['median']:.2f} ({r['ratio_ffmpeg_over_ours']['wall']['min']:.2f}–{r['ratio_ffmpeg_over_ours']['wall']['max']:.2f}) | {r['noise_floor_ffmpeg_aa']['wall']['median']:.2f} |",
    "",
    "| rung | sealcast segments | sealcast kb/s | ffmpeg segments | ffmpeg kb/s |",
    "|---|---|---|---|---|",
]
for rung in ["src", "720p", "480p", "360p"]:
    o, f = r["rungs"]["sealcast"].get(rung, {}), r["rungs"]["ffmpeg"].get(rung, {})
    table.append(f"| {rung} | {o.get('segments', 0)} | {o.get('kbps', 0)} | {f.get('segments', 0)} | {f.get('kbps', 0)} |")
section = "\n".join(table) + "\n"
path = "docs/benchmarks.md"
text = open(path).read() if os.path.exists(path) else "# Benchmarks\n\nMeasured with the scripts in `bench/`; ratios > 1 mean sealcast is ahead.\n\n"
start = text.find("## Ladder transcode")
if start >= 0:
    end = text.find("\n## ", start + 1)
    text = text[:start] + section + (text[end + 1:] if end >= 0 else "")
else:
    text = text.rstrip("\n") + "\n\n" + section
open(path, "w").write(text)
print(section)
PY
