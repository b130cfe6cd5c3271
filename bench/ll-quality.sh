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
    python3 - "$name" "$mode" "$kbps" "$out" "$secs" "$SECS" "$metrics" >> "$WORK/results.jsonl" <<'PY'
import json, os, re, sys
name, mode, kbps, out, secs, dur, metrics = sys.argv[1:]
psnr = re.search(r"average:([0-9.]+|inf)", metrics)
ssim = re.search(r"All:([0-9.]+)", metrics)
print(json.dumps({"rung": name, "mode": mode, "target_kbps": int(kbps),
    "kbps": round(os.path.getsize(out) * 8 / float(dur) / 1000, 1),
    "psnr_db": float(psnr.group(1)) if psnr else None, "ssim": float(ssim.group(1)) if ssim else None,
    "encode_fps": round(float(dur) * 30 / float(secs), 1)}))
PY
  done
done

mkdir -p bench/out
python3 - "$WORK/results.jsonl" "$SECS" <<'PY'
import json, os, sys
sys.dont_write_bytecode = True; sys.path.insert(0, "bench"); from docsection import put
rows = [json.loads(l) for l in open(sys.argv[1])]
json.dump({"seconds": int(sys.argv[2]), "rows": rows}, open("bench/out/ll-quality.json", "w"), indent=1)
table = ["## Low-latency x264 settings: quality cost", "",
    f"`bench/ll-quality.sh {sys.argv[2]}`: a {sys.argv[2]} s 720p30 source (testsrc2 with noise) encoded per rung at the ladder's bitrate with the ingest's x264 settings without parts and with them (no B-frames, no lookahead, sliced threads). PSNR/SSIM against the source scaled to the rung; encode speed on this 2-core machine.", "",
    "| rung | kb/s (target) | PSNR dB, plain → LL | Δ dB | SSIM, plain → LL | kb/s reached, plain / LL | encode fps, plain / LL |",
    "|---|---|---|---|---|---|---|"]
by = {(r["rung"], r["mode"]): r for r in rows}
for rung in ["720p", "480p", "360p"]:
    p, l = by[(rung, "plain")], by[(rung, "ll")]
    table.append(f"| {rung} | {p['target_kbps']} | {p['psnr_db']:.2f} → {l['psnr_db']:.2f} | {l['psnr_db'] - p['psnr_db']:+.2f} | {p['ssim']:.4f} → {l['ssim']:.4f} | {p['kbps']} / {l['kbps']} | {p['encode_fps']} / {l['encode_fps']} |")
section = "\n".join(table) + "\n"
put(section, "## Low-latency x264 settings", results="bench/out/ll-quality.json")
print(section)
PY
