#!/usr/bin/env bash
# Glass-to-glass latency of a WHIP publish (issue 32), LL-HLS in Chromium: `sealcast source`
# draws its pattern with the machine-readable clock stamp, FFmpeg 9 (PyPI's imageio-ffmpeg,
# as scripts/setup.sh installs it) re-encodes it the way a WebRTC encoder sends (x264
# zerolatency, no B-frames, a keyframe every 2 s, Opus) and publishes it with its `whip`
# muxer through the load balancer's HTTPS to the ingest's WebRTC port; bench/viewers'
# `sealcast-glass` opens the player through the load balancer and samples the stamped
# latency every 250 ms for SECONDS after a 10 s settle, ROUNDS times. Goal: p50 <= 1.5 s.
#
# The re-encode adds FFmpeg's own encoding delay to the path (the stamp is in the picture,
# so what is measured is still camera-to-screen for this publisher). The ladder is the
# source rung only by default (LADDER=src), as in bench/latency.sh: two cores cannot run
# three x264 rungs, two x264 publishers and Chromium in real time. LADDER=full uses the
# default ladder.
#
# Writes bench/results/whip-latency.json and a section in docs/benchmarks.md.
#
# Usage: bench/whip-latency.sh [SECONDS] [ROUNDS]   (defaults 60 and 3)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh test
SECS="${1:-60}"
ROUNDS="${2:-3}"
LADDER="${LADDER:-src}"

source bench/lib.sh
bench_clear_env
bench_install whip-latency chromium chromium-driver curl python3
bench_workdir
bench_build # also builds sealcast-glass (the viewers package)
GLASS="$PWD/target/release/sealcast-glass"
FFMPEG9="${SEALCAST_TEST_FFMPEG9:-$("${SEALCAST_KUBERNETES_TOOLS:-$HOME/.cache/sealcast/kubernetes-tools}/bin/python" -c 'import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())')}"
[ -x "$FFMPEG9" ] || { echo "whip-latency: no FFmpeg 9 (run scripts/setup.sh test)" >&2; exit 1; }

dir="$WORK/cluster"
mkdir -p "$dir"
{
  printf '[ingest]\nend_grace_seconds = 2.0\n\n[ladder]\nsegment_target = 2.0\nwindow = 6\npreset = "veryfast"\nformat = "cmaf"\npart_target = 0.333\n\n'
  printf '[[ladder.rungs]]\nname = "src"\nkind = "source"\n'
  if [ "$LADDER" = full ]; then
    for r in "720p 720 3000" "480p 480 1200" "360p 360 730"; do
      set -- $r
      printf '\n[[ladder.rungs]]\nname = "%s"\nkind = "encode"\nheight = %s\nbitrate_kbps = %s\nmaxrate_kbps = %s\nbufsize_kbits = %s\n' \
        "$1" "$2" "$3" "$(($3 * 107 / 100))" "$(($3 * 3 / 2))"
    done
  fi
} > "$dir/sealcast.toml"
"$BIN" up --config "$dir/sealcast.toml" --data-dir "$dir/data" --certs-dir "$dir/certs" \
  --broadcast 2 --rtmp-listen 127.0.0.1:0 --broadcast-listen 127.0.0.1:0 \
  --mqtt-listen 127.0.0.1:0 --https-listen 127.0.0.1:0 --http-listen 127.0.0.1:0 \
  --webrtc-listen 127.0.0.1:0 \
  > "$dir/up.out" 2> "$dir/up.err" &
PIDS+=("$!")
for _ in $(seq 1 600); do grep -q '^broadcast2 ' "$dir/up.out" && break; sleep 0.1; done
grep -q '^broadcast2 ' "$dir/up.out" || { echo "whip-latency: sealcast up did not start" >&2; tail "$dir/up.err" >&2; exit 1; }
ORIGIN="$(awk '$1 == "player" {print $2}' "$dir/up.out" | head -1)"
KEY="$(awk '/^stream-key main /{print $3}' "$dir/up.out" | head -1)"

echo "whip-latency: sealcast source 720p30 -> FFmpeg 9 WHIP -> ${ORIGIN%/}/whip/main" >&2
TOTAL=$(( (SECS + 25) * ROUNDS + 60 ))
mkfifo "$WORK/source.flv"
"$BIN" source --output "$WORK/source.flv" --size 1280x720 --fps 30 --duration "$TOTAL" \
  > "$WORK/source.log" 2>&1 &
PIDS+=("$!")
SSL_CERT_FILE="$dir/certs/ca.pem" "$FFMPEG9" -hide_banner -loglevel warning -nostdin -f flv -i "$WORK/source.flv" \
  -c:v libx264 -preset veryfast -tune zerolatency -profile:v baseline -bf 0 \
  -g 60 -keyint_min 60 -sc_threshold 0 -pix_fmt yuv420p -b:v 2500k \
  -c:a libopus -ac 2 -ar 48000 -b:a 96k \
  -whip_flags dtls_active -f whip -authorization "$KEY" "${ORIGIN%/}/whip/main" > "$WORK/ffmpeg9.log" 2>&1 &
PIDS+=("$!")

for _ in $(seq 1 300); do
  curl -sf --cacert "$dir/certs/ca.pem" "${ORIGIN%/}/live/main/master.m3u8" -o /dev/null && break
  sleep 0.2
done
curl -sf --cacert "$dir/certs/ca.pem" "${ORIGIN%/}/live/main/master.m3u8" -o /dev/null || {
  echo "whip-latency: the WHIP stream never came out" >&2
  for f in ffmpeg9.log source.log cluster/up.err; do echo "== $f" >&2; tail -n 8 "$WORK/$f" >&2 || true; done
  exit 1
}

: > "$WORK/runs.jsonl"
for round in $(seq 1 "$ROUNDS"); do
  echo "whip-latency: round $round/$ROUNDS (${SECS}s)" >&2
  if ! RUST_BACKTRACE=0 "$GLASS" "${ORIGIN%/}" main --seconds "$SECS" > "$WORK/run.json" 2> "$WORK/glass.err"; then
    echo "whip-latency: the browser run failed: $(head -c 600 "$WORK/glass.err")" >&2
    python3 -c 'import json,sys; print(json.dumps({"failed": sys.argv[1], "samples": 0, "stamped_samples": 0, "glass_to_glass_s": None, "hlsjs_latency_s": None, "longest_stall_s": None}))' \
      "$(head -c 600 "$WORK/glass.err")" > "$WORK/run.json"
  fi
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); r["round"]=int(sys.argv[2]); print(json.dumps(r))' \
    "$WORK/run.json" "$round" >> "$WORK/runs.jsonl"
done

mkdir -p bench/results
SECS="$SECS" ROUNDS="$ROUNDS" LADDER="$LADDER" python3 - "$WORK/runs.jsonl" <<'PY'
import json, os, sys
sys.dont_write_bytecode = True; sys.path.insert(0, "bench"); from docsection import put
runs = [json.loads(l) for l in open(sys.argv[1])]
p50s = [r["glass_to_glass_s"]["p50"] for r in runs if r["glass_to_glass_s"]]
p90s = [r["glass_to_glass_s"]["p90"] for r in runs if r["glass_to_glass_s"]]
maxes = [r["glass_to_glass_s"]["max"] for r in runs if r["glass_to_glass_s"]]
med = lambda xs: sorted(xs)[len(xs) // 2] if xs else None
out = {
    "seconds_per_run": int(os.environ["SECS"]), "rounds": int(os.environ["ROUNDS"]),
    "ladder": os.environ["LADDER"],
    "publisher": "`sealcast source` 1280x720 30 fps, re-encoded by FFmpeg 9 (x264 zerolatency, no B-frames, GOP 2 s, Opus) and published with its whip muxer through the load balancer",
    "p50_s": {"median": med(p50s), "min": min(p50s, default=None), "max": max(p50s, default=None)},
    "p90_s": {"median": med(p90s), "min": min(p90s, default=None), "max": max(p90s, default=None)},
    "max_s": max(maxes, default=None),
    "longest_stall_s": max((r["longest_stall_s"] for r in runs if r["longest_stall_s"] is not None), default=None),
    "failed_runs": sum(1 for r in runs if r.get("failed")),
    "stamped_samples": sum(r["stamped_samples"] for r in runs),
    "goal_p50_s": 1.5,
    "runs": runs,
}
json.dump(out, open("bench/results/whip-latency.json", "w"), indent=1)
f = lambda v: "—" if v is None else f"{v:.2f}"
met = out["p50_s"]["median"] is not None and out["p50_s"]["median"] <= 1.5
section = "\n".join([
    "## Glass-to-glass latency over WHIP",
    "",
    f"`bench/whip-latency.sh {out['seconds_per_run']} {out['rounds']}`: {out['publisher']}; Chromium plays it as LL-HLS (the sealcast player, hls.js in low-latency mode) through the load balancer and reads the stamped clock every 250 ms, {out['seconds_per_run']} s per run after a 10 s settle. Ladder: {out['ladder']}. Goal: p50 ≤ 1.5 s ({'met' if met else 'not met'}).",
    "",
    "| publisher | p50 s | p90 s | max s | longest stall s | samples | failed runs |",
    "|---|---|---|---|---|---|---|",
    f"| FFmpeg 9 WHIP → LL-HLS | {f(out['p50_s']['median'])} ({f(out['p50_s']['min'])}–{f(out['p50_s']['max'])}) | {f(out['p90_s']['median'])} ({f(out['p90_s']['min'])}–{f(out['p90_s']['max'])}) | {f(out['max_s'])} | {f(out['longest_stall_s'])} | {out['stamped_samples']} | {out['failed_runs']} |",
]) + "\n"
put(section, "## Glass-to-glass latency over WHIP", after="## Glass-to-glass latency")
print(section)
PY
