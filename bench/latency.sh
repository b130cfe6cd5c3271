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
# Writes bench/out/latency.json and a section in docs/benchmarks.md (`sealcast-bench report
# latency`).
#
# Usage: bench/latency.sh [SECONDS] [ROUNDS]   (defaults 60 and 5)
# Environment: LADDER, SEALCAST_BENCH (the driver; else the release build's)
set -euo pipefail
GIVEN_BENCH="${SEALCAST_BENCH:+$(realpath "$SEALCAST_BENCH")}"
cd "$(dirname "$0")/.."
source scripts/setup.sh
SECS="${1:-60}"
ROUNDS="${2:-5}"
LADDER="${LADDER:-src}"

source bench/lib.sh
bench_install latency nginx libnginx-mod-rtmp chromium chromium-driver curl
bench_workdir
bench_build # also builds sealcast-glass (the viewers package)
GLASS="$PWD/target/release/sealcast-glass"
bench_driver

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
"$DRIVER" sample metrics "$LL_NODE" > "$WORK/m0.json"
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
      "$DRIVER" sample glass-failed "$(head -c 600 "$WORK/glass.err")" > "$WORK/run.json"
    fi
    "$DRIVER" sample tagged "$WORK/run.json" --str system="$system" --int round="$round" \
      >> "$WORK/runs.jsonl"
  done
done

"$DRIVER" sample metrics "$LL_NODE" > "$WORK/m1.json"

"$DRIVER" report latency "$WORK/runs.jsonl" "$WORK/m0.json" "$WORK/m1.json" --seconds "$SECS" \
  --rounds "$ROUNDS" --ladder "$LADDER"
