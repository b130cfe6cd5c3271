#!/usr/bin/env bash
# Benchmark (docs/benchmarks.md): load-balancer overhead, `sealcast lb`
# (Pingora) vs HAProxy 2.6, both sticky by cookie, over TLS with HTTP/2, in front of the
# same two backends.
#
# Backends: two nginx instances (`worker_processes 1`, files on tmpfs) serving
# /live/bench/src/index.m3u8 (a small playlist), /live/bench/src/1.ts (~200 KB of TS
# packets with random payload) and /healthz, each adding `x-sealcast-node: bench-b1` /
# `bench-b2`, with a `stub_status` port (accepts and requests counters). Our load balancer
# learns them from retained MQTT presence on the run's own Mosquitto (signed with the edge key of
# the keys `sealcast keys init` makes for the run, by sealcast-presence); HAProxy from
# its config file: `balance leastconn`, `cookie sealcast_node insert indirect nocache`,
# `http-reuse always`, `/healthz` checks every second (as ours). Both serve the certificate `sealcast certs` makes, one thread each
# (`nbthread 1`; a 1-worker tokio runtime), pinned to core 1; h2load and the backends run
# on core 0.
#
# Viewers are sticky: one cookie per backend is taken from each load balancer with curl
# (cookie-less requests until each backend has been chosen once), then two h2load
# processes, half of the clients each, send one of the two cookies over TLS/h2. Loads,
# interleaved ours/HAProxy (the order flips every run), RUNS times each:
#   - saturating: h2load -c CLIENTS -m STREAMS -D SECONDS on the playlist, then on the
#     segment. Server CPU (utime+stime of the load balancer's process from /proc/PID/stat)
#     around each load gives CPU ms per 1000 requests and per MB (h2load's traffic total);
#   - paced, for the latency figure: h2load -c LAT_CLIENTS -m 1 --rps LAT_RPS (per client)
#     through each load balancer and directly on the backends over plain HTTP/1.1 (h2load
#     --h1, the same clients and rate). Added latency = p50/p99 through the load balancer
#     minus direct, from h2load's per-request log (--log-file), in the same run: the whole
#     cost of the load-balanced path, TLS and HTTP/2 included. (Not h2c: nginx 1.22 answers
#     small responses on plain h2 connections ~40 ms late, a Nagle/delayed-ACK stall.)
# Backend connection reuse = 1 - TCP connections the backends accepted / requests they
# served (nginx stub_status deltas around each load; the health checks of the load balancer
# under test count in both, HAProxy's are paused while ours is measured).
# Ratios are HAProxy / ours: > 1 means we are ahead. HAProxy against itself (consecutive
# runs) is the noise floor. Goal (issue 18): HAProxy CPU / ours >= 1.2, added p99 < 200 µs, reuse >= 99 %.
# Writes bench/out/lb.json and a section in docs/benchmarks.md (LB_RESULTS and LB_DOCS
# move them; LB_DOCS= skips the docs) and prints the table (`sealcast-bench report lb`).
#
# Usage: bench/lb.sh [RUNS [SECONDS]]   (default 5 runs of 10 s per load)
# Environment:
#   SEALCAST_BIN=path   a prebuilt sealcast binary instead of `cargo build --release`
#   SEALCAST_BENCH=path the report's sealcast-bench (default: the one beside SEALCAST_BIN)
#   CLIENTS=100 STREAMS=1   saturating load; LAT_CLIENTS=10 LAT_RPS=50   paced load
#   TLS13_CIPHER=TLS_AES_128_GCM_SHA256   the only suite h2load offers (both sides then use
#     it; the run stops if they negotiated different ones)
set -euo pipefail
# A relative SEALCAST_BIN is relative to where the script was started.
[ -z "${SEALCAST_BIN:-}" ] || SEALCAST_BIN="$(realpath -m "$SEALCAST_BIN")"
GIVEN_BENCH="${SEALCAST_BENCH:+$(realpath "$SEALCAST_BENCH")}"
cd "$(dirname "$0")/.."
RUNS="${1:-5}"
SECS="${2:-10}"
CLIENTS="${CLIENTS:-100}"
STREAMS="${STREAMS:-1}"
LAT_CLIENTS="${LAT_CLIENTS:-10}"
LAT_RPS="${LAT_RPS:-50}"
# The one TLS 1.3 suite the clients offer, so both load balancers negotiate the same one.
TLS13_CIPHER="${TLS13_CIPHER:-TLS_AES_128_GCM_SHA256}"
RESULTS="${LB_RESULTS:-bench/out/lb.json}"
DOCS="${LB_DOCS-docs/benchmarks.md}"
source bench/lib.sh
[[ "$RUNS" =~ ^[1-9][0-9]*$ && "$SECS" =~ ^[1-9][0-9]*$ ]] || die "usage: bench/lb.sh [RUNS [SECONDS]] (whole numbers)"
[ $((CLIENTS % 2)) -eq 0 ] && [ "$CLIENTS" -ge 2 ] || die "CLIENTS must be even (two h2load processes, one per backend)"
[ $((LAT_CLIENTS % 2)) -eq 0 ] && [ "$LAT_CLIENTS" -ge 2 ] || die "LAT_CLIENTS must be even"

bench_install lb haproxy nghttp2-client nginx mosquitto mosquitto-clients curl util-linux
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
HAPROXY="$(command -v haproxy || echo /usr/sbin/haproxy)"
MOSQUITTO="$(command -v mosquitto || echo /usr/sbin/mosquitto)"

bench_tmpfs_workdir lb
bench_binary
# Signs the backends' presences (bench/viewers/src/presence.rs).
bench_tool sealcast-presence
PRESENCE="$TOOL"
bench_driver
bench_clear_env
RUNID="$(date +%s)-$$"

HZ="$(getconf CLK_TCK)"
# wait_for SECONDS COMMAND...: runs COMMAND every 0.1 s until it succeeds; fails after
# SECONDS, or at once when COMMAND returns 2 (it will never succeed).
wait_for() {
  local secs="$1" i rc; shift
  for ((i = 0; i < secs * 10; i++)); do
    rc=0; "$@" > /dev/null 2>&1 || rc=$?
    [ "$rc" -eq 0 ] && return 0
    [ "$rc" -eq 2 ] && return 1
    sleep 0.1
  done
  return 1
}

# --- 1. the MQTT broker --------------------------------------------------------------------------
# A Mosquitto of the run's own on a free port: our load balancer finds its backends there.
MQ_PORT="$(free_port)"
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n' "$MQ_PORT" > "$WORK/mosquitto.conf"
"$MOSQUITTO" -c "$WORK/mosquitto.conf" > "$WORK/mosquitto.log" 2>&1 &
PIDS+=("$!")
MQTT_URL="mqtt://127.0.0.1:$MQ_PORT"
MQ=(-h 127.0.0.1 -p "$MQ_PORT")
wait_for 10 timeout 2 mosquitto_pub "${MQ[@]}" -q 1 -t "sealcast/v1/bench-probe" -n \
  || { cat "$WORK/mosquitto.log" >&2; die "mosquitto did not start"; }

# --- 2. two nginx backends ---------------------------------------------------------------------------
WWW="$WORK/www"
mkdir -p "$WWW/live/bench/src"
{
  printf '#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:1\n'
  for i in 1 2 3 4 5 6; do printf '#EXTINF:2.000,\n%s.ts\n' "$i"; done
} > "$WWW/live/bench/src/index.m3u8"
# 1088 TS packets of 188 bytes (~200 KB), each a 0x47 sync byte and random payload.
"$DRIVER" random-ts 1088 > "$WWW/live/bench/src/1.ts"
chmod -R a+rX "$WWW"
PLAYLIST=/live/bench/src/index.m3u8
SEGMENT=/live/bench/src/1.ts
PLAYLIST_BYTES=$(wc -c < "$WWW$PLAYLIST"); SEGMENT_BYTES=$(wc -c < "$WWW$SEGMENT")

declare -A B_HTTP B_STATUS B_PID
start_backend() { # NAME
  local b="$1" dir="$WORK/nginx-$1"
  B_HTTP[$b]="$(free_port)"; B_STATUS[$b]="$(free_port)"
  mkdir -p "$dir/tmp"
  bench_render nginx/lb-backend.conf "$dir/nginx.conf" DIR="$dir" PORT="${B_HTTP[$b]}" \
    STATUS_PORT="${B_STATUS[$b]}" ROOT="$WWW" NAME="$b"
  taskset -c 0 "$NGINX" -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" 2>> "$dir/error.log" &
  B_PID[$b]=$!
  PIDS+=("${B_PID[$b]}")
  wait_for 10 curl -sf "http://127.0.0.1:${B_HTTP[$b]}/healthz" \
    || { cat "$dir/error.log" >&2; die "nginx $b did not answer in 10 s"; }
}
start_backend b1
start_backend b2
# stub_status → "accepts requests" of one backend.
backend_counts() { curl -sf --max-time 5 "http://127.0.0.1:${B_STATUS[$1]}/status" | awk 'NR == 3 { print $1, $3 }'; }
[ -n "$(backend_counts b1)" ] || die "nginx stub_status does not answer"

# --- 3. TLS and keys ---------------------------------------------------------------------------------
"$BIN" certs --certs-dir "$WORK/certs" > "$WORK/certs.log" 2>&1 || { cat "$WORK/certs.log" >&2; die "sealcast certs failed"; }
"$BIN" keys init --data-dir "$WORK/data" > "$WORK/keys.log" 2>&1 || { cat "$WORK/keys.log" >&2; die "sealcast keys init failed"; }
CA="$WORK/certs/ca.pem"
for f in ca.pem server.pem server.key; do [ -s "$WORK/certs/$f" ] || die "sealcast certs wrote no $f"; done
[ -s "$WORK/data/keys/cookie-key" ] || die "sealcast keys init wrote no cookie-key"
cat "$WORK/certs/server.pem" "$WORK/certs/server.key" > "$WORK/haproxy.pem"   # HAProxy: chain + key in one file

# --- 4. the backends' presence, for our load balancer -----------------------------------------------
LOAD_PIDS=()
trap 'kill "${LOAD_PIDS[@]}" 2> /dev/null || true; bench_cleanup' EXIT
for b in b1 b2; do
  t="sealcast/v1/nodes/bench-$b-$RUNID/presence"
  # The load balancer believes only presences signed with the cluster's edge key.
  "$PRESENCE" --keys-dir "$WORK/data/keys" "bench-$b-$RUNID" "http://127.0.0.1:${B_HTTP[$b]}" > "$WORK/presence-$b" \
    || die "sealcast-presence could not sign the presence of $b"
  timeout 5 mosquitto_pub "${MQ[@]}" -r -q 1 -t "$t" -f "$WORK/presence-$b" \
    || die "could not publish presence to $MQTT_URL"
done

# --- 5. the two load balancers, each on core 1 -----------------------------------------------------
HA_PORT="$(free_port)"
bench_render haproxy/lb.cfg "$WORK/haproxy.cfg" SOCKET="$WORK/haproxy.sock" PORT="$HA_PORT" \
  PEM="$WORK/haproxy.pem" B1_PORT="${B_HTTP[b1]}" B2_PORT="${B_HTTP[b2]}"
"$HAPROXY" -c -q -f "$WORK/haproxy.cfg" || die "HAProxy refuses $WORK/haproxy.cfg"
# ha_checks enable|disable: HAProxy's health checks, a new backend connection each time,
# are paused while the other load balancer is measured so they do not count against its
# connection reuse. (Ours reuses one pooled connection for its checks.)
ha_checks() {
  "$DRIVER" haproxy-health "$WORK/haproxy.sock" "$1"
}
taskset -c 1 "$HAPROXY" -db -f "$WORK/haproxy.cfg" > "$WORK/haproxy.log" 2>&1 &
HA_PID=$!
PIDS+=("$HA_PID")

OURS_PORT="$(free_port)"; METRICS_PORT="$(free_port)"
# --no-collapse: this measures what proxying a request costs. The nginx backends' answers
# carry no `Cache-Control: public`, so collapsing would share none of them and only make
# identical requests wait for each other (bench/llhls-lb.sh measures collapsing, with a node).
TOKIO_WORKER_THREADS=1 taskset -c 1 "$BIN" lb --data-dir "$WORK/data" --certs-dir "$WORK/certs" \
  --mqtt-url "$MQTT_URL" --https-listen "127.0.0.1:$OURS_PORT" --http-listen "127.0.0.1:$(free_port)" \
  --metrics-listen "127.0.0.1:$METRICS_PORT" --node-id "bench-lb-$RUNID" --no-access-log --no-limits --no-collapse \
  > "$WORK/lb.out" 2> "$WORK/lb.err" &
OURS_PID=$!
PIDS+=("$OURS_PID")
for ((i = 0; i < 300; i++)); do grep -qs '^player ' "$WORK/lb.out" && break; kill -0 "$OURS_PID" 2> /dev/null || break; sleep 0.1; done
grep -qs '^player ' "$WORK/lb.out" || { tail -20 "$WORK/lb.err" >&2; kill -0 "$OURS_PID" 2> /dev/null \
  && die "sealcast lb did not print its player line in 30 s" || die "sealcast lb exited (its log is above)"; }

ok200() { [ "$(curl -s --http2 --max-time 3 --cacert "$CA" -o /dev/null -w '%{http_code}' "$1")" = 200 ]; }
# up_ok PID URL: URL answers 200; 2 when PID has exited.
up_ok() { kill -0 "$1" 2> /dev/null || return 2; ok200 "$2"; }
wait_for 20 up_ok "$HA_PID" "https://localhost:$HA_PORT$PLAYLIST" \
  || { cat "$WORK/haproxy.log" >&2; die "HAProxy did not answer 200 on $PLAYLIST in 20 s"; }
wait_for 20 up_ok "$OURS_PID" "https://localhost:$OURS_PORT$PLAYLIST" \
  || { tail -20 "$WORK/lb.err" >&2; die "sealcast lb did not answer 200 on $PLAYLIST in 20 s (backends come from MQTT presence, then a health check)"; }
declare -A LB_PORT=([haproxy]="$HA_PORT" [sealcast]="$OURS_PORT")
declare -A LB_PID=([haproxy]="$HA_PID" [sealcast]="$OURS_PID")

# --- 6. one sticky cookie per backend from each load balancer ------------------------------------------
# COOKIE[lb.bN] = "sealcast_node=…"; new viewers (no cookie) until each backend was chosen once.
declare -A COOKIE
headers_of() { curl -s --http2 --max-time 5 --cacert "$CA" -D - -o /dev/null "$@" | tr -d '\r'; }
for lb in haproxy sealcast; do
  url="https://localhost:${LB_PORT[$lb]}$PLAYLIST"
  for ((i = 0; i < 40; i++)); do
    h="$(headers_of "$url")"
    node="$(awk -F': ' 'tolower($1) == "x-sealcast-node" { print $2 }' <<< "$h" | sed 's/^bench-//')"
    cookie="$(awk -F': ' 'tolower($1) == "set-cookie" { print $2 }' <<< "$h" | grep -o '^sealcast_node=[^;]*' || true)"
    [ -n "$node" ] && [ -n "$cookie" ] && COOKIE[$lb.$node]="$cookie"
    [ -n "${COOKIE[$lb.b1]:-}" ] && [ -n "${COOKIE[$lb.b2]:-}" ] && break
  done
  for b in b1 b2; do
    [ -n "${COOKIE[$lb.$b]:-}" ] || die "$lb never placed a new viewer on $b in 40 requests (last headers: $h)"
    # The cookie must keep the viewer there, without a new cookie.
    for _ in 1 2 3; do
      h="$(headers_of -H "cookie: ${COOKIE[$lb.$b]}" "$url")"
      grep -qix "x-sealcast-node: bench-$b" <<< "$h" || die "$lb: the cookie for $b is not sticky: $h"
      ! grep -qi '^set-cookie: sealcast_node' <<< "$h" || die "$lb: a sticky request got a new cookie: $h"
    done
  done
  echo "lb: $lb cookies: ${COOKIE[$lb.b1]} | ${COOKIE[$lb.b2]}" >&2
done
[ "$(curl -s --cacert "$CA" "https://localhost:$OURS_PORT$SEGMENT" | sha256sum)" = "$(sha256sum < "$WWW$SEGMENT")" ] \
  || die "sealcast lb serves different bytes for $SEGMENT"
[ "$(curl -s --cacert "$CA" "https://localhost:$HA_PORT$SEGMENT" | sha256sum)" = "$(sha256sum < "$WWW$SEGMENT")" ] \
  || die "HAProxy serves different bytes for $SEGMENT"

# --- 7. loads ------------------------------------------------------------------------------------------
# load SERVER KIND MODE RUN [SECONDS]: two h2load processes (one per backend cookie, half
# the clients each) on core 0; appends one JSON line to $WORK/results.jsonl, with what both
# printed and logged (start µs, status, µs to the end of the response) summed by
# `sealcast-bench sample h2load-pair`. SERVER is haproxy, sealcast or direct (the backends
# themselves, HTTP/1.1); KIND is playlist or segment; MODE is load (saturating) or paced.
load() {
  local server="$1" kind="$2" mode="$3" run="$4" secs="${5:-$SECS}" path b i before after cpu
  local -a args urls hdrs bb ba
  path="$PLAYLIST"; [ "$kind" = segment ] && path="$SEGMENT"
  if [ "$mode" = load ]; then
    args=(-c $((CLIENTS / 2)) -m "$STREAMS" -D "$secs")
  else
    args=(-c $((LAT_CLIENTS / 2)) -m 1 --rps "$LAT_RPS" -D "$secs")
  fi
  if [ "$server" = direct ]; then args+=(--h1); else args+=(--tls13-ciphers="$TLS13_CIPHER"); fi
  for b in b1 b2; do
    if [ "$server" = direct ]; then
      urls+=("http://127.0.0.1:${B_HTTP[$b]}$path"); hdrs+=("x-bench: direct")
    else
      urls+=("https://localhost:${LB_PORT[$server]}$path"); hdrs+=("cookie: ${COOKIE[$server.$b]}")
    fi
  done
  if [ "$server" = haproxy ]; then ha_checks enable; else ha_checks disable; fi
  read -r -a bb <<< "$(backend_counts b1) $(backend_counts b2)"
  [ ${#bb[@]} -eq 4 ] || die "nginx stub_status did not answer"
  before=0; [ "$server" = direct ] || before="$(cpu_ticks "${LB_PID[$server]}")"
  LOAD_PIDS=()
  for i in 0 1; do
    rm -f "$WORK/h2.$i.log"
    timeout $((secs + 30)) taskset -c 0 h2load -t1 "${args[@]}" -H "${hdrs[$i]}" \
      --log-file="$WORK/h2.$i.log" "${urls[$i]}" > "$WORK/h2.$i.out" 2>&1 &
    LOAD_PIDS+=($!)
  done
  for i in 0 1; do wait "${LOAD_PIDS[$i]}" || echo "lb: h2load exited with $? ($server $kind $mode)" >&2; done
  LOAD_PIDS=()
  cpu=0
  if [ "$server" != direct ]; then
    alive "${LB_PID[$server]}" "$server"
    after="$(cpu_ticks "${LB_PID[$server]}")"
    cpu="$("$DRIVER" calc cpu-seconds "$before" "$after" --hz "$HZ")"
  fi
  read -r -a ba <<< "$(backend_counts b1) $(backend_counts b2)"
  [ ${#ba[@]} -eq 4 ] || die "nginx stub_status did not answer"
  local out
  out="$("$DRIVER" sample h2load-pair "$WORK/h2.0.out" "$WORK/h2.1.out" "$WORK/h2.0.log" "$WORK/h2.1.log")"
  # Backend deltas, less the stub_status request that read the "after" figures (1 each).
  echo "{\"server\":\"$server\",\"kind\":\"$kind\",\"mode\":\"$mode\",\"run\":$run,\"cpu_s\":$cpu,\
\"backend\":{\"b1_accepts\":$((ba[0] - bb[0] - 1)),\"b1_requests\":$((ba[1] - bb[1] - 1)),\
\"b2_accepts\":$((ba[2] - bb[2] - 1)),\"b2_requests\":$((ba[3] - bb[3] - 1))},\"h2load\":$out}" >> "$WORK/results.jsonl"
  [ "$("$DRIVER" calc field requests "$out")" != 0 ] \
    || { cat "$WORK/h2.0.out" >&2; die "no request succeeded ($server $kind $mode)"; }
}

# Warm-up (page cache, connection pools, TLS session state), not recorded.
echo "lb: warm-up" >&2
for lb in haproxy sealcast; do load "$lb" segment load 0 2; done
# Both must have negotiated the same TLS version, suite and protocol.
"$DRIVER" check lb-tls "$WORK/results.jsonl" || die "the load balancers negotiated different TLS (see above)"
: > "$WORK/results.jsonl"

for run in $(seq 1 "$RUNS"); do
  if ((run % 2)); then order=(haproxy sealcast); else order=(sealcast haproxy); fi
  for kind in playlist segment; do
    echo "lb: run $run/$RUNS $kind, saturating (${order[*]})" >&2
    for s in "${order[@]}"; do load "$s" "$kind" load "$run"; done
  done
  # Latency: direct first in odd runs, last in even ones.
  if ((run % 2)); then lorder=(direct "${order[@]}"); else lorder=("${order[@]}" direct); fi
  for kind in playlist segment; do
    echo "lb: run $run/$RUNS $kind, paced (${lorder[*]})" >&2
    for s in "${lorder[@]}"; do load "$s" "$kind" paced "$run"; done
  done
done
curl -sf --max-time 5 "http://127.0.0.1:$METRICS_PORT/metrics" > "$WORK/lb.metrics" 2> /dev/null || : > "$WORK/lb.metrics"

# --- 8. report ------------------------------------------------------------------------------------------
bench_report_docs "$DOCS"
"$DRIVER" report lb "$WORK/results.jsonl" "$WORK/lb.metrics" --runs "$RUNS" --seconds "$SECS" \
  --clients "$CLIENTS" --streams "$STREAMS" --paced-clients "$LAT_CLIENTS" --paced-rps "$LAT_RPS" \
  --playlist-bytes "$PLAYLIST_BYTES" --segment-bytes "$SEGMENT_BYTES" --haproxy "$HAPROXY" --nginx "$NGINX" \
  --date "$(date +%F)" --results "$RESULTS" "${REPORT_DOCS[@]}"
