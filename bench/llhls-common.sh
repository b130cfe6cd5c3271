# Sourced by bench/llhls-node.sh and bench/llhls-lb.sh (ROW: node or lb), not run by
# itself: what the driver cannot do for itself (install what is missing, raise the
# open-files limit, find or build the binaries), then `sealcast-bench run llhls`, which
# runs the benchmark whole: the cluster, nginx or HAProxy beside it, the interleaved
# ramps, the report (bench/viewers/src/benches/llhls.rs says how).
#
# Environment: SEALCAST_BIN, VIEWERS_BIN (prebuilt binaries), SEALCAST_BENCH (the driver),
# LLHLS_DOCS (the doc; LLHLS_DOCS= leaves it alone), and what
# `sealcast-bench run llhls --help` lists: LLHLS_RESULTS, SYSTEMS, START, STEP, GROWTH,
# MAX_VIEWERS, STEP_SECS, JOIN_SECS, SETTLE_SECS, TTFB_MS, ARRIVAL, SOURCES, PART_TARGET,
# LAG_LIMIT_MS, GEN_BUSY.

# Relative paths are relative to where the script was started.
[ -z "${SEALCAST_BIN:-}" ] || SEALCAST_BIN="$(realpath -m "$SEALCAST_BIN")"
[ -z "${VIEWERS_BIN:-}" ] || VIEWERS_BIN="$(realpath -m "$VIEWERS_BIN")"
[ -z "${LLHLS_RESULTS:-}" ] || export LLHLS_RESULTS="$(realpath -m "$LLHLS_RESULTS")"
[ -z "${LLHLS_DOCS:-}" ] || LLHLS_DOCS="$(realpath -m "$LLHLS_DOCS")"
GIVEN_BENCH="${SEALCAST_BENCH:+$(realpath "$SEALCAST_BENCH")}"
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source bench/lib.sh
bench_install "llhls-$ROW" nginx haproxy mosquitto curl openssl util-linux procps
# An LL-HLS viewer keeps up to 3 connections; the driver checks MAX_VIEWERS against this.
ulimit -n "$(ulimit -Hn)"
bench_binary
bench_driver
VIEWERS="${VIEWERS_BIN:-}"
if [ -z "$VIEWERS" ]; then bench_tool sealcast-viewers; VIEWERS="$TOOL"; fi
bench_report_docs "${LLHLS_DOCS-docs/benchmarks.md}"
exec "$DRIVER" run llhls "${REPORT_DOCS[@]}" --row "$ROW" --bin "$BIN" --viewers-bin "$VIEWERS" "$@"
