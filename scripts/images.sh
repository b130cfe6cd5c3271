#!/usr/bin/env bash
# Makes the container images the compose cluster needs without an image registry, from
# Debian's packages on this host (docs/deployment.md, "Images without a registry").
# scripts/init-cluster.sh runs it when the upstream images cannot be had; run alone it
# prints, as NAME=VALUE lines for .env, the images it made:
#
#   scripts/images.sh                 make what is missing (cached: seconds when nothing is)
#   scripts/images.sh --rebuild       a new root filesystem too (Debian's updates since)
#   scripts/images.sh --base          only the root filesystem; prints its image's name
#   scripts/images.sh --stand-ins     the root filesystem and the images that do not hold
#                                     sealcast (scripts/test.sh makes them while Rust compiles)
#
# One Debian 12 root filesystem, made with debootstrap from the mirror this host's own apt
# sources name (read now, never written into the repository), with every package the
# images need, imported with `docker import` as sealcast-debian:HASH. On it, each image
# is one small layer:
#   sealcast-runtime:HASH    the sealcast release binary built on this host (dist/sealcast)
#                            and its runtime libraries, keepalived among them: the
#                            repository's Dockerfile's runtime stage with that binary
#                            (deploy/docker/prebuilt.Dockerfile), RUNTIME_IMAGE= the root
#                            filesystem
#   sealcast-mosquitto:HASH  Debian's mosquitto, in place of eclipse-mosquitto
#   sealcast-postgres:HASH   Debian's postgresql-15, in place of postgres (its entrypoint
#                            honours POSTGRES_USER/PASSWORD/DB and the data volume)
#   sealcast-prometheus:HASH Debian's prometheus, in place of prom/prometheus
#   sealcast-varnish:HASH    Debian's varnish 7.1, in place of varnish:7.1 (the cache tier
#                            of the compose profile `cdn`, deploy/varnish/)
#   sealcast-moq-relay:HASH  the sealcast image with the moq-relay binary scripts/setup.sh
#                            builds (SEALCAST_MOQ_RELAY_BIN names another): the MoQ relay
#                            tier (deploy/docker/moq-relay/prebuilt.Dockerfile)
#   sealcast-garage:HASH     the garage binary scripts/setup.sh builds (SEALCAST_GARAGE_BIN
#                            names another), in place of dxflrs/garage (the S3 store of the
#                            compose profile `s3`); made only when that binary is there
# HASH is the content the image is made from (this script, the package list, the apt
# sources, the binary, the files copied in): an image that exists is not made again.
# The images share the root filesystem's layer, so the disk holds it once.
#
# Needs root (debootstrap, chroot), through sudo when not run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "images: $*" >&2; }

rebuild=false
base_only=false
stand_ins_only=false
while (($#)); do
  case "$1" in
    --rebuild) rebuild=true; shift ;;
    --base) base_only=true; shift ;;
    --stand-ins) stand_ins_only=true; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) say "unknown argument $1 (see --help)"; exit 2 ;;
  esac
done

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi

# Everything any of the images runs, installed once into the shared root filesystem.
packages=(
  ca-certificates
  # sealcast: bookworm's FFmpeg 5.1 (x264 and the codecs come with libavcodec59)
  libavcodec59 libavformat59 libavfilter8 libavutil57 libswscale6 libswresample4
  libavdevice59
  mosquitto
  postgresql-15
  prometheus
  keepalived iproute2
  varnish
)
suite=bookworm

sha() { sha256sum | cut -c1-16; }

# The host's apt sources, deb822 (.sources) and one-line (.list) alike: the mirror the
# root filesystem comes from, and its updates.
apt_sources() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] && printf '### %s\n' "$f" && cat "$f"
  done
  return 0
}
# The first http(s) mirror that carries $suite's main archive.
mirror() {
  apt_sources | awk -v suite="$suite" '
    /^deb / && $0 ~ " " suite " " { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; exit } }
    /^URIs:/ { uris = $2 }
    /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == suite && uris ~ /^https?:/) { print uris; exit } }
  '
}

have_image() { docker image inspect "$1" >/dev/null 2>&1; }
# COMMAND...: its output only if it fails (the classic builder's deprecation notice is
# not news).
quiet() {
  local out
  out=$("$@" 2>&1) || { printf '%s\n' "$out" >&2; return 1; }
}

# --- the root filesystem ----------------------------------------------------------------------
base_hash=$( { sed -n '/^packages=(/,/^)/p' "$0"; echo "$suite"; apt_sources; dpkg --print-architecture; } | sha)
base=sealcast-debian:$base_hash
if $rebuild || ! have_image "$base"; then
  # Installed when missing, as scripts/setup.sh installs what it needs (issue 51).
  command -v debootstrap >/dev/null || {
    say "installing debootstrap"
    quiet $sudo apt-get update -qq
    quiet $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap
    command -v debootstrap >/dev/null || { say "debootstrap could not be installed"; exit 1; }
  }
  url=$(mirror)
  [ -n "$url" ] || { say "no http mirror for $suite in this host's apt sources"; exit 1; }
  work=$(mktemp -d "${TMPDIR:-/var/tmp}/sealcast-rootfs.XXXXXX")
  # shellcheck disable=SC2064 # the path is fixed now
  trap "$sudo rm -rf '$work'" EXIT
  root=$work/root
  started=$(date +%s)
  say "debootstrap $suite from $url into $root (a few minutes, once)"
  $sudo debootstrap --variant=minbase "$suite" "$root" "$url" >"$work/debootstrap.log" 2>&1 || {
    tail -n 20 "$work/debootstrap.log" >&2
    exit 1
  }
  # The host's sources, for its updates (security among them); keyrings the sources name
  # that the new system lacks come from the host.
  $sudo rm -f "$root/etc/apt/sources.list"
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] && $sudo install -D -m 644 "$f" "$root$f"
  done
  for key in $(apt_sources | sed -n 's/.*[Ss]igned-[Bb]y[:=] *\([^] ]*\).*/\1/p' | sort -u); do
    [ -f "$key" ] && [ ! -f "$root$key" ] && $sudo install -D -m 644 "$key" "$root$key"
  done
  # No service starts inside the chroot; the packages' own clusters and keys are not wanted.
  printf '#!/bin/sh\nexit 101\n' | $sudo tee "$root/usr/sbin/policy-rc.d" >/dev/null
  $sudo chmod 755 "$root/usr/sbin/policy-rc.d"
  $sudo install -d "$root/etc/postgresql-common"
  echo 'create_main_cluster = false' | $sudo tee "$root/etc/postgresql-common/createcluster.conf" >/dev/null
  $sudo cp /etc/resolv.conf "$root/etc/resolv.conf"
  say "installing ${packages[*]}"
  $sudo chroot "$root" /bin/sh -c "
    export DEBIAN_FRONTEND=noninteractive LC_ALL=C
    apt-get update -qq &&
    apt-get -y -qq upgrade &&
    apt-get install -y -qq --no-install-recommends ${packages[*]} &&
    apt-get clean" >"$work/apt.log" 2>&1 || {
    tail -n 20 "$work/apt.log" >&2
    exit 1
  }
  $sudo rm -rf "$root/var/lib/apt/lists/"* "$root/var/cache/apt/"*.bin "$root/usr/sbin/policy-rc.d" \
    "$root/usr/share/doc" "$root/usr/share/man" "$root/usr/share/locale"
  : | $sudo tee "$root/etc/resolv.conf" >/dev/null
  $sudo tar -C "$root" --numeric-owner -c . | docker import \
    -c 'ENV LANG=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'CMD ["/bin/bash"]' \
    -m "debootstrap $suite from $url with ${packages[*]}" - "$base" >/dev/null
  say "made $base in $(($(date +%s) - started)) s"
  $sudo rm -rf "$work"
  trap - EXIT
fi

if $base_only; then
  printf '%s\n' "$base"
  exit 0
fi

# --- images on it ----------------------------------------------------------------------------
# build NAME DOCKERFILE CONTEXT [BUILD-ARG...]: NAME:HASH of the Dockerfile, the context's
# files and the base, made unless it exists; prints the tag.
build() {
  local name=$1 dockerfile=$2 context=$3 hash tag
  shift 3
  hash=$( {
    echo "$base" "$@"
    cat "$dockerfile"
    (cd "$context" && find . -type f ! -name '*.md' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
  } | sha)
  tag=$name:$hash
  if ! have_image "$tag"; then
    local args=(--build-arg "BASE_IMAGE=$base") a
    for a in "$@"; do args+=(--build-arg "$a"); done
    say "building $tag"
    quiet docker build -q -f "$dockerfile" "${args[@]}" -t "$tag" "$context"
  fi
  printf '%s\n' "$tag"
}

# The sealcast image: the runtime stage of the repository's Dockerfile with the release
# binary built on this host (dist/sealcast, which scripts/init-cluster.sh puts there)
# instead of its builder's (deploy/docker/prebuilt.Dockerfile), on the root filesystem,
# which has the runtime libraries already.
# Each layer costs a walk of the whole root filesystem on some storage drivers
# (fuse-overlayfs: about 20 s here), so what does not hold sealcast can be made first.
runtime=""
if ! $stand_ins_only; then
  [ -x dist/sealcast ] || { say "no dist/sealcast: run scripts/init-cluster.sh"; exit 1; }
  runtime_files=(deploy/docker/prebuilt.Dockerfile dist/sealcast deploy/docker/healthcheck.sh deploy/docker/lb.sh)
  runtime=sealcast-runtime:$( { echo "$base"; sha256sum "${runtime_files[@]}"; } | sha)
fi
if [ -n "$runtime" ] && ! have_image "$runtime"; then
  context=$(mktemp -d "${TMPDIR:-/tmp}/sealcast-context.XXXXXX")
  for f in "${runtime_files[@]}"; do install -D -m 0755 "$f" "$context/$f"; done
  say "building $runtime"
  quiet docker build -q -f "$context/deploy/docker/prebuilt.Dockerfile" --build-arg "RUNTIME_IMAGE=$base" -t "$runtime" "$context"
  rm -rf "$context"
fi

mosquitto=$(build sealcast-mosquitto deploy/docker/mosquitto/Dockerfile deploy/docker/mosquitto)
postgres=$(build sealcast-postgres deploy/docker/postgres/Dockerfile deploy/docker/postgres)
prometheus=$(build sealcast-prometheus deploy/docker/prometheus/Dockerfile deploy/docker/prometheus)
varnish=$(build sealcast-varnish deploy/docker/varnish/Dockerfile deploy/docker/varnish)
# Garage has no Debian package: its binary goes into the build context beside the Dockerfile.
garage=""
garage_bin=${SEALCAST_GARAGE_BIN:-${SEALCAST_GARAGE_ROOT:-$HOME/.cache/sealcast/garage}/bin/garage}
if [ -x "$garage_bin" ]; then
  context=$(mktemp -d "${TMPDIR:-/tmp}/sealcast-context.XXXXXX")
  cp deploy/docker/garage/Dockerfile "$context/Dockerfile"
  ln "$garage_bin" "$context/garage" 2>/dev/null || cp "$garage_bin" "$context/garage"
  garage=$(build sealcast-garage "$context/Dockerfile" "$context")
  rm -rf "$context"
else
  say "no garage binary at $garage_bin (scripts/setup.sh test builds it): no Garage image, so profile s3 needs GARAGE_IMAGE"
fi

if $stand_ins_only; then
  # The sealcast image's first layers (its runtime packages, its user) do not hold sealcast
  # either: made now from the same instructions, so that the build cache has them when the
  # sealcast image is made.
  layers=sealcast-runtime-layers:${base#*:}
  if ! have_image "$layers"; then
    context=$(mktemp -d "${TMPDIR:-/tmp}/sealcast-context.XXXXXX")
    sed '/^COPY /,$d' deploy/docker/prebuilt.Dockerfile >"$context/Dockerfile"
    say "building $layers"
    quiet docker build -q --build-arg "RUNTIME_IMAGE=$base" -t "$layers" "$context"
    rm -rf "$context"
  fi
  printf '%s\n' "$mosquitto" "$postgres" "$prometheus" "$varnish" "$layers" $garage
  exit 0
fi
# The relay tier: the sealcast image with the moq-relay binary setup.sh built, copied into
# a build context of its own with the Dockerfile (the hash covers both and the sealcast
# image, so a new binary of either makes a new image).
relay_bin=${SEALCAST_MOQ_RELAY_BIN:-${SEALCAST_MOQ_RELAY_ROOT:-$HOME/.cache/sealcast/moq-relay}/bin/moq-relay}
[ -x "$relay_bin" ] || { say "no moq-relay at $relay_bin: run scripts/setup.sh test"; exit 1; }
context=$(mktemp -d "${TMPDIR:-/tmp}/sealcast-context.XXXXXX")
cp deploy/docker/moq-relay/prebuilt.Dockerfile "$context/Dockerfile"
ln "$relay_bin" "$context/moq-relay" 2>/dev/null || cp "$relay_bin" "$context/moq-relay"
moq_relay=$(build sealcast-moq-relay "$context/Dockerfile" "$context" "BASE_IMAGE=$runtime")
rm -rf "$context"

printf '%s\n' \
  "MOQ_RELAY_IMAGE=$moq_relay" \
  "SEALCAST_IMAGE=$runtime" \
  "MOSQUITTO_IMAGE=$mosquitto" \
  "POSTGRES_IMAGE=$postgres" \
  "PROMETHEUS_IMAGE=$prometheus" \
  "VARNISH_IMAGE=$varnish"
if [ -n "$garage" ]; then printf '%s\n' "GARAGE_IMAGE=$garage"; fi
