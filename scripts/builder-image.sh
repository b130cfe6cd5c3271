#!/usr/bin/env bash
# Makes a builder base for the repository's Dockerfile without an image registry
# (docs/deployment.md, "An image that builds itself"), and prints its name:
#
#   docker build --build-arg BUILDER_IMAGE=$(scripts/builder-image.sh) \
#     --build-arg RUNTIME_IMAGE=$(scripts/images.sh --base) -t sealcast .
#
# The image is sealcast-builder:HASH: the Debian 12 root filesystem of scripts/images.sh
# (debootstrapped from this host's mirror) with this host's Rust toolchain (rustc's
# sysroot: cargo, rustc and the standard library; no documentation or sources) and its
# local CA certificates (/usr/local/share/ca-certificates: an egress proxy's, say, which
# the build's downloads from crates.io pass through) copied in
# (deploy/docker/builder/Dockerfile). HASH is the base, the toolchain's versions and the
# Dockerfile: an image that exists is not made again. The toolchain must be at least the
# workspace's rust-version.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "builder-image: $*" >&2; }
command -v rustc >/dev/null && command -v cargo >/dev/null || {
  say "no Rust toolchain here (scripts/setup.sh installs one)"
  exit 1
}

base=$(scripts/images.sh --base)
sysroot=$(rustc --print sysroot)
dockerfile=deploy/docker/builder/Dockerfile
cas=/usr/local/share/ca-certificates
hash=$( {
  echo "$base"
  rustc -vV
  cargo -V
  cat "$dockerfile"
  find "$cas" -type f -name '*.crt' -print0 2>/dev/null | LC_ALL=C sort -z | xargs -0 -r cat
} | sha256sum | cut -c1-16)
tag=sealcast-builder:$hash
if ! docker image inspect "$tag" >/dev/null 2>&1; then
  context=$(mktemp -d "${TMPDIR:-/var/tmp}/sealcast-builder.XXXXXX")
  # shellcheck disable=SC2064 # the path is fixed now
  trap "rm -rf '$context'" EXIT
  say "copying the toolchain at $sysroot"
  mkdir -p "$context/rust"
  cp -a "$sysroot/bin" "$sysroot/lib" "$context/rust/"
  [ -d "$sysroot/libexec" ] && cp -a "$sysroot/libexec" "$context/rust/"
  rm -rf "$context/rust/lib/rustlib/src" "$context/rust/lib/rustlib/rustc-src"
  mkdir -p "$context/ca"
  find "$cas" -type f -name '*.crt' -exec cp {} "$context/ca/" \; 2>/dev/null || true
  cp "$dockerfile" "$context/Dockerfile"
  say "building $tag"
  out=$(docker build -q --build-arg "BASE_IMAGE=$base" -t "$tag" "$context" 2>&1) || {
    printf '%s\n' "$out" >&2
    exit 1
  }
fi
printf '%s\n' "$tag"
