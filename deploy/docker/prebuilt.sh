#!/usr/bin/env bash
# Prints the repository's Dockerfile as one stage that takes a release binary built on the
# host (dist/sealcast in the build context) instead of compiling it: the Dockerfile's
# runtime stage, with its `COPY --from=builder` of the binary made a COPY from the
# context. scripts/images.sh builds the compose cluster's image from it, so the image's
# runtime is written once, in the Dockerfile. Its output is kept as
# deploy/docker/prebuilt.Dockerfile (compose's build takes it); sealcast/tests/deploy checks
# that the two agree.
#
#   deploy/docker/prebuilt.sh > deploy/docker/prebuilt.Dockerfile
set -euo pipefail
dockerfile=${1:-$(dirname "$0")/../../Dockerfile}
awk '
  BEGIN {
    print "# Generated from the Dockerfile by deploy/docker/prebuilt.sh (its runtime stage, with the"
    print "# binary built on the host, dist/sealcast): do not edit; run the script again."
  }
  /^ARG RUNTIME_IMAGE=/ && !stage { arg = $0 }
  /^FROM / { stage++; last = NR }
  { line[NR] = $0 }
  END {
    if (arg == "" || stage < 2) { print "prebuilt.sh: no global ARG RUNTIME_IMAGE or no runtime stage" > "/dev/stderr"; exit 1 }
    print arg
    copied = 0
    for (i = last; i <= NR; i++) {
      l = line[i]
      if (l ~ /^COPY --from=builder \/out\/sealcast /) { sub(/^COPY --from=builder \/out\/sealcast /, "COPY dist/sealcast ", l); copied = 1 }
      print l
    }
    if (!copied) { print "prebuilt.sh: the runtime stage does not copy /out/sealcast from the builder" > "/dev/stderr"; exit 1 }
  }
' "$dockerfile"
