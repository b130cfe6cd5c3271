#!/usr/bin/env bash
# Benchmarks (docs/benchmarks.md), as far as the build allows: how long
# after a segment closes at the ingest it is listed on every broadcast node, how far apart
# the 3 nodes list it, and what the signature gate adds.
#
# `sealcast up --broadcast 3` gets a real-time `sealcast source` publish at 720p30 for
# SECONDS; the driver polls each node's 720p and src media playlists every 10 ms and
# records when each sequence number first appears on each node; the report gives the skew
# across nodes, the listing jitter against the publisher's clock and the signature gate's
# figures from the nodes' /metrics. There is no "verification off" switch to compare
# against. The driver runs it whole: `sealcast-bench run publish-latency`
# (bench/viewers/src/benches/publish_latency.rs says how).
# Writes bench/out/publish-latency.json and a section in docs/benchmarks.md.
#
# Usage: bench/publish-latency.sh [SECONDS]   (default 60; RENDITIONS=720p,src by default;
# `--no-doc` prints the section only, `--results FILE` puts the raw results there)
# Environment: SEALCAST_BIN, SEALCAST_BENCH (the driver; else the one beside the binary).
set -euo pipefail
GIVEN_BENCH="${SEALCAST_BENCH:+$(realpath "$SEALCAST_BENCH")}"
cd "$(dirname "$0")/.."
source scripts/setup.sh

source bench/lib.sh
bench_install publish-latency curl
if [ -n "${SEALCAST_BIN:-}" ]; then BIN="$(realpath "$SEALCAST_BIN")"; else bench_build; fi
bench_driver
exec "$DRIVER" run publish-latency --bin "$BIN" "$@"
