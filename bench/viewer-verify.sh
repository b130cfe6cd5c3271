#!/usr/bin/env bash
# Viewer verification (issue 31): what it costs a viewer to check every fragment itself.
# One `sealcast up` (one broadcast node, the load balancer) with the source rung and a
# 360p rung, LL-HLS parts of 0.333 s, fed 720p30 by `sealcast source`; one Chromium viewer
# at a time plays the 360p rung through the load balancer for SECONDS, once with the
# browser's own WebCrypto and once with the vendored library forced (`?verify=library`),
# ROUNDS times; the page's own records give the verification CPU and the requests and
# bytes verification adds per viewer-second. The added latency per part is
# bench/latency.sh's `ll` against `ll-noverify`. The driver runs it whole: `sealcast-bench
# run viewer-verify` (bench/viewers/src/benches/viewer_verify.rs says how).
#
# Writes bench/out/viewer-verify.json and a section in docs/benchmarks.md.
#
# Usage: bench/viewer-verify.sh [SECONDS] [ROUNDS]   (defaults 60 and 3; `--results FILE`
# puts the raw results there)
# Environment: SEALCAST_BIN, SEALCAST_BENCH (else the release build's); VIEWER_VERIFY_DOCS
# (default docs/benchmarks.md; empty prints the section only, as every script's *_DOCS=).
set -euo pipefail
GIVEN_BENCH="${SEALCAST_BENCH:+$(realpath "$SEALCAST_BENCH")}"
[ -z "${SEALCAST_BIN:-}" ] || SEALCAST_BIN="$(realpath "$SEALCAST_BIN")"
cd "$(dirname "$0")/.."
source scripts/setup.sh

source bench/lib.sh
bench_install viewer-verify chromium chromium-driver curl
bench_binary
bench_driver
bench_report_docs "${VIEWER_VERIFY_DOCS-docs/benchmarks.md}"
exec "$DRIVER" run viewer-verify "${REPORT_DOCS[@]}" --bin "$BIN" "$@"
