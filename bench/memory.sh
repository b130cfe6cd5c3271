#!/usr/bin/env bash
# Memory per idle viewer (issue 18): RSS a server adds for each idle keep-alive viewer
# connection, ours against the peers, side by side in the same run.
#
# Every measurement gets fresh processes (a process keeps memory it freed, so a second load
# on the same one would look free):
#   - node:    `sealcast up --broadcast 1` at the binary's defaults (a tokio worker per
#              core), a short `sealcast source` publish so that its live playlists exist,
#              then CONNECTIONS connections to the node's own port over plain HTTP/1.1;
#   - node-1w: the same with TOKIO_WORKER_THREADS=1, as the peers run one worker;
#   - nginx:   nginx 1.22 (`worker_processes 1`) serving a copy of the same playlists from
#              tmpfs, plain HTTP/1.1;
#   - lb, lb-1w: the same through `up`'s load balancer (Pingora) over TLS, HTTP/2 by ALPN;
#   - haproxy: HAProxy 2.6 (`nbthread 1`) over TLS, HTTP/2 by ALPN, in front of that `up`'s
#              node, TLS 1.3 offering only the cipher suite ours picks (both printed).
# Each connection (`sealcast-idle`, its own client) asks once for the master playlist, reads
# the answer whole and then stays open, idle. The server's RSS (VmRSS, all its processes) is
# read, once settled (settled_rss below), before the connections open and after they all
# have their answer; the difference over the connections held is the figure. RUNS runs, the targets interleaved (the order turns
# every run); median with min–max, and each peer's spread as its noise.
# Writes bench/out/memory.json and a section in docs/benchmarks.md (with the notes in
# bench/memory-notes.md: what a profile showed; edit them when the figures change;
# `sealcast-bench report memory`).
#
# 9,000 connections by default, not the 10,000 of the issue: the open-file limit here is
# 20,000 and cannot be raised, and HAProxy reserves two descriptors per client connection
# (its maxconn stops below 10,000); every server gets the same count.
#
# Usage: bench/memory.sh [RUNS [CONNECTIONS]]   (default 5 runs of 9,000 connections)
# Environment: TARGETS (default "node node-1w nginx lb lb-1w haproxy") narrows the list;
#   SEALCAST_BENCH=path   the report's sealcast-bench (default: the release build's).
set -euo pipefail
GIVEN_BENCH="${SEALCAST_BENCH:+$(realpath "$SEALCAST_BENCH")}"
cd "$(dirname "$0")/.."
RUNS="${1:-5}"
CONNS="${2:-9000}"
source bench/lib.sh
[[ "$RUNS" =~ ^[1-9][0-9]*$ && "$CONNS" =~ ^[1-9][0-9]*$ ]] || die "usage: bench/memory.sh [RUNS [CONNECTIONS]]"
[ "$(ulimit -Hn)" = unlimited ] || [ "$(ulimit -Hn)" -gt $((CONNS + 512)) ] \
  || die "the open-file limit ($(ulimit -Hn)) is below $CONNS connections"
ulimit -n "$(ulimit -Hn)"

source scripts/setup.sh
bench_install memory nginx haproxy curl openssl util-linux
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
HAPROXY="$(command -v haproxy || echo /usr/sbin/haproxy)"
bench_tmpfs_workdir memory
bench_build # also builds sealcast-idle (the viewers package)
IDLE="$PWD/target/release/sealcast-idle"
bench_driver
bench_clear_env

# rss_kb PID...: VmRSS of the processes summed, in KiB.
rss_kb() {
  local total=0 pid kb
  for pid in "$@"; do
    kb="$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")"
    total=$((total + kb))
  done
  echo "$total"
}

# settled_rss PID...: VmRSS of the processes summed (KiB) once it has settled: sampled
# every second until SETTLE consecutive samples (default 12) stay within 1 % of each other,
# at most 90 s. Allocators give freed memory back to the system some time after it was
# freed, and only when something wakes them: mimalloc purges a second or more later, on
# its next collection. Reading at a fixed moment caught the node's RSS before or after
# that purge by chance.
settled_rss() {
  local samples=() kb i lo hi n="${SETTLE:-12}"
  for i in $(seq 1 90); do
    kb="$(rss_kb "$@")"
    samples+=("$kb")
    if [ "${#samples[@]}" -ge "$n" ]; then
      lo="$(printf '%s\n' "${samples[@]: -$n}" | sort -n | head -1)"
      hi="$(printf '%s\n' "${samples[@]: -$n}" | sort -n | tail -1)"
      if [ $((hi - lo)) -le $((hi / 100)) ]; then echo "$kb"; return; fi
    fi
    sleep 1
  done
  echo "memory: RSS of $* did not settle in 90 s; last sample taken" >&2
  echo "$kb"
}

# stop PID: stops a process started here and waits for it.
stop() { kill "$1" 2> /dev/null || true; wait "$1" 2> /dev/null || true; }

# start_up DIR [WORKERS]: a fresh `up` with one node; sets UP_PID, NODE, PLAYER, CA. The
# stream `main` is published for 4 s (it ends; its playlists stay). WORKERS: tokio worker
# threads (TOKIO_WORKER_THREADS); empty for the binary's default, one per core.
start_up() {
  local dir="$1" workers="${2:-}" rtmp key
  rm -rf "$dir"; mkdir -p "$dir"
  # --no-limits: every connection here comes from one address, which the per-client limits
  # would refuse after a few hundred.
  env ${workers:+TOKIO_WORKER_THREADS=$workers} "$BIN" up --data-dir "$dir/data" --certs-dir "$dir/certs" --broadcast 1 --no-limits \
    --rtmp-listen 127.0.0.1:0 --broadcast-listen 127.0.0.1:0 --mqtt-listen 127.0.0.1:0 \
    --https-listen 127.0.0.1:0 --http-listen 127.0.0.1:0 --srt-listen 127.0.0.1:0 \
    --webrtc-listen 127.0.0.1:0 > "$dir/up.out" 2> "$dir/up.err" &
  UP_PID=$!
  PIDS+=("$UP_PID")
  for _ in $(seq 1 300); do grep -q '^broadcast1 ' "$dir/up.out" && break; sleep 0.1; done
  grep -q '^broadcast1 ' "$dir/up.out" || { tail "$dir/up.err" >&2; die "sealcast up did not start"; }
  NODE="$(awk '/^broadcast1 /{print $2}' "$dir/up.out")"; NODE="${NODE%/}"
  PLAYER="$(awk '/^player /{print $2}' "$dir/up.out")"; PLAYER="${PLAYER%/}"
  CA="$dir/certs/ca.pem"
  rtmp="$(awk '/^obs-server /{print $2}' "$dir/up.out")"
  key="$(awk '/^stream-key main /{print $3}' "$dir/up.out")"
  SEALCAST_SOURCE_URL="$rtmp/$key" "$BIN" source --size 640x360 --fps 30 --duration 4 > "$dir/source.log" 2>&1
  for _ in $(seq 1 200); do
    curl -sf "$NODE/live/main/master.m3u8" > /dev/null 2>&1 && break
    sleep 0.1
  done
  curl -sf "$NODE/live/main/master.m3u8" > /dev/null || die "the node lists no stream"
}

# hold URL PID... -- IDLE-ARGS: opens the connections, reads RSS of PID... before and once
# all have answered; prints "before after open failed".
hold() {
  local url="$1"; shift
  local pids=() before after fifo="$WORK/hold.fifo" line open failed idle_pid
  while [ "$1" != "--" ]; do pids+=("$1"); shift; done; shift
  # A few requests first, so that what one request sets up once is in "before".
  for _ in 1 2 3 4 5; do curl -sfk -o /dev/null "$url" || true; done
  before="$(settled_rss "${pids[@]}")"
  rm -f "$fifo"; mkfifo "$fifo"
  "$IDLE" "$url" --connections "$CONNS" --concurrency 64 "$@" < "$fifo" > "$WORK/idle.out" 2> "$WORK/idle.err" &
  idle_pid=$!
  exec 9> "$fifo"
  for _ in $(seq 1 1200); do [ -s "$WORK/idle.out" ] && break; kill -0 "$idle_pid" 2> /dev/null || break; sleep 0.1; done
  line="$(head -1 "$WORK/idle.out")"
  [ -n "$line" ] || { cat "$WORK/idle.err" >&2; exec 9>&-; die "sealcast-idle gave no report for $url"; }
  after="$(settled_rss "${pids[@]}")"
  exec 9>&-
  wait "$idle_pid" || true
  open="$("$DRIVER" calc field open "$line")"
  failed="$("$DRIVER" calc field failed "$line")"
  [ "$failed" -eq 0 ] || echo "memory: $failed of $CONNS connections to $url failed: $line" >&2
  echo "$before $after $open $failed"
}

# cipher URL: the TLS version and cipher suite a server picks with curl's defaults.
cipher() {
  local hostport="${1#https://}"; hostport="${hostport%%/*}"
  openssl s_client -connect "$hostport" -alpn h2 -CAfile "$CA" < /dev/null 2> /dev/null \
    | awk '/^New, / { print $2, $5 }' | head -1
}

RAW="$WORK/raw.txt"; : > "$RAW"
# The TLS version and suite each TLS target negotiated (none when TARGETS has no TLS one).
: > "$WORK/ciphers"
# node and lb: the binary's defaults (a tokio worker per core); node-1w and lb-1w: one
# worker, as the peers run one. TARGETS narrows the list.
read -r -a TARGETS <<< "${TARGETS:-node node-1w nginx lb lb-1w haproxy}"
for ((run = 1; run <= RUNS; run++)); do
  # The order turns every run.
  turn=$(((run - 1) % ${#TARGETS[@]}))
  order=("${TARGETS[@]:$turn}" "${TARGETS[@]:0:$turn}")
  for target in "${order[@]}"; do
    workers=""
    case "$target" in *-1w) workers=1 ;; esac
    case "$target" in
      node | node-1w)
        start_up "$WORK/up" "$workers"
        r="$(hold "$NODE/live/main/master.m3u8" "$UP_PID" -- --http1)"
        stop "$UP_PID"
        ;;
      nginx)
        start_up "$WORK/up"
        WWW="$WORK/www"; rm -rf "$WWW"; mkdir -p "$WWW/live/main"
        curl -sf "$NODE/live/main/master.m3u8" -o "$WWW/live/main/master.m3u8"
        stop "$UP_PID"
        chmod -R a+rX "$WWW"
        port="$(free_port)"; mkdir -p "$WORK/nginx/tmp"
        bench_render nginx/memory.conf "$WORK/nginx/nginx.conf" DIR="$WORK/nginx" PORT="$port" ROOT="$WWW" \
          NOFILE=$((CONNS + 1024)) CONNECTIONS=$((CONNS + 512))
        "$NGINX" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log" 2>> "$WORK/nginx/error.log" &
        ngx=$!
        PIDS+=("$ngx")
        for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/live/main/master.m3u8" > /dev/null 2>&1 && break; sleep 0.05; done
        r="$(hold "http://127.0.0.1:$port/live/main/master.m3u8" "$ngx" $(pgrep -P "$ngx") -- --http1)"
        stop "$ngx"
        ;;
      lb | lb-1w)
        start_up "$WORK/up" "$workers"
        echo "memory: lb TLS $(cipher "$PLAYER")" >&2
        echo "lb-cipher $(cipher "$PLAYER")" >> "$WORK/ciphers"
        r="$(hold "$PLAYER/live/main/master.m3u8" "$UP_PID" -- --ca "$CA")"
        stop "$UP_PID"
        ;;
      haproxy)
        start_up "$WORK/up"
        # HAProxy offers only the suite our load balancer picks, so both pay the same.
        ours="$(cipher "$PLAYER" | awk '{ print $2 }')"
        [ -n "$ours" ] || die "no TLS cipher suite from our load balancer"
        port="$(free_port)"
        cat "$WORK/up/certs/server.pem" "$WORK/up/certs/server.key" > "$WORK/haproxy.pem"
        bench_render haproxy/memory.cfg "$WORK/haproxy.cfg" PORT="$port" PEM="$WORK/haproxy.pem" \
          SUITE="$ours" MAXCONN=$((CONNS + 200)) SERVER="${NODE#http://}"
        "$HAPROXY" -db -f "$WORK/haproxy.cfg" > "$WORK/haproxy.log" 2>&1 &
        ha=$!
        PIDS+=("$ha")
        for _ in $(seq 1 100); do curl -sf --cacert "$CA" "https://localhost:$port/live/main/master.m3u8" > /dev/null 2>&1 && break; sleep 0.05; done
        echo "memory: haproxy TLS $(cipher "https://localhost:$port")" >&2
        echo "haproxy-cipher $(cipher "https://localhost:$port")" >> "$WORK/ciphers"
        r="$(hold "https://localhost:$port/live/main/master.m3u8" "$ha" -- --ca "$CA")"
        stop "$ha"
        stop "$UP_PID"
        ;;
    esac
    echo "memory: run $run $target: $r (RSS KiB before, after; connections open, failed)" >&2
    echo "$run $target $r" >> "$RAW"
  done
done

"$DRIVER" report memory "$RAW" "$WORK/ciphers" --connections "$CONNS" --runs "$RUNS" --date "$(date +%F)"
