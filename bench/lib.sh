# Shared by the benchmark scripts (sourced): packages, a work directory (on tmpfs if asked)
# cleaned up on exit with the processes started into PIDS, the binary under test and the
# bench tools (the release build unless given), a clean SEALCAST_* environment. Their
# reports write docs/benchmarks.md through bench/docsection.py.

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

# free_port: a TCP port free on 127.0.0.1 right now.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

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
