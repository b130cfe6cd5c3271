# Shared by the benchmark scripts (sourced): packages, a work directory cleaned up on exit
# with the processes started into PIDS, and the release build.

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
