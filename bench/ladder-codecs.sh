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
# Writes bench/out/ladder-codecs.json and its section of docs/benchmarks.md.
#
# Usage: bench/ladder-codecs.sh [SECONDS] [CODECS]   (defaults 60 and "hevc av1")
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh test
SECS="${1:-60}"
CODECS="${2:-hevc av1}"

source bench/lib.sh
bench_clear_env
bench_install ladder-codecs curl python3
bench_workdir
bench_binary
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
    python3 - "$codec" "$start" "$now" "$before" "$ticks" "$TICK" "$WORK/metrics.txt" >> "$WORK/samples.jsonl" <<'PY'
import json, re, sys
codec, start, now, before, ticks, tick, path = sys.argv[1:]
series = {}
for line in open(path):
    m = re.match(r'(sealcast_ingest_(?:realtime_factor|lag_seconds|rungs_shed(?:_total)?))\{([^}]*)\} ([0-9.eE+-]+)', line)
    if m and 'stream="main"' in m.group(2):
        rung = re.search(r'rendition="([^"]*)"', m.group(2))
        series.setdefault(m.group(1).replace("_total", ""), {})[rung.group(1) if rung else "-"] = float(m.group(3))
print(json.dumps({"codec": codec, "t": float(now) - float(start),
                  "cpu_cores": (int(ticks) - int(before)) / int(tick) / max(float(now) - float(start), 1e-3),
                  "realtime_factor": series.get("sealcast_ingest_realtime_factor", {}),
                  "lag_s": series.get("sealcast_ingest_lag_seconds", {}).get("-"),
                  "shed": series.get("sealcast_ingest_rungs_shed", {})}))
PY
  done
  wait "$PUB" || echo "ladder-codecs: the $codec publisher exited with an error: $(tail -c 400 "$WORK/publish-$codec.log")" >&2
  # The src playlist once the stream ended (grace 2 s): what it covered, and any gap.
  sleep 4
  curl -sf --cacert "$dir/certs/ca.pem" "${NODE%/}/live/main/src/index.m3u8" > "$WORK/src-$codec.m3u8" || : > "$WORK/src-$codec.m3u8"
  curl -sf --cacert "$dir/certs/ca.pem" "${NODE%/}/live/main/master.m3u8" > "$WORK/master-$codec.m3u8" || : > "$WORK/master-$codec.m3u8"
  sleep 4
done

mkdir -p bench/out
SECS="$SECS" python3 - "$WORK" $CODECS <<'PY'
import json, os, re, sys
sys.dont_write_bytecode = True; sys.path.insert(0, "bench"); from docsection import put
work, codecs = sys.argv[1], sys.argv[2:]
secs = int(os.environ["SECS"])
samples = [json.loads(l) for l in open(os.path.join(work, "samples.jsonl"))]
out = {"seconds": secs, "source": "1920x1080 60 fps test pattern + Opus, published over E-RTMP by FFmpeg 9 (-re -c copy)", "codecs": {}}
for codec in codecs:
    s = [x for x in samples if x["codec"] == codec]
    last = s[-1] if s else {}
    playlist = open(os.path.join(work, f"src-{codec}.m3u8")).read()
    master = open(os.path.join(work, f"master-{codec}.m3u8")).read()
    durations = [float(d) for d in re.findall(r"#EXTINF:([0-9.]+)", playlist)]
    gaps = playlist.count("#EXT-X-GAP")
    rungs = {}
    for x in s:
        for rung, rf in x["realtime_factor"].items():
            rungs.setdefault(rung, []).append(rf)
    shed = {r: v for r, v in last.get("shed", {}).items() if v > 0}
    first_shed = {}
    for x in s:
        for r, v in x["shed"].items():
            if v > 0 and r not in first_shed:
                first_shed[r] = round(x["t"], 1)
    out["codecs"][codec] = {
        "cpu_cores": last.get("cpu_cores"),
        "realtime_factor_min": {r: min(v) for r, v in rungs.items()},
        "lag_max_s": max((x["lag_s"] for x in s if x["lag_s"] is not None), default=None),
        "rungs_shed": shed, "shed_at_s": first_shed,
        "src_codecs": (re.findall(r'CODECS="([^"]*)"[^\n]*\n[^\n]*src/', master) or [None])[0],
        "src_segments_listed": len(durations), "src_gaps": gaps,
        "src_window_s": round(sum(durations), 1),
        "samples": s,
    }
json.dump(out, open("bench/out/ladder-codecs.json", "w"), indent=1)
fmt = lambda v: "—" if v is None else (f"{v:.2f}" if isinstance(v, float) else str(v))
rows = []
for codec, r in out["codecs"].items():
    rf = ", ".join(f"{k} {v:.2f}" for k, v in sorted(r["realtime_factor_min"].items())) or "—"
    shed = ", ".join(f"{k} at {r['shed_at_s'].get(k, '?')} s" for k in r["rungs_shed"]) or "none"
    rows.append(f"| {codec} | {fmt(r['cpu_cores'])} | {rf} | {fmt(r['lag_max_s'])} | {shed} | {r['src_codecs'] or '—'} | {r['src_gaps']} |")
section = "\n".join([
    "## Ladder CPU for 1080p60 HEVC and AV1 sources",
    "",
    f"`bench/ladder-codecs.sh {secs}`: {out['source']} to `sealcast up` with the default ladder (src passed through in its own codec, 720p/480p/360p by x264 `veryfast`), on this 2-core machine. CPU is `sealcast up`'s whole process (decode, three x264 rungs, signing, pushing to 2 nodes) in cores; realtime factor is each rung's lowest (1.0 keeps up); a rung the pipeline shed shows in `sealcast_ingest_rungs_shed` and disappears from the dashboard's rung list; the src rung's live window must have no gap (the stream never stalls).",
    "",
    "| source | CPU cores | realtime factor (lowest per rung) | lag max s | rungs shed | src CODECS | src gaps |",
    "|---|---|---|---|---|---|---|",
    *rows,
]) + "\n"
put(section, "## Ladder CPU for 1080p60 HEVC and AV1 sources", after="## Ladder", results="bench/out/ladder-codecs.json")
print(section)
PY
