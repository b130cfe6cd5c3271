#!/usr/bin/env bash
# Viewer verification (issue 31): what it costs a viewer to check every fragment itself.
# One `sealcast up` (one broadcast node, the load balancer) with the source rung and a
# 360p rung, LL-HLS parts of 0.333 s, fed 720p30 by `sealcast source`; one Chromium viewer
# at a time plays the 360p rung through the load balancer for SECONDS, once with the
# browser's own WebCrypto and once with the vendored library forced (`?verify=library`);
# `sealcast-bench sample viewer-verify` reads the page's own records:
#   - verification CPU per viewer-second (the time the loader spent in its checks, over
#     the media seconds played),
#   - requests and bytes added per viewer-second by sidecars, part-key delegations and the
#     trust bundle, against the media's, and the same without the part delegation
#     (every part's sidecar at the size of an ML-DSA-65 envelope: computed from the same
#     requests).
# The added latency per part is bench/latency.sh's `ll` against `ll-noverify`.
#
# Writes bench/out/viewer-verify.json and a section in docs/benchmarks.md.
#
# Usage: bench/viewer-verify.sh [SECONDS] [ROUNDS]   (defaults 60 and 3)
# Environment: SEALCAST_BIN, SEALCAST_BENCH (else the release build's).
set -euo pipefail
GIVEN_BENCH="${SEALCAST_BENCH:+$(realpath "$SEALCAST_BENCH")}"
cd "$(dirname "$0")/.."
source scripts/setup.sh
SECS="${1:-60}"
ROUNDS="${2:-3}"

source bench/lib.sh
bench_install viewer-verify chromium chromium-driver curl
bench_workdir
bench_binary
bench_driver

dir="$WORK/up"
mkdir -p "$dir"
cat > "$dir/sealcast.toml" <<'EOF'
[ingest]
end_grace_seconds = 2.0

[ladder]
segment_target = 2.0
window = 6
preset = "veryfast"
format = "cmaf"
part_target = 0.333

[[ladder.rungs]]
name = "src"
kind = "source"

[[ladder.rungs]]
name = "360p"
kind = "encode"
height = 360
bitrate_kbps = 730
maxrate_kbps = 781
bufsize_kbits = 1095
EOF
"$BIN" up --config "$dir/sealcast.toml" --data-dir "$dir/data" --certs-dir "$dir/certs" \
  --broadcast 1 --rtmp-listen 127.0.0.1:0 --srt-listen 127.0.0.1:0 --webrtc-listen 127.0.0.1:0 --broadcast-listen 127.0.0.1:0 \
  --mqtt-listen 127.0.0.1:0 --https-listen 127.0.0.1:0 --http-listen 127.0.0.1:0 \
  > "$dir/up.out" 2> "$dir/up.err" &
PIDS+=("$!")
for _ in $(seq 1 600); do grep -q '^broadcast1 ' "$dir/up.out" && break; sleep 0.1; done
grep -q '^broadcast1 ' "$dir/up.out" || { echo "viewer-verify: sealcast up did not start" >&2; tail "$dir/up.err" >&2; exit 1; }
field() { awk -v k="$1" '$1 == k {print $2}' "$dir/up.out" | head -1; }
ORIGIN="$(field player)"
KEY="$(awk '/^stream-key main /{print $3}' "$dir/up.out" | head -1)"
RTMP="$(field obs-server)"

TOTAL=$(( (SECS + 40) * 2 * ROUNDS + 60 ))
"$BIN" source --url "$RTMP/$KEY" --size 1280x720 --fps 30 --duration "$TOTAL" > "$WORK/source.log" 2>&1 &
PIDS+=("$!")
for _ in $(seq 1 300); do
  curl -sf --cacert "$dir/certs/ca.pem" "${ORIGIN%/}/live/main/360p/index.m3u8" -o /dev/null && break
  sleep 0.2
done

: > "$WORK/runs.jsonl"
for round in $(seq 1 "$ROUNDS"); do
  for query in "" "?verify=library"; do
    echo "viewer-verify: round $round/$ROUNDS ${query:-WebCrypto} (${SECS}s)" >&2
    if "$DRIVER" sample viewer-verify "$ORIGIN" main 360p "$SECS" "$query" > "$WORK/run.json" 2> "$WORK/run.err"; then
      "$DRIVER" sample tagged "$WORK/run.json" --int round="$round" >> "$WORK/runs.jsonl"
    else
      echo "viewer-verify: run failed: $(tail -c 600 "$WORK/run.err")" >&2
    fi
  done
done

"$DRIVER" report viewer-verify "$WORK/runs.jsonl" --seconds "$SECS" --rounds "$ROUNDS"
