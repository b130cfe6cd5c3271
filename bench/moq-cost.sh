#!/usr/bin/env bash
# Issue 48's cost goals: viewers per server CPU-second over MoQ against the same node's
# LL-HLS viewers, and memory per connected viewer, measured side by side in one run.
#
# The live stream as bench/llhls-node.sh has it (bench_ll_cluster, bench_ll_publish): a
# mosquitto broker, `sealcast ingest` and `sealcast source` (640x360 30 fps, ~730 kb/s, 2 s
# GOP, the source rung only, named 360p, CMAF, parts of 0.333 s), all on core 1. On core 0,
# the servers under test: one `sealcast broadcast` node at its shipping defaults, which
# also publishes the stream to a moq-relay (0.17.10, a release build; anonymous rules,
# loopback only, path MTU discovery on as the product's relays run) as the product does
# with `--moq-relay`.
#
# The systems, each with VIEWERS viewers on core 1 (one thread), interleaved over RUNS
# runs, the order rotating:
#   - ll-hls: `sealcast-viewers --mode ll` against the node (hls.js in low-latency mode:
#     blocking reloads, preload hints, one HTTP/1.1 keep-alive client per viewer, each from
#     its own loopback address);
#   - ll-tls: the same LL-HLS viewers as browsers reach the node, through `sealcast lb`
#     over TLS (its shipping defaults, the certificate `sealcast certs` made), one HTTP/2
#     connection each: the servers are the lb and the node. MoQ's transport is encrypted
#     by design, so this is the LL-HLS figure to set it beside; `ll-hls` is the node alone
#     (plain HTTP/1.1, no encryption) as bench/llhls-node.sh measures it;
#   - moq: `sealcast-moq-viewers` against the relay (a QUIC connection per viewer, the
#     rendition's media and statements tracks, every object read);
#   - nginx, the peer: nginx (one worker, sendfile) serving a mirror of the node's LL-HLS
#     files (bench_ll_nginx, as bench/llhls-node.sh has it), its viewers polling
#     (`sealcast-viewers --mode ll-poll`: the playlist every part target, each new part at
#     once), the LL-HLS a server that cannot hold a request offers.
# For each: the servers' CPU (node + relay; lb + node for ll-tls; nginx's master and worker
# for nginx, /proc)
# over WINDOW seconds without viewers,
# then, once every viewer is in and SETTLE seconds more have passed, over WINDOW seconds
# with them; the difference divided by the viewers is a viewer's cost; its inverse,
# viewers per server CPU-second. Memory per viewer: the servers' resident memory with the
# viewers in, less without, divided by the viewers. The viewers report stalls (and MoQ's,
# how much later than the first viewer each viewer got each object): a system whose
# viewers stalled did not hold them, and the report says so.
#
# With RELAY_VARIANT (moq-relay flags, e.g. "--quic-congestion-control loss"; the first
# relay has the product's, `--quic-mtu-discovery`, itself measured so on 2026-11-29), a
# second relay runs with them beside the first, the node publishes to both, and a fourth
# system, `moq+` (node + that relay), is measured in the same rotation: what a relay
# setting is worth. moq-relay's io_uring workers (`--runtime-workers 1 --runtime-io-uring`,
# Linux 6.12+) need a build with its `io-uring` feature: point SEALCAST_MOQ_RELAY_BIN at
# one (`cargo install moq-relay --version 0.17.10 --features io-uring --root DIR`); both
# relays then run that binary, the first without the flags.
#
# Writes bench/out/moq-cost.json and the section "## MoQ viewers' cost on one node" of
# docs/benchmarks.md (MOQ_COST_DOCS= skips it), by `sealcast-bench report moq-cost`.
#
# Usage: bench/moq-cost.sh [VIEWERS] [RUNS]   (defaults 200 and 3)
# Environment: SEALCAST_BIN (its bench tools beside it), SEALCAST_BENCH, RELAY_VARIANT, WINDOW (20),
# SETTLE (5), JOIN (10), SEALCAST_MOQ_RELAY_BIN (else the release build, made once into
# ~/.cache/sealcast/moq-relay-release).
set -euo pipefail
GIVEN_BIN="${SEALCAST_BIN:+$(realpath "$SEALCAST_BIN")}"
GIVEN_BENCH="${SEALCAST_BENCH:+$(realpath "$SEALCAST_BENCH")}"
RELAY="${SEALCAST_MOQ_RELAY_BIN:-}"
cd "$(dirname "$0")/.."
VIEWERS_N="${1:-200}"
RUNS="${2:-3}"
WINDOW="${WINDOW:-20}"; SETTLE="${SETTLE:-5}"; JOIN="${JOIN:-10}"
STREAM=ll
source bench/lib.sh
[[ "$VIEWERS_N" =~ ^[1-9][0-9]*$ && "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "usage: bench/moq-cost.sh [VIEWERS] [RUNS]"
[ "$(nproc)" -ge 2 ] || die "needs two cores (servers on core 0, everything else on core 1)"
# A release build of moq-relay, built once (about 12 minutes on 2 cores): the debug build
# scripts/setup.sh makes for the tests would be measured at a fraction of its speed.
if [ -z "$RELAY" ]; then
  root="$HOME/.cache/sealcast/moq-relay-release"
  RELAY="$root/bin/moq-relay"
  if [ ! -x "$RELAY" ]; then
    echo "moq-cost: building moq-relay 0.17.10 (release) into $root" >&2
    cargo install --quiet --force moq-relay --version 0.17.10 --root "$root" --target-dir "$root/target" >&2
    rm -rf "$root/target"
  fi
fi
[ -x "$RELAY" ] || die "no moq-relay at $RELAY"
ulimit -n "$(ulimit -Hn)"
NOFILE="$(ulimit -n)"
[ "$NOFILE" != unlimited ] || NOFILE=1048576
bench_clear_env
bench_install moq-cost mosquitto nginx curl util-linux openssl
SEALCAST_BIN="$GIVEN_BIN" bench_binary
bench_tool sealcast-viewers; LL_VIEWERS="$TOOL"
bench_tool sealcast-moq-viewers; MOQ_VIEWERS="$TOOL"
bench_driver
bench_tmpfs_workdir moq-cost
pin() { local core="$1" p; shift; for p in "$@"; do taskset -a -pc "$core" "$p" > /dev/null; done; }
rss_kib() { local total=0 p k; for p in "$@"; do k="$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status")"; total=$((total + k)); done; echo "$total"; }

bench_mosquitto 1 || die "no broker"
bench_ll_cluster "$STREAM" 0.333 || die "could not set up the cluster"

# relay NAME FLAGS...: a moq-relay on core 0, on a port free for both QUIC (UDP) and its
# HTTP side (TCP), with a certificate of its own; sets STARTED_PID, STARTED_URL and
# STARTED_FINGERPRINT. The relay generates its certificate, except with
# `--runtime-workers` (per-core workers, which moq-relay will not combine with a generated
# one): then a self-signed P-256 certificate made here, valid 10 days (what a browser's
# `serverCertificateHashes` accepts), from files.
relay() {
  local name="$1" port; shift
  local -a tls=(--listen-tls-generate localhost)
  if [[ " $* " == *" --runtime-workers "* ]]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 10 -subj /CN=localhost \
      -addext subjectAltName=DNS:localhost -keyout "$WORK/$name.key" -out "$WORK/$name.crt" 2> /dev/null \
      || die "openssl could not make $name's certificate"
    tls=(--listen-tls-cert "$WORK/$name.crt" --listen-tls-key "$WORK/$name.key")
  fi
  port="$(free_port)"
  bench_start "$name" 0 "$RELAY" --listen "127.0.0.1:$port" "${tls[@]}" \
    --web-http-listen "127.0.0.1:$port" --auth-public '**' "$@"
  STARTED_PID=$LAST_PID
  bench_wait_for 20 curl -sf "http://127.0.0.1:$port/certificate.sha256" || die "$name ($*) did not start: $(tail -3 "$WORK/$name.err")"
  STARTED_FINGERPRINT="$(curl -sf "http://127.0.0.1:$port/certificate.sha256")"
  STARTED_URL="https://localhost:$port/"
}
relay relay --quic-mtu-discovery
RELAY_PID=$STARTED_PID; RELAY_URL=$STARTED_URL; FINGERPRINT=$STARTED_FINGERPRINT
RELAYS="$RELAY_URL"; FINGERPRINTS="$FINGERPRINT"
SYSTEMS=(ll-hls ll-tls moq nginx)
if [ -n "${RELAY_VARIANT:-}" ]; then
  read -r -a variant_flags <<< "$RELAY_VARIANT"
  relay relay2 "${variant_flags[@]}"
  RELAY2_PID=$STARTED_PID; RELAY2_URL=$STARTED_URL; FINGERPRINT2=$STARTED_FINGERPRINT
  RELAYS="$RELAYS,$RELAY2_URL"; FINGERPRINTS="$FINGERPRINTS,$FINGERPRINT2"
  SYSTEMS+=(moq+)
fi

NODE_PORT="$(free_port)"
taskset -c 0,1 "$BIN" broadcast --data-dir "$DATA" --config "$WORK/sealcast.toml" \
  --listen "127.0.0.1:$NODE_PORT" --node-id moqnode --recordings "$WORK/rec" --ready-timeout 2 \
  --moq-relay "$RELAYS" --moq-relay-fingerprint "$FINGERPRINTS" \
  > "$WORK/node.out" 2> "$WORK/node.err" &
NODE_PID=$!
PIDS+=("$NODE_PID")
bench_wait_for 30 grep -q "^moqnode " "$WORK/node.out" || { alive "$NODE_PID" node; die "the node did not report ready in 30 s"; }
NODE_URL="http://127.0.0.1:$NODE_PORT"
bench_ll_publish 1 || die "could not publish"
listed() { curl -sf --max-time 2 "$NODE_URL/live/$STREAM/360p/index.m3u8" | "$DRIVER" check ll-window; }
bench_wait_for 60 listed || { alive "$SOURCE_PID" "sealcast source"; die "the node did not list 3 segments with parts in 60 s"; }
bench_ll_nginx "$NODE_URL" "$STREAM" "$NOFILE" || die "could not put nginx on a mirror of the node"
echo "moq-cost: nginx $NGINX_URL mirrors the node (part $NGINX_SAME_PART: the same bytes)" >&2
# The load balancer over TLS in front of the node, finding it by its signed presence.
bench_ll_lb moqlb "/live/$STREAM/360p/index.m3u8"
pin 0 "$NODE_PID" "$RELAY_PID" "$LB_PID" ${RELAY2_PID:+"$RELAY2_PID"}
TCK="$(getconf CLK_TCK)"

# measure SYSTEM RUN: one measurement, a JSON line appended to $WORK/runs.jsonl.
measure() {
  local system="$1" run="$2" t0 t1 idle_rss busy_rss vpid out="$WORK/viewers-$1-$2.json"
  local lasts=$((JOIN + SETTLE + WINDOW + 3)) servers=("$NODE_PID" "$RELAY_PID")
  [ "$system" != nginx ] || read -r -a servers <<< "$NGINX_PIDS"
  [ "$system" != moq+ ] || servers=("$NODE_PID" "$RELAY2_PID")
  [ "$system" != ll-tls ] || servers=("$NODE_PID" "$LB_PID")
  alive "$SOURCE_PID" "sealcast source"; alive "$NODE_PID" node; alive "$RELAY_PID" moq-relay
  alive "$LB_PID" lb
  alive "$MIRROR_PID" mirror
  echo "moq-cost: run $run/$RUNS $system ($VIEWERS_N viewers)" >&2
  idle_rss="$(rss_kib "${servers[@]}")"
  t0="$(cpu_ticks "${servers[@]}")"; sleep "$WINDOW"; t1="$(cpu_ticks "${servers[@]}")"
  local idle=$((t1 - t0))
  case "$system" in
    ll-hls) taskset -c 1 "$LL_VIEWERS" "$NODE_URL/live/$STREAM/master.m3u8" --mode ll --rendition 360p \
        --threads 1 --http1 --viewers "$VIEWERS_N" --sources "$VIEWERS_N" --ramp "$JOIN" \
        --duration "$lasts" --timeout 15 > "$out" 2> "$WORK/viewers-$system-$run.err" & ;;
    ll-tls) taskset -c 1 "$LL_VIEWERS" "$LB_URL/live/$STREAM/master.m3u8" --mode ll --rendition 360p \
        --threads 1 --ca "$CA" --viewers "$VIEWERS_N" --sources "$VIEWERS_N" --ramp "$JOIN" \
        --duration "$lasts" --timeout 15 > "$out" 2> "$WORK/viewers-$system-$run.err" & ;;
    nginx) taskset -c 1 "$LL_VIEWERS" "$NGINX_URL/live/$STREAM/master.m3u8" --mode ll-poll --rendition 360p \
        --threads 1 --http1 --viewers "$VIEWERS_N" --sources "$VIEWERS_N" --ramp "$JOIN" \
        --duration "$lasts" --timeout 15 > "$out" 2> "$WORK/viewers-$system-$run.err" & ;;
    moq|moq+) local url="$RELAY_URL" pin_hash="$FINGERPRINT"
      [ "$system" != moq+ ] || { url="$RELAY2_URL"; pin_hash="$FINGERPRINT2"; }
      taskset -c 1 "$MOQ_VIEWERS" "$url" "$STREAM" --fingerprint "$pin_hash" --track 360p \
        --viewers "$VIEWERS_N" --ramp "$JOIN" --duration "$((lasts - JOIN))" \
        > "$out" 2> "$WORK/viewers-$system-$run.err" & ;;
  esac
  vpid=$!
  PIDS+=("$vpid")
  sleep $((JOIN + SETTLE))
  busy_rss="$(rss_kib "${servers[@]}")"
  t0="$(cpu_ticks "${servers[@]}")"; sleep "$WINDOW"; t1="$(cpu_ticks "${servers[@]}")"
  wait "$vpid" || die "the $system viewers failed: $(tail -3 "$WORK/viewers-$system-$run.err")"
  printf '{"system":"%s","run":%d,"viewers":%d,"window_s":%d,"idle_cpu_s":%s,"busy_cpu_s":%s,"idle_rss_kib":%d,"busy_rss_kib":%d,"report":%s}\n' \
    "$system" "$run" "$VIEWERS_N" "$WINDOW" "$(awk -v t="$idle" -v h="$TCK" 'BEGIN { printf "%.3f", t / h }')" \
    "$(awk -v t="$((t1 - t0))" -v h="$TCK" 'BEGIN { printf "%.3f", t / h }')" "$idle_rss" "$busy_rss" \
    "$(tr -d '\n' < "$out")" >> "$WORK/runs.jsonl"
  # Connections closed before the next measurement.
  sleep 3
}

for ((run = 1; run <= RUNS; run++)); do
  # Rotate: each system leads in turn.
  for i in "${!SYSTEMS[@]}"; do measure "${SYSTEMS[$(((i + run - 1) % ${#SYSTEMS[@]}))]}" "$run"; done
done
bench_report_docs "${MOQ_COST_DOCS-docs/benchmarks.md}"
"$DRIVER" report moq-cost "$WORK/runs.jsonl" --date "$(date -u +%F)" --viewers "$VIEWERS_N" --runs-given "$RUNS" \
  --variant="${RELAY_VARIANT:-}" "${REPORT_DOCS[@]}"
