# The sealcast image: one binary, every role (`docker run IMAGE ingest|broadcast|lb|...`).
# docker-compose.yml uses it for the cluster; see docs/deployment.md.
#
# Two stages. The builder compiles the release binary in Debian 12 "bookworm" (whose
# FFmpeg 5.1 it links, as the runtime stage has), so the image builds itself wherever
# Docker runs: `docker build -t sealcast .` (a registry gives rust:bookworm and
# debian:bookworm-slim). Without a registry, both bases are build arguments:
#   BUILDER_IMAGE  Debian 12 with a Rust toolchain (cargo on PATH); the build packages
#                  below are installed when missing. scripts/builder-image.sh makes one
#                  from a debootstrapped root and this host's toolchain.
#   RUNTIME_IMAGE  Debian 12; the runtime libraries are installed when missing.
# The crates come from crates.io during the build (Cargo.lock pins them, `--locked`).
#
# scripts/images.sh takes another way for the compose cluster it tests: a release binary
# built on this host (dist/sealcast) put into this file's runtime stage instead of the
# builder's (deploy/docker/prebuilt.sh prints that variant), so the workspace is not
# compiled twice.
#
# No BuildKit-only syntax: the classic builder (what docker-compose 1.29 and a Docker CLI
# without buildx use) and BuildKit build it alike.
ARG BUILDER_IMAGE=rust:1-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${BUILDER_IMAGE} AS builder
# What the workspace needs to compile (as scripts/setup.sh installs on a host): a C
# toolchain and cmake for crates that build C, clang for bindgen, FFmpeg's and OpenSSL's
# headers.
RUN packages="build-essential pkg-config clang libclang-dev cmake libssl-dev \
      libavcodec-dev libavformat-dev libavutil-dev libswscale-dev libswresample-dev \
      libavfilter-dev libavdevice-dev" \
 && if ! dpkg-query -W $packages >/dev/null 2>&1; then \
      apt-get update \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $packages \
      && rm -rf /var/lib/apt/lists/*; \
    fi
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p sealcast \
 && install -D -m 0755 target/release/sealcast /out/sealcast \
 && rm -rf target

FROM ${RUNTIME_IMAGE}
# Only what the binary loads at run time: bookworm's FFmpeg libraries (x264 and the codecs
# come with libavcodec59), the CA roots for HTTPS webhooks, and keepalived with iproute2
# for the load balancers' floating address (deploy/docker/lb.sh).
RUN packages="ca-certificates libavcodec59 libavformat59 libavfilter8 libavutil57 \
      libswscale6 libswresample4 libavdevice59 keepalived iproute2" \
 && if ! dpkg-query -W $packages >/dev/null 2>&1; then \
      apt-get update \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $packages \
      && rm -rf /var/lib/apt/lists/*; \
    fi
# A fixed, unprivileged user. docker-compose.yml runs the roles that read the 0600 key
# files as the host user who owns them instead (`user:`), broadcast nodes among them, and
# a broadcast node writes its recordings into its own volume at the data directory and
# the cluster's archive into the volume every replica shares at /var/lib/sealcast-archive
# (a new named volume takes this directory's mode): so both are writable by any user,
# sticky like /tmp.
RUN groupadd --gid 10001 sealcast \
 && useradd --uid 10001 --gid sealcast --no-create-home \
      --home-dir /var/lib/sealcast --shell /usr/sbin/nologin sealcast \
 && install -d -o sealcast -g sealcast -m 1777 /var/lib/sealcast /var/lib/sealcast-archive
COPY --from=builder /out/sealcast /usr/local/bin/sealcast
COPY deploy/docker/healthcheck.sh /usr/local/bin/sealcast-healthcheck
COPY deploy/docker/lb.sh /usr/local/bin/sealcast-lb
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
