#!/usr/bin/env bash
# Builds the sealcast image the way a user without this host's binary does: the
# repository's Dockerfile, compiling in its Debian 12 builder stage (issue 50 item 1),
# from this machine's offline bases (scripts/builder-image.sh, scripts/images.sh --base);
# then runs `sealcast --version` in it, deploy/kubernetes/secrets.sh through it (kubectl
# from scripts/setup.sh's tools), and one role, `sealcast up`, until its broadcast node
# answers /healthz. Prints the image's name and the times; exits non-zero on any failure.
#
#   scripts/check-image.sh             the offline bases (no registry needed)
#   scripts/check-image.sh --upstream  rust:1-bookworm and debian:bookworm-slim (a registry)
#
# SEALCAST_DOCKER_BUILD_FLAGS adds flags to `docker build` (e.g. `--cpu-shares 2`, to build
# only on what the machine leaves idle).
#
# A cold build compiles the whole workspace in a container: about as long as a cold
# `cargo build --release` on the host (docs/deployment.md gives the last figure). Not part
# of scripts/test.sh for that reason.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "check-image: $*" >&2; }
args=()
case "${1:-}" in
  --upstream) ;;
  "") args=(--build-arg "BUILDER_IMAGE=$(scripts/builder-image.sh)" --build-arg "RUNTIME_IMAGE=$(scripts/images.sh --base)") ;;
  *) say "unknown argument $1 (see the script's head)"; exit 2 ;;
esac

tag=sealcast-selfbuilt:$(git rev-parse --short=12 HEAD)
started=$(date +%s)
say "docker build ${args[*]} -t $tag ."
# shellcheck disable=SC2086 # flags, split on purpose
docker build ${SEALCAST_DOCKER_BUILD_FLAGS:-} "${args[@]}" -t "$tag" . >&2
built=$(date +%s)
say "built in $((built - started)) s"

docker run --rm "$tag" --version

name=sealcast-check-$$
scratch=$(mktemp -d "${TMPDIR:-/tmp}/sealcast-check.XXXXXX")
trap 'docker rm -f "$name" >/dev/null 2>&1 || true; rm -rf "$scratch"' EXIT

PATH=$PATH:${SEALCAST_KUBERNETES_TOOLS:-$HOME/.cache/sealcast/kubernetes-tools}/bin
deploy/kubernetes/secrets.sh --image "$tag" --state "$scratch/state" --ingests 1 >"$scratch/secrets.yaml"
secrets=$(grep -c '^kind: Secret' "$scratch/secrets.yaml" || true)
[ "$secrets" -ge 8 ] || { say "secrets.sh through the image printed $secrets Secrets"; exit 1; }
say "secrets.sh through the image: $secrets Secrets"

docker run -d --name "$name" "$tag" up >/dev/null
deadline=$((SECONDS + 180))
until docker exec "$name" sealcast-healthcheck 8081 >/dev/null 2>&1; do
  if ! docker inspect -f '{{.State.Running}}' "$name" 2>/dev/null | grep -q true || ((SECONDS > deadline)); then
    docker logs "$name" 2>&1 | tail -n 40 >&2
    say "sealcast up did not become healthy"
    exit 1
  fi
  sleep 1
done
say "sealcast up in the image answers /healthz after $(($(date +%s) - built)) s"
printf '%s\n' "$tag"
