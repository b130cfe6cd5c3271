#!/usr/bin/env bash
# Benchmark (docs/benchmarks.md): one broadcast node vs nginx serving the same
# live window.
#
# `sealcast up --broadcast 1` (a 1-worker tokio runtime) gets a short `sealcast source`
# publish until the node holds a full window; the publisher then stops, so the window stays
# fixed (the node keeps an ended stream's playlists, with #EXT-X-ENDLIST). The master and
# media playlists and every listed segment are fetched from the node into a tmpfs directory
# that nginx (`worker_processes 1`, `sendfile on`, `access_log off`) serves under the same
# paths. Each server is pinned to core 0, the load generator to core 1. Loads, interleaved
# ours/nginx, RUNS times each:
#   - wrk -t1 -c64, HTTP/1.1 keep-alive, round-robin over the playlists (master + 4 media);
#   - the same over every segment of the window;
#   - h2load -t1 -c16 -m4 over h2c (HTTP/2 with prior knowledge), playlists and segments.
# Server CPU is utime+stime from /proc/PID/stat before/after each load. Reports requests/s,
# requests per server CPU-second, p99 latency and the ratios ours/nginx (> 1 means we are
# ahead; for p99, < 1 means we are ahead), with nginx against itself (A/A) as the noise
# floor. Writes bench/out/edge.json and a section in docs/benchmarks.md.
#
# h2load's output is read by `sealcast-bench sample h2load`, the report written by
# `sealcast-bench report edge`.
#
# Usage: bench/edge.sh [RUNS [SECONDS]]   (default 3 runs of 4 s per load)
# Environment: EDGE_PROFILE=DIR   also profile each server under the wrk loads (perf) into DIR;
# SEALCAST_BENCH the driver (else the release build's)
set -euo pipefail
GIVEN_BENCH="${SEALCAST_BENCH:+$(realpath "$SEALCAST_BENCH")}"
cd "$(dirname "$0")/.."
source scripts/setup.sh
RUNS="${1:-3}"
SECS="${2:-4}"

source bench/lib.sh
bench_install edge nginx wrk nghttp2-client curl util-linux
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"

# The served files live on tmpfs when there is one (as the brief asks of the peer).
bench_tmpfs_workdir edge
bench_build
bench_driver
HZ="$(getconf CLK_TCK)"

# --- 1. a fixed window on one broadcast node ------------------------------------------------
mkdir -p "$WORK/data"
TOKIO_WORKER_THREADS=1 "$BIN" up --data-dir "$WORK/data" --broadcast 1 \
  --rtmp-listen 127.0.0.1:0 --srt-listen 127.0.0.1:0 --webrtc-listen 127.0.0.1:0 --broadcast-listen 127.0.0.1:0 --mqtt-listen 127.0.0.1:0 \
  > "$WORK/up.out" 2> "$WORK/up.err" &
UP_PID=$!
PIDS+=("$UP_PID")
for _ in $(seq 1 300); do grep -q '^broadcast1 ' "$WORK/up.out" && break; sleep 0.1; done
grep -q '^broadcast1 ' "$WORK/up.out" || { echo "edge: sealcast up did not start" >&2; tail "$WORK/up.err" >&2; exit 1; }
NODE="$(awk '/^broadcast1 /{print $2}' "$WORK/up.out")"; NODE="${NODE%/}"
RTMP="$(awk '/^obs-server /{print $2}' "$WORK/up.out")"
KEY="$(awk '/^stream-key main /{print $3}' "$WORK/up.out")"
WINDOW=6; TARGET=2
DURATION=$(( (WINDOW + 2) * TARGET ))
echo "edge: publishing ${DURATION}s of 720p30 to fill the window" >&2
SEALCAST_SOURCE_URL="$RTMP/$KEY" "$BIN" source --size 1280x720 --fps 30 --duration "$DURATION" > "$WORK/source.log" 2>&1
for _ in $(seq 1 200); do
  curl -sf "$NODE/live/main/720p/index.m3u8" 2>/dev/null | grep -q EXT-X-ENDLIST && break
  sleep 0.1
done
sleep 0.5

WWW="$WORK/www"
: > "$WORK/playlists"; : > "$WORK/segments"
mkdir -p "$WWW/live/main"
curl -sf "$NODE/live/main/master.m3u8" -o "$WWW/live/main/master.m3u8"
echo /live/main/master.m3u8 >> "$WORK/playlists"
for r in $(grep -v '^#' "$WWW/live/main/master.m3u8" | sed 's#/index.m3u8##'); do
  mkdir -p "$WWW/live/main/$r"
  curl -sf "$NODE/live/main/$r/index.m3u8" -o "$WWW/live/main/$r/index.m3u8"
  echo "/live/main/$r/index.m3u8" >> "$WORK/playlists"
  for s in $(grep -v '^#' "$WWW/live/main/$r/index.m3u8"); do
    curl -sf "$NODE/live/main/$r/$s" -o "$WWW/live/main/$r/$s"
    echo "/live/main/$r/$s" >> "$WORK/segments"
  done
done
grep -q EXT-X-ENDLIST "$WWW/live/main/720p/index.m3u8" || echo "edge: warning: the stream had not ended; the window may move" >&2
chmod -R a+rX "$WWW"
NSEG=$(wc -l < "$WORK/segments"); NPL=$(wc -l < "$WORK/playlists")
SEGBYTES=$(cat "$WORK/segments" | sed "s#^#$WWW#" | xargs cat | wc -c)
echo "edge: window of $NPL playlists and $NSEG segments ($((SEGBYTES / NSEG)) bytes on average)" >&2
[ "$NSEG" -ge 4 ] || { echo "edge: the node holds no window" >&2; exit 1; }

# --- 2. nginx on the same files ---------------------------------------------------------------
P1="$(free_port)"; P2="$(free_port)"
mkdir -p "$WORK/nginx/tmp"
bench_render nginx/edge.conf "$WORK/nginx/nginx.conf" DIR="$WORK/nginx" PORT="$P1" H2_PORT="$P2" ROOT="$WWW"
taskset -c 0 "$NGINX" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log" 2>> "$WORK/nginx/error.log" &
NGINX_PID=$!
PIDS+=("$NGINX_PID")
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$P1/live/main/master.m3u8" >/dev/null 2>&1 && break; sleep 0.05; done
NGINX_PIDS="$NGINX_PID $(pgrep -P "$NGINX_PID" | tr '\n' ' ')"
NGINX_H1="http://127.0.0.1:$P1"; NGINX_H2="http://127.0.0.1:$P2"

# The node: all of `up`'s threads on core 0 now that the publish is over.
taskset -a -pc 0 "$UP_PID" > /dev/null

# Same bytes from both?
probe="$(sed -n 3p "$WORK/segments")"
[ "$(curl -sf "$NODE$probe" | sha256sum)" = "$(curl -sf "$NGINX_H1$probe" | sha256sum)" ] \
  || { echo "edge: nginx and the node serve different bytes for $probe" >&2; exit 1; }
[ "$(curl -sf "$NODE/live/main/720p/index.m3u8" | sha256sum)" = "$(curl -sf "$NGINX_H1/live/main/720p/index.m3u8" | sha256sum)" ] \
  || { echo "edge: nginx and the node serve different playlists" >&2; exit 1; }

# h2c with prior knowledge on the node (axum with the http2 feature)?
H2C_OURS=no
if [ "$(curl -s --http2-prior-knowledge -o /dev/null -w '%{http_version}' "$NODE/live/main/master.m3u8" || true)" = 2 ]; then H2C_OURS=yes; fi
echo "edge: node speaks h2c with prior knowledge: $H2C_OURS" >&2

cat > "$WORK/paths.lua" <<'EOF'
local paths = {}
for line in io.lines(os.getenv("WRK_PATHS")) do paths[#paths + 1] = line end
local reqs, i = {}, 0
request = function()
  i = i % #paths + 1
  if not reqs[i] then reqs[i] = wrk.format("GET", paths[i]) end
  return reqs[i]
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRKJSON {"requests":%d,"duration_s":%.6f,"errors":%d,"bytes":%d,"p50_ms":%.4f,"p99_ms":%.4f,"mean_ms":%.4f}\n',
    summary.requests, summary.duration / 1e6, e.connect + e.read + e.write + e.status + e.timeout,
    summary.bytes, latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.mean / 1000))
end
EOF

# measure SERVER KIND TOOL BASEURL PIDS... → one JSON line in $WORK/results
measure() {
  local server="$1" kind="$2" tool="$3" base="$4"; shift 4
  local list="$WORK/$kind" before after out
  before="$(cpu_ticks "$@")"
  if [ "$tool" = wrk ]; then
    out="$(WRK_PATHS="$list" taskset -c 1 wrk -t1 -c64 -d"${SECS}s" --timeout 5s -s "$WORK/paths.lua" "$base" 2>&1 | grep '^WRKJSON ' | sed 's/^WRKJSON //')"
  else
    sed "s#^#$base#" "$list" > "$WORK/uris"
    rm -f "$WORK/h2.log"
    taskset -c 1 h2load -t1 -c16 -m4 -D "$SECS" -i "$WORK/uris" --log-file="$WORK/h2.log" > "$WORK/h2.out" 2>&1 || true
    out="$("$DRIVER" sample h2load "$WORK/h2.out" "$WORK/h2.log")"
  fi
  after="$(cpu_ticks "$@")"
  echo "{\"server\":\"$server\",\"kind\":\"$kind\",\"tool\":\"$tool\",\"cpu_s\":$("$DRIVER" calc cpu-seconds "$before" "$after" --hz "$HZ"),\"load\":$out}" >> "$WORK/results"
}

: > "$WORK/results"
TOOLS=(wrk); [ "$H2C_OURS" = yes ] && TOOLS+=(h2load)
for i in $(seq 1 "$RUNS"); do
  for tool in "${TOOLS[@]}"; do
    for kind in playlists segments; do
      echo "edge: run $i/$RUNS $tool $kind" >&2
      if [ "$tool" = wrk ]; then ours_url="$NODE"; ng_url="$NGINX_H1"; else ours_url="$NODE"; ng_url="$NGINX_H2"; fi
      if ((i % 2)); then
        measure sealcast "$kind" "$tool" "$ours_url" "$UP_PID"
        measure nginx "$kind" "$tool" "$ng_url" $NGINX_PIDS
      else
        measure nginx "$kind" "$tool" "$ng_url" $NGINX_PIDS
        measure sealcast "$kind" "$tool" "$ours_url" "$UP_PID"
      fi
    done
  done
done
cp "$WORK/results" "$WORK/results.jsonl"

# --- optional: where each server's CPU goes (EDGE_PROFILE=DIR) ------------------------------------
# perf (cpu-clock samples with call graphs: this machine's virtual CPU has no hardware
# counters) of each server under the wrk loads, one more load each after the measured ones;
# DIR gets the raw perf.data and reports by shared object and by symbol.
if [ -n "${EDGE_PROFILE:-}" ]; then
  bench_install edge linux-perf
  mkdir -p "$EDGE_PROFILE"
  for kind in playlists segments; do
    for server in sealcast nginx; do
      if [ "$server" = sealcast ]; then url="$NODE"; pids="$UP_PID"; else url="$NGINX_H1"; pids="$NGINX_PIDS"; fi
      echo "edge: profiling $server under wrk $kind" >&2
      data="$EDGE_PROFILE/$server.$kind.data"
      WRK_PATHS="$WORK/$kind" taskset -c 1 wrk -t1 -c64 -d"$((SECS + 1))s" --timeout 5s -s "$WORK/paths.lua" "$url" > "$EDGE_PROFILE/$server.$kind.wrk" 2>&1 &
      wrk_pid=$!
      perf record -q -e cpu-clock -F 1999 -g -o "$data" -p "$(echo $pids | tr ' ' ',')" -- sleep "$SECS" > /dev/null 2>&1 || true
      wait "$wrk_pid" || true
      perf report -i "$data" --no-children --sort dso --stdio -q -g none 2> /dev/null | grep -v '^$' | head -15 > "$EDGE_PROFILE/$server.$kind.dso.txt" || true
      perf report -i "$data" --no-children --sort dso,sym --stdio -q -g none 2> /dev/null | grep -v '^$' | head -60 > "$EDGE_PROFILE/$server.$kind.sym.txt" || true
    done
  done
  echo "edge: profiles in $EDGE_PROFILE (*.dso.txt, *.sym.txt)" >&2
fi

# --- 3. report ------------------------------------------------------------------------------------
h2c=(); [ "$H2C_OURS" = yes ] && h2c=(--h2c)
"$DRIVER" report edge "$WORK/results.jsonl" --rounds "$RUNS" --seconds "$SECS" --segments "$NSEG" \
  --segment-bytes "$((SEGBYTES / NSEG))" "${h2c[@]}" --nginx "$("$NGINX" -v 2>&1)" --date "$(date +%F)"
