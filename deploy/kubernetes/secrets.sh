#!/usr/bin/env bash
# Makes the Secrets that the Kubernetes manifests of deploy/kubernetes/ name, and prints
# them as YAML on stdout (nothing else goes there):
#
#   deploy/kubernetes/secrets.sh --namespace sealcast | kubectl apply -f -
#
# What the compose cluster's scripts/init-cluster.sh writes into .env and deploy/state/,
# for Kubernetes: every value is made once and kept in a state directory (default
# deploy/state/kubernetes/, mode 0700, ignored by git; back it up: root.key is the
# cluster's trust), and a second run prints the same Secrets, adding what is missing (a
# ninth ingest's key and broker password). No secret is ever in the repository, in a
# ConfigMap or on a command line (kubectl reads them from files).
#
#   --namespace NS       the Secrets' namespace (default sealcast)
#   --ingests N          ingest identities ingest-0 .. ingest-(N-1): a signing key,
#                        certificate and broker password each, so that
#                        `kubectl scale statefulset/ingest --replicas=N` needs nothing more
#                        (default and most: 8, what the manifests list)
#   --name HOST          a name or address for the load balancers' certificate, besides
#                        streaming-cluster.test and the others `sealcast certs` gives it,
#                        and for the MoQ relays' (the viewers dial it through the QUIC
#                        door; repeatable)
#   --tls-cert FILE --tls-key FILE
#                        your own certificate chain and key for the load balancers instead
#   --no-tls             no sealcast-tls Secret: another owner keeps it (cert-manager's
#                        Certificate, say), and applying this output must not replace it
#   --algorithm ALG      the root's algorithm when it is made (ml-dsa-65, ed25519)
#   --state DIR          the state directory
#   --image IMAGE        run sealcast in this image (docker run, no network, as you, with
#                        the state directory mounted) instead of a binary here: the image
#                        the cluster runs, so no FFmpeg-linked build is needed on this host
#                        (also SEALCAST_IMAGE)
#   --s3-credentials FILE
#                        also print sealcast-s3 (key `credentials`: FILE as it is), the
#                        key of the recordings' S3 bucket for the edges: a file of
#                        `access_key_id=...` and `secret_access_key=...` lines, which the
#                        edges read from a mounted file (docs/deployment.md, Recordings on
#                        Kubernetes). Not kept in the state directory: without the option
#                        nothing of that name is printed, so applying leaves it as it is
#
# Secrets: sealcast-push-token (token), sealcast-postgres (password: the catalog's owner;
# edge-password: the broadcast nodes' role sealcast_edge), sealcast-mqtt (one
# password per broker user: ingest-N, broadcast, lb, admin), sealcast-trust (root.pub;
# relay-ca.pem, the MoQ relay tier's CA certificate),
# sealcast-ingest-keys (ingest-N.key, ingest-N.cert, ingest-N.c2pa.pem/.key), sealcast-edge-key (broadcast.key,
# broadcast.cert), sealcast-cookie-key (cookie-key), sealcast-playback-key (playback-key,
# for the edges and the load balancers: private streams' tokens), sealcast-tls
# (kubernetes.io/tls), sealcast-revocations (every revocation `sealcast keys revoke`
# kept, {key id}.rev), sealcast-moq-key (key: the MoQ relay tier's key, 64 hex digits,
# for its gates and the broadcast nodes), sealcast-relay-tls (kubernetes.io/tls: the
# relays' certificate, from a CA of the tier's own in the state directory, for the names
# of the Services relay, relay-root1 and relay-root2 in the namespace and those of
# --name), and with --s3-credentials sealcast-s3 (credentials).
#
# sealcast comes from $SEALCAST_BIN, --image (or $SEALCAST_IMAGE), target/release/ or
# PATH; kubectl from PATH (it only formats: --dry-run=client, no cluster is asked).
set -euo pipefail
cd "$(dirname "$0")/../.."
umask 077

say() { echo "secrets: $*" >&2; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

namespace=sealcast
ingests=8
# The identities the manifests list (base/ingest.yaml's volumes, base/mosquitto/acl-nodes).
max_ingests=8
no_tls=false
state=deploy/state/kubernetes
image=${SEALCAST_IMAGE:-}
names=()
algorithm=()
tls_cert=""
tls_key=""
s3_credentials=""
while (($#)); do
  case "$1" in
    --namespace) namespace=${2:?--namespace NS}; shift 2 ;;
    --ingests) ingests=${2:?--ingests N}; shift 2 ;;
    --name) names+=(--name "${2:?--name HOST}"); shift 2 ;;
    --tls-cert) tls_cert=${2:?--tls-cert FILE}; shift 2 ;;
    --tls-key) tls_key=${2:?--tls-key FILE}; shift 2 ;;
    --no-tls) no_tls=true; shift ;;
    --algorithm) algorithm=(--algorithm "${2:?--algorithm ALG}"); shift 2 ;;
    --state) state=${2:?--state DIR}; shift 2 ;;
    --image) image=${2:?--image IMAGE}; shift 2 ;;
    --s3-credentials) s3_credentials=${2:?--s3-credentials FILE}; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) say "unknown argument $1 (see --help)"; exit 2 ;;
  esac
done
[[ "$ingests" =~ ^[1-9][0-9]?$ ]] && ((ingests <= max_ingests)) || {
  say "--ingests takes 1 to $max_ingests (the identities the manifests list; docs/deployment.md, Scaling ingests), not $ingests"
  exit 2
}
[[ "$namespace" =~ ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ ]] || { say "--namespace: $namespace is not a namespace name"; exit 2; }
if { [ -n "$tls_cert" ] && [ -z "$tls_key" ]; } || { [ -z "$tls_cert" ] && [ -n "$tls_key" ]; }; then
  say "--tls-cert and --tls-key go together"
  exit 2
fi

# The bucket's key, checked as the edges read it (archive's S3Credentials::from_file: both
# names, `name=value` lines); never echoed.
if [ -n "$s3_credentials" ]; then
  [ -f "$s3_credentials" ] && [ -r "$s3_credentials" ] || { say "--s3-credentials: $s3_credentials is not a readable file"; exit 2; }
  for name in access_key_id secret_access_key; do
    grep -Eq "^[[:space:]]*$name[[:space:]]*=[[:space:]]*[^[:space:]]" "$s3_credentials" || {
      say "--s3-credentials: $s3_credentials has no $name=... line (it needs access_key_id=... and secret_access_key=...)"
      exit 2
    }
  done
fi

# sealcast STATE-PATH ARGS...: the sealcast command, with STATE-PATH the state directory
# as that command sees it.
if [ -n "${SEALCAST_BIN:-}" ]; then
  bin=$SEALCAST_BIN
elif [ -n "$image" ]; then
  bin=""
elif [ -x target/release/sealcast ]; then
  bin=target/release/sealcast
elif ! bin=$(command -v sealcast); then
  say "no sealcast binary: give the image (--image IMAGE), or cargo build --release -p sealcast (or set SEALCAST_BIN)"
  exit 1
fi
mkdir -p "$state"
if [ -n "$bin" ]; then
  st=$state
  sealcast() { "$bin" "$@"; }
else
  command -v docker >/dev/null || { say "--image needs docker"; exit 1; }
  st=/state
  state_abs=$(cd "$state" && pwd)
  sealcast() {
    docker run --rm --network none --user "$(id -u):$(id -g)" -v "$state_abs:/state" \
      --entrypoint sealcast "$image" "$@"
  }
fi
command -v kubectl >/dev/null || { say "kubectl is missing (it formats the Secrets)"; exit 1; }

mkdir -p "$state/passwords" "$state/secrets"
chmod 700 "$state"

nodes=()
for ((i = 0; i < ingests; i++)); do nodes+=("ingest-$i"); done
# The names the MoQ relays are dialed by in the namespace (base/relay.yaml's Services:
# the nodes and the other relays use the short ones).
relay_names=()
for service in relay relay-root1 relay-root2; do
  for name in "$service" "$service.$namespace" "$service.$namespace.svc" \
    "$service.$namespace.svc.cluster.local"; do
    relay_names+=(--name "$name")
  done
done

# Keys and certificates: sealcast's own commands, as the init script runs them (their
# reports go to stderr; stdout is the Secrets').
ingest_args=()
for node in "${nodes[@]}"; do ingest_args+=(--ingest "$node"); done
(
  umask 022
  sealcast keys --keys-dir "$st/keys" init "${algorithm[@]+"${algorithm[@]}"}" "${ingest_args[@]}"
  if [ -z "$tls_cert" ]; then
    sealcast certs --certs-dir "$st/certs" "${names[@]+"${names[@]}"}"
  fi
  # The relay tier's own CA and the relays' certificate: the nodes and the relays check
  # the relays against that CA alone, whoever issued the load balancers'.
  sealcast certs --certs-dir "$st/relay-certs" --broadcast 0 "${relay_names[@]}" \
    "${names[@]+"${names[@]}"}"
) >&2

# Passwords and keys: 64 hex digits, made once, kept without a trailing newline (they go
# into URLs as they are).
rand_hex() { od -An -tx1 -N32 /dev/urandom | tr -d ' \n'; }
kept() { # FILE WHAT: FILE, made if missing
  if [ ! -s "$1" ]; then
    rand_hex >"$1.new"
    mv "$1.new" "$1"
    say "made $2"
  fi
  printf '%s\n' "$1"
}
password() { # NAME: the file of that password, made if missing
  kept "$state/passwords/$1" "the password $1"
}
# The push token as the key directory has it, without its newline (an environment
# variable takes it as it is).
tr -d ' \t\r\n' <"$state/keys/push-token" >"$state/secrets/token"

mqtt_args=()
for user in "${nodes[@]}" broadcast lb admin; do
  mqtt_args+=("--from-file=$user=$(password "mqtt-$user")")
done

secret() { # NAME ARGS...: one Secret as YAML, after a document separator
  echo "---"
  kubectl create secret "$@" --namespace "$namespace" --dry-run=client -o yaml
}
key_args=()
for node in "${nodes[@]}"; do
  key_args+=("--from-file=$node.key=$state/keys/ingest/$node.key")
  key_args+=("--from-file=$node.cert=$state/keys/ingest/$node.cert")
  key_args+=("--from-file=$node.c2pa.pem=$state/keys/ingest/$node.c2pa.pem")
  key_args+=("--from-file=$node.c2pa.key=$state/keys/ingest/$node.c2pa.key")
done
revocation_args=()
for file in "$state"/keys/revocations/*.rev; do
  [ -f "$file" ] && revocation_args+=("--from-file=$(basename "$file")=$file")
done
if [ -z "$tls_cert" ]; then
  tls_cert=$state/certs/server.pem
  tls_key=$state/certs/server.key
fi

secret generic sealcast-push-token "--from-file=token=$state/secrets/token"
secret generic sealcast-postgres "--from-file=password=$(password postgres)" \
  "--from-file=edge-password=$(password postgres-edge)"
secret generic sealcast-mqtt "${mqtt_args[@]}"
secret generic sealcast-trust "--from-file=root.pub=$state/keys/root.pub" \
  "--from-file=relay-ca.pem=$state/relay-certs/ca.pem"
secret generic sealcast-ingest-keys "${key_args[@]}"
secret generic sealcast-edge-key \
  "--from-file=broadcast.key=$state/keys/edge/broadcast.key" \
  "--from-file=broadcast.cert=$state/keys/edge/broadcast.cert"
secret generic sealcast-cookie-key "--from-file=cookie-key=$state/keys/cookie-key"
secret generic sealcast-playback-key "--from-file=playback-key=$state/keys/playback-key"
if $no_tls; then
  say "no sealcast-tls Secret (--no-tls): its owner keeps it"
else
  secret tls sealcast-tls "--cert=$tls_cert" "--key=$tls_key"
fi
secret generic sealcast-revocations "${revocation_args[@]+"${revocation_args[@]}"}"
# The MoQ relay tier's key, as scripts/init-cluster.sh makes deploy/state/moq/key.
secret generic sealcast-moq-key "--from-file=key=$(kept "$state/secrets/moq-key" "the MoQ relay tier's key")"
secret tls sealcast-relay-tls "--cert=$state/relay-certs/server.pem" \
  "--key=$state/relay-certs/server.key"
if [ -n "$s3_credentials" ]; then
  secret generic sealcast-s3 "--from-file=credentials=$s3_credentials"
fi
say "printed the Secrets for namespace $namespace (${nodes[*]}); the values are kept in $state/"
