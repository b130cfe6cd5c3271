# Shared by the benchmark scripts (sourced): what the driver cannot do for itself before
# it runs: install Debian packages, find or build the binary under test and the bench tools
# (the release build unless given), and a message for a failure before the hand-over. The
# benchmarks themselves are `sealcast-bench run NAME` (bench/viewers/src/benches/), which
# starts the cluster and the peers (bench/viewers/src/harness.rs, the peers' configurations
# from bench/peers/) and writes docs/benchmarks.md.

# The directory of this file (bench/), whatever the caller's working directory.
BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# The script that sourced this file, as docs/benchmarks.md's generated blocks name it
# (`die` names the script after it).
export BENCH_SCRIPT="bench/${0##*/}"
# Raw results go to bench/out/ (ignored by git; bench/README.md).
mkdir -p "$BENCH_DIR/out"

# bench_install NAME PKG...: installs the Debian packages that are missing.
bench_install() {
  local name="$1"; shift
  local missing=() p sudo=""
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    echo "$name: installing ${missing[*]}" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  fi
}

# bench_build: the release binary, in BIN. With the bench tools: building the two packages
# together or apart resolves dependency features differently, and each switch rebuilds.
bench_build() {
  cargo build --release --locked -p sealcast -p viewers >&2
  BIN="$PWD/target/release/sealcast"
}

# bench_binary: BIN is SEALCAST_BIN when given (made absolute by the script before its cd),
# else the release build (bench_build).
bench_binary() {
  BIN="${SEALCAST_BIN:-}"
  if [ -z "$BIN" ]; then source scripts/setup.sh; bench_build; fi
  [ -x "$BIN" ] || { echo "no sealcast binary at $BIN" >&2; exit 1; }
}

# bench_clear_env: our binary reads SEALCAST_* settings from the environment (another
# broker, keys, listen addresses, direct mode…); none of a user's apply to a benchmark.
bench_clear_env() {
  local v
  for v in $(compgen -e | grep '^SEALCAST_' || true); do unset "$v"; done
}

# bench_tool NAME: TOOL is the bench tool NAME (the viewers package) next to BIN; when it is
# not there, the release build makes it, with BIN left as it was.
bench_tool() {
  TOOL="$(dirname "$BIN")/$1"
  if [ ! -x "$TOOL" ]; then
    local given="$BIN"
    source scripts/setup.sh
    bench_build
    BIN="$given"
    TOOL="$PWD/target/release/$1"
  fi
  [ -x "$TOOL" ] || { echo "no $1 next to $BIN (cargo build --release -p viewers)" >&2; exit 1; }
}

# bench_driver: DRIVER is sealcast-bench, the benchmarks' driver: GIVEN_BENCH when the
# script was given SEALCAST_BENCH (made absolute before its cd), else the one next to BIN
# (bench_tool), else the release build's.
bench_driver() {
  if [ -n "${GIVEN_BENCH:-}" ]; then
    DRIVER="$GIVEN_BENCH"
  else
    if [ -z "${BIN:-}" ]; then source scripts/setup.sh; bench_build; fi
    bench_tool sealcast-bench
    DRIVER="$TOOL"
  fi
  [ -x "$DRIVER" ] || die "no sealcast-bench at $DRIVER"
}

# bench_report_docs DOC: REPORT_DOCS is what `sealcast-bench report` is told about the
# doc: `--docs DOC`, or `--no-doc` when DOC is empty (a script's *_DOCS= skips it).
bench_report_docs() {
  if [ -n "$1" ]; then REPORT_DOCS=(--docs "$1"); else REPORT_DOCS=(--no-doc); fi
}

# bench_fail NAME MESSAGE...: prints "NAME: MESSAGE" and the last lines of every log in
# WORK (they go with it), and exits 1.
bench_fail() {
  local name="$1" f; shift
  echo "$name: $*" >&2
  for f in "${WORK:-/nonexistent}"/*.err; do
    [ -s "$f" ] && { echo "--- ${f##*/} (last lines)" >&2; tail -5 "$f" >&2; }
  done
  exit 1
}

# die MESSAGE...: bench_fail named after the script (BENCH_SCRIPT without bench/ and .sh:
# "lb: MESSAGE"), its logs in WORK after it.
die() {
  local name="${BENCH_SCRIPT#bench/}"
  bench_fail "${name%.sh}" "$@"
}

