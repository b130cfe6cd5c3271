#!/usr/bin/env bash
# Where the load balancer's CPU goes, counted repeatably: user-space instructions per
# request of `sealcast lb` (Pingora) and of HAProxy 2.6, each run under valgrind's callgrind
# with the same load, in front of the same nginx backend, over TLS 1.3 (one suite, h2 by
# ALPN), sticky by cookie. Instruction counts do not depend on what else the machine runs,
# so this complements bench/lb.sh's CPU-seconds (which include the kernel's share).
#
# For the playlist (193 B): h2load -c CLIENTS -n REQUESTS --rps PLAYLIST_RPS; for the
# segment (200 KiB): -c SEG_CLIENTS -n REQUESTS/20 --rps SEGMENT_RPS; each with the
# backend's cookie, after an uncounted warm-up. Instrumentation is switched on just before
# the load and off just after it; the clients' TLS handshakes are counted. Ours is then
# broken down by the crate each instruction's function comes from. The driver runs it
# whole: `sealcast-bench run lb-profile` (bench/viewers/src/benches/lb_profile.rs says how).
#
# Read with care: valgrind's virtual CPU has no SHA extensions and no VAES, so SHA-256
# (the sticky cookie's HMAC) and AES-GCM take slower code paths here than on the machine;
# the crypto share is overstated for both. And valgrind counts every byte a `rep movsb`
# copies as one instruction (glibc's memcpy uses it for large copies on CPUs with ERMS/FSRM,
# as here): copies are overstated for both, so each figure is also given without memcpy.
#
# Writes bench/out/lb-profile.json and its section of docs/benchmarks.md
# (LB_PROFILE_RESULTS and LB_PROFILE_DOCS move them; LB_PROFILE_DOCS= skips the docs;
# `sealcast-bench report lb-profile`).
#
# Usage: bench/lb-profile.sh [REQUESTS [CLIENTS]]   (default 20000 playlist requests, a
#   twentieth as many segments, 100 clients; about 6 minutes)
# Environment: SEALCAST_BIN=path   a prebuilt sealcast binary instead of `cargo build --release`;
#   SEALCAST_BENCH=path   the report's sealcast-bench (default: the one beside SEALCAST_BIN);
#   PLAYLIST_RPS=2 SEGMENT_RPS=1   requests per second per client; SEG_CLIENTS=10
# Smoke run: LB_PROFILE_DOCS= LB_PROFILE_RESULTS=/tmp/lb-profile.json SEG_CLIENTS=1 bench/lb-profile.sh 1 1
set -euo pipefail
[ -z "${SEALCAST_BIN:-}" ] || SEALCAST_BIN="$(realpath -m "$SEALCAST_BIN")"
GIVEN_BENCH="${SEALCAST_BENCH:+$(realpath "$SEALCAST_BENCH")}"
cd "$(dirname "$0")/.."
source bench/lib.sh
bench_install lb-profile valgrind haproxy nghttp2-client nginx mosquitto mosquitto-clients curl
bench_binary
bench_tool sealcast-presence
PRESENCE="$TOOL"
bench_driver
bench_report_docs "${LB_PROFILE_DOCS-docs/benchmarks.md}"
exec "$DRIVER" run lb-profile "${REPORT_DOCS[@]}" --bin "$BIN" --presence-bin "$PRESENCE" "$@"
