#!/usr/bin/env bash
# Issue 48's cost goals: viewers per server CPU-second over MoQ against the same node's
# LL-HLS viewers, and memory per connected viewer, measured side by side in one run.
#
# The live stream as bench/llhls-node.sh has it: a
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
#     files (as bench/llhls-node.sh has it), its viewers polling
#     (`sealcast-viewers --mode ll-poll`: the playlist every part target, each new part at
#     once), the LL-HLS a server that cannot hold a request offers.
# For each: the servers' CPU over WINDOW seconds without viewers, then with them; the
# difference per viewer is a viewer's cost; memory likewise. With RELAY_VARIANT (moq-relay
# flags) or RELAY_VARIANT_BIN (another moq-relay build, described by RELAY_VARIANT_BUILD,
# e.g. `--features jemalloc`), a second relay runs with them and `moq+` is measured in the
# same rotation.
# The driver runs it whole: `sealcast-bench run moq-cost` (bench/viewers/src/benches/
# moq_cost.rs says how). moq-relay's io_uring workers (`--runtime-workers 1
# --runtime-io-uring`, Linux 6.12+) need a build with its `io-uring` feature: point
# SEALCAST_MOQ_RELAY_BIN at one (`cargo install moq-relay --version 0.17.10 --features
# io-uring --root DIR`).
#
# Writes bench/out/moq-cost.json and the section "## MoQ viewers' cost on one node" of
# docs/benchmarks.md (MOQ_COST_DOCS= skips it), by `sealcast-bench report moq-cost`.
#
# Usage: bench/moq-cost.sh [VIEWERS] [RUNS]   (defaults 200 and 3)
# Environment: SEALCAST_BIN (its bench tools beside it), SEALCAST_BENCH, RELAY_VARIANT,
# RELAY_VARIANT_BIN, RELAY_VARIANT_BUILD, WINDOW (20),
# SETTLE (5), JOIN (10), SEALCAST_MOQ_RELAY_BIN (else the release build, made once into
# ~/.cache/sealcast/moq-relay-release).
set -euo pipefail
GIVEN_BIN="${SEALCAST_BIN:+$(realpath "$SEALCAST_BIN")}"
GIVEN_BENCH="${SEALCAST_BENCH:+$(realpath "$SEALCAST_BENCH")}"
RELAY="${SEALCAST_MOQ_RELAY_BIN:-}"
[ -z "${RELAY_VARIANT_BIN:-}" ] || export RELAY_VARIANT_BIN="$(realpath "$RELAY_VARIANT_BIN")"
cd "$(dirname "$0")/.."
source bench/lib.sh
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
bench_install moq-cost mosquitto nginx curl util-linux openssl procps
SEALCAST_BIN="$GIVEN_BIN" bench_binary
bench_tool sealcast-viewers; LL_VIEWERS="$TOOL"
bench_tool sealcast-moq-viewers; MOQ_VIEWERS="$TOOL"
bench_driver
bench_report_docs "${MOQ_COST_DOCS-docs/benchmarks.md}"
exec "$DRIVER" run moq-cost "${REPORT_DOCS[@]}" --bin "$BIN" --viewers-bin "$LL_VIEWERS" \
  --moq-viewers-bin "$MOQ_VIEWERS" --relay-bin "$RELAY" "$@"
