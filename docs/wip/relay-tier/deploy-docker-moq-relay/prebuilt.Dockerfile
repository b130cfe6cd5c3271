# moq-relay on the Debian root filesystem of scripts/images.sh, with the binary
# scripts/setup.sh built (~/.cache/sealcast/moq-relay/bin/moq-relay), which images.sh
# copies into the build context as `moq-relay`. The same image as the Dockerfile beside
# this one makes, without a compiler or a registry.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
COPY moq-relay /usr/local/bin/moq-relay
USER 10001:10001
EXPOSE 4443/udp 4443/tcp
HEALTHCHECK --interval=10s --timeout=5s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/4443"]
ENTRYPOINT ["/usr/local/bin/moq-relay"]
CMD ["--help"]
