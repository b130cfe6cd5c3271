# Shared by the benchmark scripts (sourced): packages, a work directory (on tmpfs if asked)
# cleaned up on exit with the processes started into PIDS, the binary under test and the
# bench tools (the release build unless given), a clean SEALCAST_* environment. Their
# reports write docs/benchmarks.md through `sealcast-bench report`. Peers' configurations are
# files in bench/peers/, rendered by bench_render.

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

# bench_workdir [DIR]: sets WORK (a new directory, or DIR) and PIDS; on exit every process
# in PIDS is stopped and WORK removed.
bench_workdir() {
  WORK="${1:-$(mktemp -d)}"
  PIDS=()
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
}

# bench_tmpfs_workdir NAME: bench_workdir on tmpfs when there is one (served files and logs
# then cost no disk I/O), readable by servers that drop privileges (nginx's worker).
bench_tmpfs_workdir() {
  local dir
  if [ -d /dev/shm ] && [ -w /dev/shm ]; then dir="$(mktemp -d "/dev/shm/sealcast-$1.XXXXXX")"; else dir="$(mktemp -d)"; fi
  chmod 755 "$dir"
  bench_workdir "$dir"
}

bench_cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}

# bench_build: the release binary, in BIN. With the bench tools: building the two packages
# together or apart resolves dependency features differently, and each switch rebuilds.
bench_build() {
  cargo build --release --locked -p sealcast -p viewers >&2
  BIN="$PWD/target/release/sealcast"
}

# free_port: a TCP port free on 127.0.0.1 right now (`sealcast-bench free-port`; the
# driver found by bench_driver first when the script has not run it yet).
free_port() {
  [ -n "${DRIVER:-}" ] || bench_driver
  "$DRIVER" free-port
}

# cpu_ticks PID...: utime+stime of the processes summed, in clock ticks (getconf CLK_TCK).
cpu_ticks() {
  local total=0 s f pid
  for pid in "$@"; do
    s="$(cat "/proc/$pid/stat")"; s="${s##*) }"
    read -r -a f <<< "$s"
    total=$((total + f[11] + f[12]))
  done
  echo "$total"
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

# bench_wait_for SECONDS COMMAND...: runs COMMAND every 0.1 s until it succeeds; fails
# after SECONDS.
bench_wait_for() {
  local secs="$1" i; shift
  for ((i = 0; i < secs * 10; i++)); do "$@" > /dev/null 2>&1 && return 0; sleep 0.1; done
  return 1
}

# bench_start NAME CORE COMMAND...: runs COMMAND pinned to CORE, its output in
# $WORK/NAME.out and $WORK/NAME.err, stopped on exit (PIDS); its pid in LAST_PID.
bench_start() {
  local name="$1" core="$2"; shift 2
  taskset -c "$core" "$@" > "$WORK/$name.out" 2> "$WORK/$name.err" &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
}

# bench_render TEMPLATE OUT NAME=VALUE...: OUT is bench/peers/TEMPLATE with every @NAME@
# replaced by VALUE (taken as it is: no pattern, no `&`); fails, writing nothing, when the
# template has a placeholder no argument fills.
bench_render() {
  local template="$BENCH_DIR/peers/$1" out="$2" text kv; shift 2
  text="$(< "$template")" || return 1
  for kv in "$@"; do text="${text//"@${kv%%=*}@"/"${kv#*=}"}"; done
  if [[ "$text" =~ @[A-Z0-9_]+@ ]]; then
    echo "bench_render: ${BASH_REMATCH[0]} of $template is not given" >&2
    return 1
  fi
  printf '%s\n' "$text" > "$out"
}

# bench_nginx_conf DIR PORT ROOT NOFILE: DIR/nginx.conf as the benchmarks run nginx against
# ours: one worker, sendfile, no access log, long keep-alive, the files of ROOT (on tmpfs)
# on 127.0.0.1:PORT; its pid, error log and temporary files in DIR.
bench_nginx_conf() {
  mkdir -p "$1/tmp"
  bench_render nginx/files.conf "$1/nginx.conf" DIR="$1" PORT="$2" ROOT="$3" NOFILE="$4" \
    CONNECTIONS="$(($4 - 100))"
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

# alive PID NAME: dies with "NAME exited" when the process PID is gone.
alive() { kill -0 "$1" 2> /dev/null || die "$2 exited"; }

# bench_latency_config PART_TARGET LADDER: the configuration of the latency benchmarks'
# clusters on stdout: CMAF, 2 s segments, a window of 6, parts of PART_TARGET; the source
# rung only, or with LADDER=full also the default ladder's three x264 rungs.
bench_latency_config() {
  local part="$1" ladder="$2" r
  printf '[ingest]\nend_grace_seconds = 2.0\n\n[ladder]\nsegment_target = 2.0\nwindow = 6\npreset = "veryfast"\nformat = "cmaf"\npart_target = %s\n\n' "$part"
  printf '[[ladder.rungs]]\nname = "src"\nkind = "source"\n'
  if [ "$ladder" = full ]; then
    for r in "720p 720 3000" "480p 480 1200" "360p 360 730"; do
      set -- $r
      printf '\n[[ladder.rungs]]\nname = "%s"\nkind = "encode"\nheight = %s\nbitrate_kbps = %s\nmaxrate_kbps = %s\nbufsize_kbits = %s\n' \
        "$1" "$2" "$3" "$(($3 * 107 / 100))" "$(($3 * 3 / 2))"
    done
  fi
}
