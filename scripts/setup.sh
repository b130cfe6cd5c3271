#!/usr/bin/env bash
# Installs what sealcast needs to build and test on Debian 12 / Ubuntu, if it is missing.
# Sourced by up.sh and test.sh; safe to run again (it only installs what is absent).
set -euo pipefail

packages=(
  pkg-config clang libclang-dev cmake
  libavcodec-dev libavformat-dev libavutil-dev libswscale-dev
  libswresample-dev libavfilter-dev libavdevice-dev
  ffmpeg
  # The web front end: npm installs hls.js (which the broadcast crate embeds); the browser
  # tests drive Chromium.
  nodejs npm chromium
  # The deployment tests run the compose file's broker config on Debian's Mosquitto and
  # hash its passwords with mosquitto_passwd (scripts/init-cluster.sh).
  mosquitto
)

# Some packages count as present when their command is, whatever package brought it:
# NodeSource's nodejs bundles npm and conflicts with Debian's npm package, and Chromium may
# be installed as chromium-browser.
present_as_command() {
  case "$1" in
    nodejs) command -v node ;;
    npm) command -v npm ;;
    chromium) command -v chromium || command -v chromium-browser ;;
    *) false ;;
  esac >/dev/null 2>&1
}

missing=()
for p in "${packages[@]}"; do
  if present_as_command "$p"; then continue; fi
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  # Ubuntu has no package named chromium; its chromium-browser installs the snap.
  for i in "${!missing[@]}"; do
    if [ "${missing[$i]}" = chromium ] && ! apt-cache show chromium >/dev/null 2>&1; then
      missing[$i]=chromium-browser
    fi
  done
  echo "setup: installing ${missing[*]}" >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# hls.js, pinned by web/package-lock.json; the broadcast crate embeds it when it builds.
# Installed again whenever the lock file is newer than the last install.
web="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/web"
if [ ! -f "$web/node_modules/.package-lock.json" ] ||
  [ "$web/package-lock.json" -nt "$web/node_modules/.package-lock.json" ]; then
  echo "setup: npm ci --prefix web" >&2
  npm ci --prefix "$web" --no-audit --no-fund >&2
fi

if ! command -v cargo >/dev/null 2>&1; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  else
    echo "setup: Rust is missing; install it with rustup (https://rustup.rs), then run this again" >&2
    exit 1
  fi
fi
