#!/usr/bin/env bash
# Benchmark (docs/benchmarks.md): glass-to-glass latency in Chromium, read from
# the clock `sealcast source` stamps into every frame, for
#   - sealcast LL-HLS (CMAF, parts of 0.333 s), through the load balancer over HTTPS,
#   - sealcast plain HLS (CMAF without parts: what a player without LL support gets),
#     through the load balancer over HTTPS,
#   - nginx-rtmp's HLS (`hls_fragment 2s`), served by nginx over HTTP,
# all fed by one publisher: `sealcast source` publishes 720p30 to nginx-rtmp, which plays
# it out as HLS and pushes the same RTMP stream on to both sealcast clusters. Each viewer
# is the same page (the sealcast player, hls.js in low-latency mode; nginx serves a copy of
# it next to its HLS), opened by bench/viewers' `sealcast-glass`, which samples the
# stamped latency every 250 ms for SECONDS after a 10 s settle. The three are measured in
# turn, ROUNDS times interleaved (LL, plain, nginx, LL, ...); p50/p90/max over every
# sample of a system, and the longest stall.
#
# The ladders are the source rung only by default (LADDER=src): two cores cannot run three
# x264 rungs, two clusters, nginx, the publisher and Chromium without falling behind real
# time, which would measure the machine, not the delivery path. LADDER=full uses the
# default ladder on the LL cluster.
#
# Writes bench/out/latency.json and a section in docs/benchmarks.md.
#
# Usage: bench/latency.sh [SECONDS] [ROUNDS]   (defaults 60 and 5)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
SECS="${1:-60}"
ROUNDS="${2:-5}"
LADDER="${LADDER:-src}"

source bench/lib.sh
bench_install latency nginx libnginx-mod-rtmp chromium chromium-driver curl python3
bench_workdir
bench_build # also builds sealcast-glass (the viewers package)
GLASS="$PWD/target/release/sealcast-glass"

# One sealcast cluster per mode, each with its own data directory and ports.
start_cluster() { # NAME PART_TARGET
  local name="$1" part="$2" dir="$WORK/$1"
  mkdir -p "$dir"
  local ladder=src
  if [ "$name" = ll ]; then ladder="$LADDER"; fi
  bench_latency_config "$part" "$ladder" > "$dir/sealcast.toml"
  "$BIN" up --config "$dir/sealcast.toml" --data-dir "$dir/data" --certs-dir "$dir/certs" \
    --broadcast 2 --rtmp-listen 127.0.0.1:0 --srt-listen 127.0.0.1:0 --webrtc-listen 127.0.0.1:0 --broadcast-listen 127.0.0.1:0 \
    --mqtt-listen 127.0.0.1:0 --https-listen 127.0.0.1:0 --http-listen 127.0.0.1:0 \
    > "$dir/up.out" 2> "$dir/up.err" &
  PIDS+=("$!")
  for _ in $(seq 1 600); do grep -q '^broadcast2 ' "$dir/up.out" && break; sleep 0.1; done
  grep -q '^broadcast2 ' "$dir/up.out" || { echo "latency: sealcast up ($name) did not start" >&2; tail "$dir/up.err" >&2; exit 1; }
}
start_cluster ll 0.333
start_cluster plain 0
field() { awk -v k="$2" '$1 == k {print $2}' "$WORK/$1/up.out" | head -1; }
key() { awk '/^stream-key main /{print $3}' "$WORK/$1/up.out" | head -1; }
rtmp_port() { field "$1" obs-server | sed -E 's|rtmp://[^:]+:([0-9]+).*|\1|'; }

# nginx-rtmp: HLS of its own, and the same stream pushed on to both clusters.
NGINX_RTMP="$(free_port)"
NGINX_HTTP="$(free_port)"
mkdir -p "$WORK/nginx/hls" "$WORK/nginx/www/assets" "$WORK/nginx/www/api/v1" "$WORK/nginx/logs"
bench_render nginx/rtmp.conf "$WORK/nginx/nginx.conf" DIR="$WORK/nginx" RTMP_PORT="$NGINX_RTMP" \
  HTTP_PORT="$NGINX_HTTP" LL_RTMP_PORT="$(rtmp_port ll)" LL_KEY="$(key ll)" \
  PLAIN_RTMP_PORT="$(rtmp_port plain)" PLAIN_KEY="$(key plain)"
nginx -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" > "$WORK/nginx/logs/stdout.log" 2>&1 &
PIDS+=("$!")

# The same player page next to nginx's HLS, copied from a sealcast node.
NODE="$(field ll broadcast1)"
curl -sf "${NODE%/}/" -o "$WORK/nginx/www/index.html"
for a in hls.min.js player.js style.css dashboard.js; do
  curl -sf "${NODE%/}/assets/$a" -o "$WORK/nginx/www/assets/$a"
done
# The player plays a stream it finds listed: nginx's is listed the way a node lists one.
echo '[{"name":"peer","live":true,"master_url":"/live/peer/master.m3u8","renditions":[{"name":"src","width":1280,"height":720,"codecs":"avc1.64001f","frame_rate":30.0,"bandwidth":2600000,"average_bandwidth":2600000}]}]' \
  > "$WORK/nginx/www/api/v1/streams"
echo '[]' > "$WORK/nginx/www/api/v1/recordings"

echo "latency: publishing 720p30 to nginx-rtmp, relayed to both clusters" >&2
TOTAL=$(( (SECS + 25) * 3 * ROUNDS + 60 ))
"$BIN" source --url "rtmp://127.0.0.1:$NGINX_RTMP/live/bench" --size 1280x720 --fps 30 \
  --duration "$TOTAL" > "$WORK/source.log" 2>&1 &
PIDS+=("$!")

wait_url() { # URL [CURL ARGS...]
  local url="$1"; shift
  for _ in $(seq 1 300); do curl -sf "$@" "$url" -o /dev/null && return 0; sleep 0.2; done
  echo "latency: $url never answered" >&2
  for f in nginx/logs/stdout.log nginx/logs/error.log source.log ll/up.err plain/up.err; do echo "== $f" >&2; tail -n 5 "$WORK/$f" >&2 || true; done
  exit 1
}
LL_ORIGIN="$(field ll player)"; PLAIN_ORIGIN="$(field plain player)"
wait_url "${LL_ORIGIN%/}/live/main/master.m3u8" --cacert "$WORK/ll/certs/ca.pem"
wait_url "${PLAIN_ORIGIN%/}/live/main/master.m3u8" --cacert "$WORK/plain/certs/ca.pem"
wait_url "http://127.0.0.1:$NGINX_HTTP/live/peer/master.m3u8"

: > "$WORK/runs.jsonl"
# The LL cluster's counters before and after: signing and verification cost, part gate wait.
LL_NODE="$(field ll broadcast1)"
python3 -c 'import json,sys,time; sys.path.insert(0,"bench"); from publish_latency import metrics; print(json.dumps({"at": time.time(), "m": metrics(sys.argv[1])}))' "$LL_NODE" > "$WORK/m0.json"
for round in $(seq 1 "$ROUNDS"); do
  for system in ll plain nginx; do
    case "$system" in
      ll) origin="$LL_ORIGIN"; stream=main ;;
      plain) origin="$PLAIN_ORIGIN"; stream=main ;;
      nginx) origin="http://127.0.0.1:$NGINX_HTTP"; stream=peer ;;
    esac
    echo "latency: round $round/$ROUNDS, $system (${SECS}s)" >&2
    if ! RUST_BACKTRACE=0 "$GLASS" "${origin%/}" "$stream" --seconds "$SECS" > "$WORK/run.json" 2> "$WORK/glass.err"; then
      # Recorded as a failed run (the others go on): what the player did is in the error.
      echo "latency: $system: the browser run failed: $(head -c 600 "$WORK/glass.err")" >&2
      python3 -c 'import json,sys; print(json.dumps({"failed": sys.argv[1], "samples": 0, "stamped_samples": 0, "glass_to_glass_s": None, "hlsjs_latency_s": None, "longest_stall_s": None}))' \
        "$(head -c 600 "$WORK/glass.err")" > "$WORK/run.json"
    fi
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); r["system"]=sys.argv[2]; r["round"]=int(sys.argv[3]); print(json.dumps(r))' \
      "$WORK/run.json" "$system" "$round" >> "$WORK/runs.jsonl"
  done
done

python3 -c 'import json,sys,time; sys.path.insert(0,"bench"); from publish_latency import metrics; print(json.dumps({"at": time.time(), "m": metrics(sys.argv[1])}))' "$LL_NODE" > "$WORK/m1.json"

mkdir -p bench/out
SECS="$SECS" ROUNDS="$ROUNDS" LADDER="$LADDER" python3 - "$WORK/runs.jsonl" "$WORK/m0.json" "$WORK/m1.json" <<'PY'
import json, os, sys
sys.dont_write_bytecode = True; sys.path.insert(0, "bench"); from docsection import put; from lib.stats import median_high
sys.path.insert(0, "bench")
from publish_latency import hist, hist_quantile
runs = [json.loads(l) for l in open(sys.argv[1])]
m0, m1 = json.load(open(sys.argv[2])), json.load(open(sys.argv[3]))
span = m1["at"] - m0["at"]
delta = lambda name: sum(v for k, v in m1["m"].items() if k.split("{")[0] == name) - sum(v for k, v in m0["m"].items() if k.split("{")[0] == name)
parts_signed = delta("sealcast_ingest_parts_signed_total")
segments = delta("sealcast_ingest_sign_seconds_count")
part_sign_s = delta("sealcast_ingest_part_sign_seconds_sum")
sign_s = delta("sealcast_ingest_sign_seconds_sum")
verify_s = delta("sealcast_signature_verify_seconds_sum")
verified = delta("sealcast_signature_verify_seconds_count")
_, waits, buckets = hist(m0["m"], m1["m"], "sealcast_part_wait_seconds")
# An envelope: u32 ‖ manifest ‖ u32 ‖ ML-DSA-65 signature (3309 bytes); a part manifest of
# stream "main", rendition "src" is 27+1+16+5+8+4+8+4+1+8+8+8+8+32 bytes.
part_envelope = 8 + (27 + 1 + 16 + 5 + 8 + 4 + 8 + 4 + 1 + 8 + 8 + 8 + 8 + 32) + 3309
segment_envelope = 8 + (29 + 1 + 16 + 5 + 8 + 4 + 8 * 4 + 32) + 3309
cost = {
    "seconds": span,
    "parts_per_s": parts_signed / span if span else None,
    "segments_per_s": segments / span if span else None,
    "ingest_sign_ms_per_s": 1000 * (part_sign_s + sign_s) / span if span else None,
    "part_sign_ms_mean": 1000 * part_sign_s / parts_signed if parts_signed else None,
    "edge_verify_ms_per_s_per_node": 1000 * verify_s / span / 2 if span else None,
    "verify_ms_mean": 1000 * verify_s / verified if verified else None,
    "mqtt_manifest_bytes_per_s": (parts_signed * part_envelope + segments * segment_envelope) / span if span else None,
    "part_wait_ms": {"p50": (hist_quantile(buckets, 0.5) or 0) * 1000, "p99": (hist_quantile(buckets, 0.99) or 0) * 1000, "n": waits},
}
names = {"ll": "sealcast LL-HLS (lb, HTTPS)", "plain": "sealcast plain HLS (lb, HTTPS)", "nginx": "nginx-rtmp HLS (hls_fragment 2s)"}
out = {"seconds_per_run": int(os.environ["SECS"]), "rounds": int(os.environ["ROUNDS"]),
       "ladder": os.environ["LADDER"], "publisher": "`sealcast source` 1280x720 30 fps via nginx-rtmp", "systems": {}}
for system in ["ll", "plain", "nginx"]:
    mine = [r for r in runs if r["system"] == system]
    p50s = [r["glass_to_glass_s"]["p50"] for r in mine if r["glass_to_glass_s"]]
    p90s = [r["glass_to_glass_s"]["p90"] for r in mine if r["glass_to_glass_s"]]
    maxes = [r["glass_to_glass_s"]["max"] for r in mine if r["glass_to_glass_s"]]
    med = median_high
    out["systems"][system] = {
        "name": names[system],
        "p50_s": {"median": med(p50s), "min": min(p50s, default=None), "max": max(p50s, default=None)},
        "p90_s": {"median": med(p90s), "min": min(p90s, default=None), "max": max(p90s, default=None)},
        "max_s": max(maxes, default=None),
        "longest_stall_s": max((r["longest_stall_s"] for r in mine if r["longest_stall_s"] is not None), default=None),
        "failed_runs": sum(1 for r in mine if r.get("failed")),
        "stamped_samples": sum(r["stamped_samples"] for r in mine),
        "runs": mine,
    }
out["signing"] = cost
json.dump(out, open("bench/out/latency.json", "w"), indent=1)
f = lambda v: "—" if v is None else f"{v:.2f}"
table = [
    "## Glass-to-glass latency",
    "",
    f"`bench/latency.sh {out['seconds_per_run']} {out['rounds']}`: Chromium (the sealcast player, hls.js in low-latency mode) reads the clock `sealcast source` stamps into each frame every 250 ms, {out['seconds_per_run']} s per run after a 10 s settle, {out['rounds']} rounds interleaved; one publisher feeds all three (nginx-rtmp relays it to both sealcast clusters). Ladder: {out['ladder']}. Median of the runs' p50 and p90 (min–max), the worst sample, and the longest stall.",
    "",
    "| system | p50 s | p90 s | max s | longest stall s | samples | failed runs |",
    "|---|---|---|---|---|---|---|",
]
for s in out["systems"].values():
    table.append(f"| {s['name']} | {f(s['p50_s']['median'])} ({f(s['p50_s']['min'])}–{f(s['p50_s']['max'])}) | {f(s['p90_s']['median'])} ({f(s['p90_s']['min'])}–{f(s['p90_s']['max'])}) | {f(s['max_s'])} | {f(s['longest_stall_s'])} | {s['stamped_samples']} | {s['failed_runs']} |")
c = cost
g = lambda v, d=2: "—" if v is None else f"{v:.{d}f}"
table += [
    "",
    f"Cost of signing every part, on the LL cluster over the {g(c['seconds'], 0)} s of the runs (one stream, ML-DSA-65): {g(c['parts_per_s'])} parts and {g(c['segments_per_s'])} segments signed per second; the ingest spends {g(c['ingest_sign_ms_per_s'])} ms of CPU per second on hashing and signing ({g(c['part_sign_ms_mean'])} ms per part); each edge {g(c['edge_verify_ms_per_s_per_node'])} ms per second verifying ({g(c['verify_ms_mean'], 3)} ms per manifest); signed manifests on MQTT {g((c['mqtt_manifest_bytes_per_s'] or 0) / 1000, 1)} KB/s per stream and rendition. The part gate's added latency (bytes arrived → listed): p50 {g(c['part_wait_ms']['p50'])} ms, p99 {g(c['part_wait_ms']['p99'])} ms over {int(c['part_wait_ms']['n'])} parts.",
]
section = "\n".join(table) + "\n"
put(section, "## Glass-to-glass latency", results="bench/out/latency.json")
print(section)
PY
