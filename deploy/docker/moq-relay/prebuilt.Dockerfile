# The relay tier's image (the Dockerfile beside this one) from the moq-relay binary
# scripts/setup.sh built (~/.cache/sealcast/moq-relay/bin/moq-relay), which
# scripts/images.sh copies into the build context as `moq-relay`, on the sealcast image
# it made (BASE_IMAGE): no compiler, no registry.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
COPY moq-relay /usr/local/bin/moq-relay
EXPOSE 4443/udp 4443/tcp
HEALTHCHECK --interval=10s --timeout=5s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/4443"]
