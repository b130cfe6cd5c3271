# The sealcast image: one binary, every role (`docker run IMAGE ingest|broadcast|lb|...`).
# docker-compose.yml builds it for the cluster; see docs/deployment.md.
#
# Base images are build arguments, so a registry mirror can stand in for Docker Hub:
#   docker build --build-arg RUST_IMAGE=mirror.example/library/rust:1-bookworm \
#                --build-arg RUNTIME_IMAGE=mirror.example/library/debian:bookworm-slim .
# (docker compose takes the same names from .env.) The build and the runtime image must
# both be Debian 12 "bookworm": the binary links against bookworm's FFmpeg 5.1
# (libavcodec59 and friends).
#
# Without the Rust image (a host with only a Debian base image, or no registry): build the
# release binary on a Debian 12 machine and hand it over in the build context:
#   cargo build --release --locked -p sealcast
#   install -D -m 0755 target/release/sealcast dist/sealcast
#   docker build --build-arg SEALCAST_BINARY=prebuilt -t sealcast:local .
# (or SEALCAST_BINARY=prebuilt in .env for docker compose). Only RUNTIME_IMAGE is needed
# then, and Debian's package mirror for the runtime libraries.
ARG RUST_IMAGE=rust:1-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim
# Where the binary comes from: `build` (the stage below) or `prebuilt` (dist/sealcast).
# BuildKit builds only the stages the image needs, so `prebuilt` pulls no Rust image.
ARG SEALCAST_BINARY=build

FROM ${RUST_IMAGE} AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      pkg-config clang libclang-dev cmake \
      libavcodec-dev libavformat-dev libavutil-dev libswscale-dev \
      libswresample-dev libavfilter-dev libavdevice-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The registry and target directories are BuildKit caches: a rebuild after a source change
# recompiles only what changed. The binary is copied out of the cache in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p sealcast --bin sealcast \
 && install -D -m 0755 target/release/sealcast /out/sealcast

# A release binary built elsewhere (see the top of this file).
FROM scratch AS prebuilt
COPY dist/sealcast /out/sealcast

FROM ${SEALCAST_BINARY} AS binary

FROM ${RUNTIME_IMAGE}
# Only what the binary loads at run time: bookworm's FFmpeg libraries (x264 and the codecs
# come with libavcodec59) and the CA roots for HTTPS webhooks.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates \
      libavcodec59 libavformat59 libavfilter8 libavutil57 libswscale6 libswresample4 \
 && rm -rf /var/lib/apt/lists/*
# A fixed, unprivileged user. docker-compose.yml runs the roles that read the 0600 key
# files as the host user who owns them instead (`user:`), broadcast nodes among them, and
# a broadcast node writes its recordings into its own volume at the data directory: so
# that directory is writable by any user, sticky like /tmp.
RUN groupadd --gid 10001 sealcast \
 && useradd --uid 10001 --gid sealcast --no-create-home \
      --home-dir /var/lib/sealcast --shell /usr/sbin/nologin sealcast \
 && install -d -o sealcast -g sealcast -m 1777 /var/lib/sealcast
COPY --from=binary /out/sealcast /usr/local/bin/sealcast
COPY deploy/docker/healthcheck.sh /usr/local/bin/sealcast-healthcheck
WORKDIR /var/lib/sealcast
ENV SEALCAST_DATA_DIR=/var/lib/sealcast
USER 10001:10001
# RTMP (ingest); HTTP (broadcast); metrics (ingest, lb); HTTPS and HTTP (lb).
EXPOSE 1935 8080 9100 9102 443 80
# Liveness of a broadcast node (`GET /healthz` on 8080). docker-compose.yml points the
# other roles at their own port: ingest 9100, lb 9102 (their metrics listeners).
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["sealcast-healthcheck", "8080"]
ENTRYPOINT ["sealcast"]
CMD ["--help"]
