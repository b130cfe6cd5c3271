#!/usr/bin/env bash
# Benchmark (docs/benchmarks.md): load-balancer overhead, `sealcast lb` (Pingora) vs
# HAProxy 2.6, both sticky by cookie, over TLS with HTTP/2, in front of the same two nginx
# backends (files on tmpfs, a stub_status port each).
#
# Our load balancer learns the backends from signed, retained MQTT presence on the run's
# own Mosquitto; HAProxy from its configuration (bench/peers/haproxy/lb.cfg). One thread
# each, pinned to core 1; h2load and the backends on core 0. One sticky cookie per backend
# from each load balancer, then two h2load processes, half the clients each, one cookie
# each. Loads, interleaved ours/HAProxy (the order flips every run), RUNS times each:
# saturating (h2load -c CLIENTS -m STREAMS -D SECONDS, the playlist then the segment; the
# load balancer's CPU around each gives CPU ms per 1000 requests and per MB), and paced
# (h2load -c LAT_CLIENTS -m 1 --rps LAT_RPS through each and directly on the backends over
# HTTP/1.1: the added p50/p99 latency). Backend connection reuse from the stub_status
# deltas; HAProxy's health checks are paused through its stats socket while ours is
# measured. Ratios are HAProxy / ours: > 1 means we are ahead; HAProxy against itself is
# the noise floor. Goal (issue 18): HAProxy CPU / ours >= 1.2, added p99 < 200 µs, reuse
# >= 99 %. The driver runs it whole: `sealcast-bench run lb` (bench/viewers/src/benches/
# lb.rs says how); the report is `sealcast-bench report lb`.
#
# Writes bench/out/lb.json and a section in docs/benchmarks.md (LB_RESULTS and LB_DOCS
# move them; LB_DOCS= skips the docs) and prints the table.
#
# Usage: bench/lb.sh [RUNS [SECONDS]]   (default 5 runs of 10 s per load)
# Environment:
#   SEALCAST_BIN=path   a prebuilt sealcast binary instead of `cargo build --release`
#   SEALCAST_BENCH=path the report's sealcast-bench (default: the one beside SEALCAST_BIN)
#   CLIENTS=100 STREAMS=1   saturating load; LAT_CLIENTS=10 LAT_RPS=50   paced load
#   TLS13_CIPHER=TLS_AES_128_GCM_SHA256   the only suite h2load offers (both sides then use
#     it; the run stops if they negotiated different ones)
# Smoke run: LB_DOCS= LB_RESULTS=/tmp/lb.json CLIENTS=10 bench/lb.sh 1 2
set -euo pipefail
# A relative SEALCAST_BIN is relative to where the script was started.
[ -z "${SEALCAST_BIN:-}" ] || SEALCAST_BIN="$(realpath -m "$SEALCAST_BIN")"
GIVEN_BENCH="${SEALCAST_BENCH:+$(realpath "$SEALCAST_BENCH")}"
cd "$(dirname "$0")/.."
source bench/lib.sh
bench_install lb haproxy nghttp2-client nginx mosquitto mosquitto-clients curl util-linux
bench_binary
# Signs the backends' presences (bench/viewers/src/presence.rs).
bench_tool sealcast-presence
PRESENCE="$TOOL"
bench_driver
bench_report_docs "${LB_DOCS-docs/benchmarks.md}"
exec "$DRIVER" run lb "${REPORT_DOCS[@]}" --bin "$BIN" --presence-bin "$PRESENCE" "$@"
