#!/usr/bin/env bash
# Checks the README's promise on a fresh Debian 12 machine: builds a Debian 12 root with
# debootstrap, copies in the Rust toolchain (nothing else), clones this repository's
# committed HEAD into it, then runs the README's two commands inside it:
#
#   1. ./scripts/up.sh --demo, until a segment of the demo stream is served;
#   2. ./scripts/test.sh, to the end.
#
# It reports each step's result and time, and exits non-zero if one failed. Not part of CI:
# it builds everything from nothing twice over (about an hour on two cores).
#
# Usage: sudo scripts/fresh-check.sh [WORKDIR]   (default: a new directory in /var/tmp)
# A second run in the same WORKDIR reuses its Debian root and build; FRESH_CHECK_CLEAN=1
# rebuilds from nothing.
#
# The root shares this machine's network (apt and crates.io are reached as on a fresh
# machine; services this machine runs on their standard ports stay reachable, which is
# how a user's own PostgreSQL and Mosquitto would be). It gets the host's network
# settings: apt sources, local certificate authorities and cargo configuration, so that it
# reaches the same mirrors through the same proxies. It is left in WORKDIR for
# inspection; remove it with `sudo rm -rf --one-file-system WORKDIR`.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
if [ "$(id -u)" -ne 0 ]; then
  echo "fresh-check: needs root (debootstrap, chroot, mounts); run it with sudo" >&2
  exit 1
fi
work="${1:-$(mktemp -d /var/tmp/sealcast-fresh.XXXXXX)}"
mkdir -p "$work"
work="$(cd "$work" && pwd)"
root="$work/root"
result="$work/result.txt"
: >"$result"

rustup_home="${RUSTUP_HOME:-$HOME/.rustup}"
cargo_home="${CARGO_HOME:-$HOME/.cargo}"
suite=bookworm
mirror="${FRESH_CHECK_MIRROR:-http://deb.debian.org/debian}"

report() { echo "fresh-check: $*" | tee -a "$result" >&2; }
now() { date +%s; }

# What a step took, for the report.
since() { echo "$(($(now) - $1)) s"; }

mounted=()
cleanup() {
  # Stop whatever still runs inside the root, then unmount in reverse order.
  if [ -n "${up_pid:-}" ] && kill -0 "$up_pid" 2>/dev/null; then
    kill -TERM -- "-$up_pid" 2>/dev/null || true
    wait "$up_pid" 2>/dev/null || true
  fi
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
    umount -l "${mounted[$i]}" 2>/dev/null || true
  done
}
trap cleanup EXIT

if ! command -v debootstrap >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >&2
fi

# 1. The root: Debian 12 as a cloud image has it (ca-certificates, to reach crates.io).
if [ ! -x "$root/bin/bash" ]; then
  started=$(now)
  debootstrap --include=ca-certificates "$suite" "$root" "$mirror" >"$work/debootstrap.log" 2>&1 ||
    { report "debootstrap failed (see $work/debootstrap.log)"; exit 1; }
  report "debootstrap $suite: ok ($(since "$started"))"
fi
# The host's apt sources (with bookworm-updates and -security) and its apt settings.
cp /etc/apt/sources.list.d/*.sources "$root/etc/apt/sources.list.d/" 2>/dev/null || true
if ls "$root"/etc/apt/sources.list.d/*.sources >/dev/null 2>&1; then
  rm -f "$root/etc/apt/sources.list"
fi
cp /etc/apt/apt.conf.d/99* "$root/etc/apt/apt.conf.d/" 2>/dev/null || true
cp /etc/resolv.conf "$root/etc/resolv.conf"
# The host's own certificate authorities (a proxy that inspects TLS on the way to
# crates.io has its CA there), as a machine set up on the same network would have them.
if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then
  cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
  chroot "$root" update-ca-certificates >/dev/null 2>&1
fi

# 2. The Rust toolchain, as rustup installed it here (the default toolchain only).
toolchain="$(rustup show active-toolchain | cut -d' ' -f1)"
mkdir -p "$root/root/.rustup/toolchains" "$root/root/.cargo"
cp -a "$rustup_home/settings.toml" "$root/root/.rustup/"
cp -a "$rustup_home/toolchains/$toolchain" "$root/root/.rustup/toolchains/"
cp -a "$cargo_home/bin" "$root/root/.cargo/"
for f in config.toml config env; do
  if [ -f "$cargo_home/$f" ]; then cp -a "$cargo_home/$f" "$root/root/.cargo/"; fi
done

# 3. The repository as a user clones it: committed files only. A second run in the same
# WORKDIR keeps the first run's target/ (say FRESH_CHECK_CLEAN=1 to build from nothing).
if [ -d "$root/root/sealcast/target" ] && [ "${FRESH_CHECK_CLEAN:-0}" != 1 ]; then
  mv "$root/root/sealcast/target" "$work/target.kept"
  report "reusing the previous run's target/"
fi
rm -rf "$root/root/sealcast"
git clone -q "$repo" "$root/root/sealcast"
if [ -d "$work/target.kept" ]; then
  mv "$work/target.kept" "$root/root/sealcast/target"
fi
report "checked out $(git -C "$repo" rev-parse --short HEAD)"

for m in proc sys dev dev/pts; do
  mount --bind "/$m" "$root/$m"
  mounted+=("$root/$m")
done
mount -t tmpfs -o mode=1777 tmpfs "$root/dev/shm"
mounted+=("$root/dev/shm")

# A command in the root, as root would run it on a fresh machine, with a login's environment.
in_root=(chroot "$root" /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8
  PATH=/root/.cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin)

# 4. The first README command, until the demo stream serves a segment.
started=$(now)
# In a session of its own, so that SIGTERM reaches the whole process group at the end.
setsid "${in_root[@]}" bash -c 'cd /root/sealcast && exec ./scripts/up.sh --demo' >"$work/up.out" 2>"$work/up.log" &
up_pid=$!
deadline=$(($(now) + 90 * 60))
segment=""
while [ -z "$segment" ]; do
  if ! kill -0 "$up_pid" 2>/dev/null; then
    report "up.sh --demo exited before serving a segment (see $work/up.log)"
    exit 1
  fi
  if [ "$(now)" -ge "$deadline" ]; then
    report "up.sh --demo served no segment within 90 minutes (see $work/up.log)"
    exit 1
  fi
  # Each broadcast node's own URL is one line of what `up` prints once it is ready:
  # `broadcast1 http://127.0.0.1:8081/`.
  node="$(awk '$1 ~ /^broadcast[0-9]+$/ { sub("/$", "", $2); print $2; exit }' "$work/up.out")"
  if [ -n "$node" ]; then
    playlist="$(curl -fsS "$node/live/demo/src/index.m3u8" 2>/dev/null || true)"
    uri="$(printf '%s\n' "$playlist" | grep -v '^#' | grep . | tail -n1 || true)"
    if [ -n "$uri" ] && curl -fsS -o "$work/segment" "$node/live/demo/src/$uri"; then
      segment="$uri"
    fi
  fi
  # Polling a process that builds for half an hour: a pause between looks is the point.
  sleep 5
done
report "up.sh --demo: served $node/live/demo/src/$segment ($(wc -c <"$work/segment") bytes) after $(since "$started")"
kill -TERM -- "-$up_pid"
if ! wait "$up_pid"; then
  report "up.sh --demo did not exit cleanly on SIGTERM (see $work/up.log)"
  exit 1
fi
up_pid=""

# 5. The second README command.
started=$(now)
if "${in_root[@]}" bash -c 'cd /root/sealcast && ./scripts/test.sh' >"$work/test.log" 2>&1; then
  report "test.sh: passed ($(since "$started"))"
else
  report "test.sh: FAILED after $(since "$started") (see $work/test.log)"
  grep -E '^test .* FAILED$|^failures:|panicked' "$work/test.log" | head -n 40 | tee -a "$result" >&2 || true
  exit 1
fi
report "all passed; result in $result"
