# Generated from the Dockerfile by deploy/docker/prebuilt.sh (its runtime stage, with the
# binary built on the host, dist/sealcast): do not edit; run the script again.
ARG RUNTIME_IMAGE=debian:bookworm-slim
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
COPY dist/sealcast /usr/local/bin/sealcast
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
