#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 60) with libFuzzer, one after another,
# and prints a table: target, executions, new corpus units, crashes.
#
#   fuzz/run.sh 600            # ten minutes per target
#   fuzz/run.sh 60 flv h264    # only these targets
#
# Needs a nightly toolchain and cargo-fuzz (installed here when missing). The seed corpus
# (fuzz/corpus/TARGET) is read, never written: what a run finds goes to a scratch
# directory. A crash is left in fuzz/artifacts/TARGET/; minimise it, add it to
# fuzz/regressions/TARGET/ once fixed, and `cargo test -p fuzzing` replays it for good.
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-60}
shift || true
command -v rustup >/dev/null || { echo "fuzz/run.sh: rustup is needed for a nightly toolchain" >&2; exit 1; }
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo +nightly fuzz list)
fi
cargo +nightly fuzz build -O
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
printf '%-16s %14s %10s %8s\n' target executions new_units crashes
status=0
for t in "${targets[@]}"; do
  mkdir -p "$scratch/$t" "artifacts/$t"
  before=$(find "artifacts/$t" -type f | wc -l)
  log="$scratch/$t.log"
  if ! cargo +nightly fuzz run -O "$t" "$scratch/$t" "corpus/$t" -- \
      -max_total_time="$seconds" -print_final_stats=1 -rss_limit_mb=2048 >"$log" 2>&1; then
    status=1
  fi
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  units=$(find "$scratch/$t" -type f | wc -l)
  crashes=$(( $(find "artifacts/$t" -type f | wc -l) - before ))
  printf '%-16s %14s %10s %8s\n' "$t" "${execs:-?}" "$units" "$crashes"
  if [ "$crashes" -gt 0 ]; then
    status=1
    grep -m1 -A5 'ERROR\|panicked' "$log" >&2 || true
  fi
done
exit $status
