#!/usr/bin/env bash
# Prepares the docker compose cluster (docs/deployment.md). Run it once before
# `docker-compose up -d` (or `docker compose up -d`). Running it again keeps every password, token and key there is,
# adds what is missing, and rewrites the broker's user and ACL files from .env and
# deploy/mosquitto/.
#
#   scripts/init-cluster.sh                         first setup; again after editing an ACL
#   scripts/init-cluster.sh --rotate mqtt           new passwords for every MQTT user
#   scripts/init-cluster.sh --rotate push-token     a new push token
#   scripts/init-cluster.sh --algorithm ed25519     the root's algorithm, when it is made
#                                                   (default ml-dsa-65)
#   scripts/init-cluster.sh --archive s3            recordings in the S3 store of profile
#                                                   `s3` (Garage) instead of the shared
#                                                   volume `archive`; --archive volume
#                                                   goes back (the recordings stay where
#                                                   they were written)
#
# What it writes (none of it is committed; .gitignore and .dockerignore exclude it all):
#   .env                          mode 0600: the MQTT passwords, the push token, the
#                                 PostgreSQL and Grafana passwords, Garage's RPC secret
#                                 and S3 key (profile s3), the uid/gid the containers run
#                                 as, the ingest node ids; with --archive, SEALCAST_ARCHIVE
#                                 and COMPOSE_PROFILES
#   deploy/state/keys/            `sealcast keys init`: root key pair, push token, cookie
#                                 key, each ingest node's signing key and certificate, the
#                                 broadcast nodes' edge key and certificate (edge/)
#   deploy/state/mosquitto/       the brokers' password files and installed ACLs (0600),
#                                 the same for both brokers
#   deploy/state/mosquitto-data/  the first broker's persistence (mosquitto2-data/: the
#                                 second's)
#   certs/generated/              `sealcast certs`, when missing: the local CA and the load
#                                 balancer's server certificate
#   deploy/state/s3/credentials   the archive's S3 key for the broadcast nodes, when
#                                 missing: Garage's (the store of profile s3); put another
#                                 store's key here for an s3:// SEALCAST_ARCHIVE of yours
#   deploy/state/moq/key          the MoQ relay tier's key (broadcast nodes and relays)
#   deploy/state/lb-tls/          copies of the server certificate and key, the only TLS
#                                 files the load balancer's container gets (never the
#                                 CA's key); run this again after `tools certs`
#   dist/sealcast                 the release binary the sealcast image is made from
#   images                        when the upstream images cannot be had (no registry):
#                                 scripts/images.sh makes them from Debian's packages and
#                                 this script names them in .env (SEALCAST_IMAGE, ...)
#
# Which images: SEALCAST_IMAGES=auto (default: the upstream ones if they are here or can
# be pulled, else local ones), local (always scripts/images.sh) or upstream (never).
#
# Run with sudo, the files end up owned by the user who ran sudo (SUDO_UID/SUDO_GID), who
# is also who the containers run as (RUN_UID). Either compose tool runs the cluster:
# Debian 12's docker-compose 1.29 or Compose v2 (`docker compose`).
#
# sealcast comes from $SEALCAST_BIN, PATH or target/release/, else it is built here
# (cargo build --release, which the README's setup makes possible); mosquitto_passwd
# from PATH, else from the Mosquitto image.
set -euo pipefail
cd "$(dirname "$0")/.."
umask 077

state=deploy/state
env_file=.env

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
say() { echo "init-cluster: $*" >&2; }

rotate=()
algorithm=()
archive=""
while (($#)); do
  case "$1" in
    --rotate)
      case "${2:-}" in
        mqtt | push-token) rotate+=("$2") ;;
        *) say "--rotate takes mqtt or push-token"; exit 2 ;;
      esac
      shift 2
      ;;
    --algorithm)
      [ -n "${2:-}" ] || { say "--algorithm takes ml-dsa-65 or ed25519"; exit 2; }
      algorithm=(--algorithm "$2")
      shift 2
      ;;
    --archive)
      case "${2:-}" in
        s3 | volume) archive=$2 ;;
        *) say "--archive takes s3 or volume"; exit 2 ;;
      esac
      shift 2
      ;;
    -h | --help) usage; exit 0 ;;
    *) say "unknown argument $1 (see --help)"; exit 2 ;;
  esac
done
rotating() {
  local r
  for r in "${rotate[@]+"${rotate[@]}"}"; do [ "$r" = "$1" ] && return 0; done
  return 1
}

# --- .env -------------------------------------------------------------------------------
env_get() {
  if [ -f "$env_file" ]; then sed -n "s/^$1=//p" "$env_file" | tail -n 1; fi
}
env_set() { # NAME VALUE: replaces or appends the line; the file stays 0600
  local tmp
  tmp=$(mktemp "$env_file.XXXXXX")
  if [ -f "$env_file" ]; then grep -v "^$1=" "$env_file" >"$tmp" || true; fi
  printf '%s=%s\n' "$1" "$2" >>"$tmp"
  mv "$tmp" "$env_file"
}
rand_hex() { od -An -tx1 -N32 /dev/urandom | tr -d ' \n'; }
password_var() { printf 'MQTT_PASSWORD_%s' "$(printf '%s' "$1" | tr 'a-z-' 'A-Z_')"; }

if [ ! -f "$env_file" ]; then
  printf '%s\n' \
    "# The sealcast cluster's secrets and settings, for docker compose. Written by" \
    "# scripts/init-cluster.sh; mode 0600; never commit it. docs/deployment.md lists every" \
    "# variable (images: SEALCAST_IMAGE, RUNTIME_IMAGE, MOSQUITTO_IMAGE, ...)." \
    >"$env_file"
  say "wrote $env_file"
fi
chmod 600 "$env_file"

# The containers that read the 0600 key files run as their owner: whoever ran this (the
# user behind sudo, if that is how), or the image's own user when root ran it directly.
sudo_uid=${SUDO_UID:-}
sudo_gid=${SUDO_GID:-}
if [ "$(id -u)" -ne 0 ] || ! [[ "$sudo_uid" =~ ^[1-9][0-9]*$ && "$sudo_gid" =~ ^[0-9]+$ ]]; then
  sudo_uid=""
  sudo_gid=""
fi
if [ -z "$(env_get RUN_UID)" ]; then
  if [ -n "$sudo_uid" ]; then
    env_set RUN_UID "$sudo_uid"
    env_set RUN_GID "$sudo_gid"
  elif [ "$(id -u)" -eq 0 ]; then
    env_set RUN_UID 10001
    env_set RUN_GID 10001
  else
    env_set RUN_UID "$(id -u)"
    env_set RUN_GID "$(id -g)"
  fi
fi
run_uid=$(env_get RUN_UID)
run_gid=$(env_get RUN_GID)
if [ "$(id -u)" -ne 0 ] && [ "$run_uid" != "$(id -u)" ]; then
  say "warning: RUN_UID=$run_uid in $env_file is not you ($(id -u)); run this as that user or as root"
fi

[ -n "$(env_get INGEST_NODES)" ] || env_set INGEST_NODES "ingest1 ingest2"
ingest_nodes=$(env_get INGEST_NODES)
for node in $ingest_nodes; do
  [[ "$node" =~ ^[A-Za-z0-9_-]{1,64}$ ]] || { say "INGEST_NODES: $node is not a node id"; exit 2; }
  grep -qx "user $node" deploy/mosquitto/acl-nodes ||
    say "warning: deploy/mosquitto/acl-nodes has no 'user $node' block; $node cannot publish"
done
node_users=($ingest_nodes broadcast)
control_users=(lb admin)

changed=()
for user in "${node_users[@]}" "${control_users[@]}"; do
  var=$(password_var "$user")
  if [ -z "$(env_get "$var")" ] || rotating mqtt; then
    env_set "$var" "$(rand_hex)"
    changed+=("$var")
  fi
done
for var in POSTGRES_PASSWORD POSTGRES_EDGE_PASSWORD GRAFANA_ADMIN_PASSWORD GARAGE_RPC_SECRET GARAGE_SECRET_KEY; do
  if [ -z "$(env_get "$var")" ]; then
    env_set "$var" "$(rand_hex)"
    changed+=("$var")
  fi
done
# Garage's key ids are GK and 24 hex digits.
if [ -z "$(env_get GARAGE_ACCESS_KEY_ID)" ]; then
  env_set GARAGE_ACCESS_KEY_ID "GK$(od -An -tx1 -N12 /dev/urandom | tr -d ' \n')"
  changed+=(GARAGE_ACCESS_KEY_ID)
fi

# --- directories --------------------------------------------------------------------------
mkdir -p "$state/keys" "$state/mosquitto" "$state/mosquitto-data" "$state/mosquitto2-data" \
  "$state/lb-tls" "$state/s3" certs/generated
chmod 700 "$state"

# --- the archive of recordings (docs/deployment.md, "The archive of recordings") ----------
# The broadcast nodes read the S3 key from this file (never from their environment); it is
# Garage's until someone puts another store's there.
if [ ! -s "$state/s3/credentials" ]; then
  printf '%s\n' \
    "# The archive's S3 key, read by the broadcast nodes when SEALCAST_ARCHIVE is s3://..." \
    "# Written by scripts/init-cluster.sh with Garage's key (compose profile s3); replace" \
    "# both lines with your store's key to archive into another bucket." \
    "access_key_id=$(env_get GARAGE_ACCESS_KEY_ID)" \
    "secret_access_key=$(env_get GARAGE_SECRET_KEY)" >"$state/s3/credentials.new"
  mv "$state/s3/credentials.new" "$state/s3/credentials"
fi
# The MoQ relay tier's key (64 hex digits): the broadcast nodes mint publish credentials and
# private streams' viewers' grants with it, the relays' gates check them.
mkdir -p "$state/moq"
if [ ! -s "$state/moq/key" ]; then
  (umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$state/moq/key.new")
  mv "$state/moq/key.new" "$state/moq/key"
fi
chmod 600 "$state/moq/key"
# COMPOSE_PROFILES with profile $2 added (add) or taken out (remove).
profiles_with() {
  local have=$1 action=$2 name=$3 out=() p
  IFS=',' read -r -a list <<<"$have"
  for p in "${list[@]+"${list[@]}"}"; do [ -n "$p" ] && [ "$p" != "$name" ] && out+=("$p"); done
  [ "$action" = add ] && out+=("$name")
  (IFS=','; echo "${out[*]+"${out[*]}"}")
}
# Root makes the files; the containers' user must own them (and, under sudo, .env belongs
# to the user who ran sudo, so that they can run docker compose).
fix_owner() {
  if [ "$(id -u)" -eq 0 ] && [ "$run_uid" != 0 ]; then
    chown -R "$run_uid:$run_gid" "$state" certs/generated
  fi
  if [ -n "$sudo_uid" ]; then
    chown "$sudo_uid:$sudo_gid" "$env_file"
  fi
}
# The compose tool there is: Compose v2 (`docker compose`) or docker-compose 1.x; both
# read docker-compose.yml.
compose_tool() {
  if docker compose version >/dev/null 2>&1; then
    echo "docker compose"
  elif command -v docker-compose >/dev/null 2>&1; then
    echo "docker-compose"
  else
    return 1
  fi
}

# --- push token: .env is the source, the key directory's copy follows it --------------------
token_file=$state/keys/push-token
token=$(env_get SEALCAST_PUSH_TOKEN)
if rotating push-token || [ -z "$token" ]; then
  if [ -z "$token" ] && [ -s "$token_file" ] && ! rotating push-token; then
    token=$(tr -d ' \t\r\n' <"$token_file")
  else
    token="pt_$(rand_hex)"
  fi
  env_set SEALCAST_PUSH_TOKEN "$token"
  changed+=(SEALCAST_PUSH_TOKEN)
fi
if [ ! -f "$token_file" ] || [ "$(tr -d ' \t\r\n' <"$token_file")" != "$token" ]; then
  printf '%s\n' "$token" >"$token_file.new"
  mv "$token_file.new" "$token_file"
fi

# --- keys and certificates ----------------------------------------------------------------
ingest_args=()
for node in $ingest_nodes; do ingest_args+=(--ingest "$node"); done
local_sealcast() {
  if [ -n "${SEALCAST_BIN:-}" ]; then printf '%s\n' "$SEALCAST_BIN"; return 0; fi
  if [ -x target/release/sealcast ]; then printf '%s\n' target/release/sealcast; return 0; fi
  command -v sealcast
}
if ! bin=$(local_sealcast); then
  # What the build needs (the FFmpeg and OpenSSL libraries, clang), installed when missing
  # as the README's commands do.
  # shellcheck source=scripts/setup.sh
  source scripts/setup.sh build >&2
  say "building the sealcast release binary (cargo build --release; minutes, once)"
  cargo build --release --locked -p sealcast --bin sealcast >&2
  bin=target/release/sealcast
fi
say "sealcast: $bin"
# The load balancers' floating address and their own are in the server certificate, so
# that viewers who use them verify it.
lb_names=()
for var in LB_VIP LB1_ADDRESS LB2_ADDRESS; do
  case $var in
    LB_VIP) default=10.237.240.100 ;;
    LB1_ADDRESS) default=10.237.240.11 ;;
    LB2_ADDRESS) default=10.237.240.12 ;;
  esac
  lb_names+=(--name "$(env_get "$var" | grep . || echo "$default")")
done
# sealcast gives private files mode 0600 itself; public ones (root.pub, ca.pem) stay
# readable by the broadcast nodes' user and by whoever installs the CA.
(
  umask 022
  "$bin" keys --keys-dir "$state/keys" init "${algorithm[@]+"${algorithm[@]}"}" "${ingest_args[@]}"
  # Made, or renewed when a name is missing or it is about to expire; kept otherwise.
  if "$bin" certs --certs-dir certs/generated "${lb_names[@]}" | grep -q '^issued'; then
    echo "init-cluster: wrote the server certificate into certs/generated/" >&2
  fi
)

# --- images ----------------------------------------------------------------------------------
# The release binary the sealcast image is made from (deploy/docker/prebuilt.Dockerfile, the
# Dockerfile's runtime stage, copies dist/sealcast).
if [ ! -x dist/sealcast ] || ! cmp -s "$bin" dist/sealcast; then
  install -D -m 0755 "$bin" dist/sealcast
fi
[ -n "$(env_get COMPOSE_PROJECT_NAME)" ] || env_set COMPOSE_PROJECT_NAME sealcast
# upstream IMAGE: here already, or pulled now.
upstream() {
  docker image inspect "$1" >/dev/null 2>&1 || timeout 120 docker pull -q "$1" >/dev/null 2>&1
}
upstream_images=(debian:bookworm-slim eclipse-mosquitto:2 postgres:16-bookworm prom/prometheus:v3.5.0)
images_mode=${SEALCAST_IMAGES:-auto}
case $images_mode in
  auto | local | upstream) ;;
  *) say "SEALCAST_IMAGES is auto, local or upstream, not $images_mode"; exit 2 ;;
esac
if [ "$images_mode" != upstream ] && ! command -v docker >/dev/null 2>&1; then
  say "no docker here: no images made (the cluster needs Docker to run)"
elif [ "$images_mode" != upstream ]; then
  # Local images named in .env already: made again only if what they come from changed.
  case $(env_get SEALCAST_IMAGE) in sealcast-runtime:*) [ "$images_mode" = auto ] && images_mode=local ;; esac
  if [ "$images_mode" = auto ]; then
    images_mode=upstream
    for image in "${upstream_images[@]}"; do
      if ! upstream "$image"; then
        say "$image cannot be had (no registry?): making local images from Debian's packages"
        images_mode=local
        break
      fi
    done
  fi
  if [ "$images_mode" = local ]; then
    # The relay tier's image holds the moq-relay binary scripts/setup.sh builds (once).
    if [ -z "${SEALCAST_MOQ_RELAY_BIN:-}" ] &&
      [ ! -x "${SEALCAST_MOQ_RELAY_ROOT:-$HOME/.cache/sealcast/moq-relay}/bin/moq-relay" ]; then
      say "building moq-relay for the relay tier (cargo install; minutes, once)"
      SEALCAST_SETUP_MOQ_RELAY=1 bash scripts/setup.sh build >&2
    fi
    SEALCAST_BIN=$bin scripts/images.sh >"$state/images.env"
    while IFS='=' read -r name value; do
      if [ "$(env_get "$name")" != "$value" ]; then env_set "$name" "$value"; changed+=("$name"); fi
    done <"$state/images.env"
    rm -f "$state/images.env"
  fi
fi
# Grafana has no Debian package: its profile is on only when its image can be had (with
# SEALCAST_IMAGES=upstream, a registry is taken for granted and nothing is pulled here).
if [ -z "$(env_get COMPOSE_PROFILES)" ]; then
  if [ "$images_mode" = upstream ] && [ "${SEALCAST_IMAGES:-auto}" = upstream ]; then
    env_set COMPOSE_PROFILES grafana
  elif [ "$images_mode" = upstream ] &&
    upstream "$(env_get GRAFANA_IMAGE | grep . || echo grafana/grafana:11.4.0)"; then
    env_set COMPOSE_PROFILES grafana
  fi
fi

# The archive's store, when --archive names one (after Grafana's profile, decided once).
case $archive in
  s3)
    env_set SEALCAST_ARCHIVE "s3://$(env_get GARAGE_BUCKET | grep . || echo sealcast-recordings)?endpoint=http://garage:3900&region=garage&create=check-first"
    env_set COMPOSE_PROFILES "$(profiles_with "$(env_get COMPOSE_PROFILES)" add s3)"
    changed+=(SEALCAST_ARCHIVE COMPOSE_PROFILES)
    ;;
  volume)
    tmp=$(mktemp "$env_file.XXXXXX")
    grep -v '^SEALCAST_ARCHIVE=' "$env_file" >"$tmp" || true
    mv "$tmp" "$env_file"
    env_set COMPOSE_PROFILES "$(profiles_with "$(env_get COMPOSE_PROFILES)" remove s3)"
    changed+=(SEALCAST_ARCHIVE COMPOSE_PROFILES)
    ;;
esac
case ",$(env_get COMPOSE_PROFILES)," in
  *,s3,*)
    if [ "$images_mode" = local ] && [ -z "$(env_get GARAGE_IMAGE)" ]; then
      say "warning: profile s3 but no Garage image (no registry, and no garage binary for scripts/images.sh: scripts/setup.sh test builds one); set GARAGE_IMAGE or run this again after"
    fi
    ;;
esac

# --- the broker's users and ACLs ----------------------------------------------------------
mosquitto_image=$(env_get MOSQUITTO_IMAGE)
hash_passwords() { # FILE of user:password lines, hashed in place
  if command -v mosquitto_passwd >/dev/null 2>&1; then
    mosquitto_passwd -H sha512-pbkdf2 -U "$1"
  else
    fix_owner
    docker run --rm --user "$run_uid:$run_gid" -v "$PWD/$state/mosquitto:/work" \
      "${mosquitto_image:-eclipse-mosquitto:2}" \
      mosquitto_passwd -H sha512-pbkdf2 -U "/work/$(basename "$1")"
  fi
}
write_passwords() { # NAME USER...: deploy/state/mosquitto/NAME
  local file=$state/mosquitto/$1 user
  shift
  : >"$file.new"
  for user in "$@"; do
    printf '%s:%s\n' "$user" "$(env_get "$(password_var "$user")")" >>"$file.new"
  done
  hash_passwords "$file.new"
  mv "$file.new" "$file"
}
write_passwords passwd-nodes "${node_users[@]}"
write_passwords passwd-control "${control_users[@]}"
install -m 600 deploy/mosquitto/acl-nodes "$state/mosquitto/acl-nodes"
install -m 600 deploy/mosquitto/acl-control "$state/mosquitto/acl-control"
say "wrote the broker's users and ACLs into $state/mosquitto/"

# The broadcast nodes run as the image's user (10001) and read only this file.
chmod 644 "$state/keys/root.pub"

# --- the load balancer's certificate and key ------------------------------------------------
# Copies, replaced by renaming only when they changed, so the load balancer reloads them.
copy_if_changed() { # FROM TO MODE
  if ! cmp -s "$1" "$2"; then
    install -m "$3" "$1" "$2.new"
    mv "$2.new" "$2"
    say "updated $2"
  fi
}
copy_if_changed certs/generated/server.pem "$state/lb-tls/server.pem" 644
copy_if_changed certs/generated/server.key "$state/lb-tls/server.key" 600
fix_owner

# --- what next ----------------------------------------------------------------------------
if ((${#changed[@]})); then say "new in $env_file: ${changed[*]}"; fi
if rotating mqtt; then
  say "apply the new MQTT passwords: docker-compose kill -s SIGHUP mosquitto mosquitto2 && docker-compose up -d"
elif rotating push-token; then
  say "apply the new push token: docker-compose up -d (recreates the ingest and broadcast nodes)"
else
  compose=$(compose_tool) || {
    compose="docker compose"
    say "warning: no compose tool here (docker-compose or docker compose); the cluster needs one"
  }
  cat >&2 <<EOF
init-cluster: ready. Next:
  $compose up -d
  $compose run --rm tools api-keys add admin --scope admin   # the /dashboard key, shown once
  $compose run --rm tools streams add cam1                     # an OBS stream key, shown once
Viewers trust certs/generated/ca.pem (docs/deployment.md, "Host names and the local CA").
If the brokers are running already: $compose kill -s SIGHUP mosquitto mosquitto2
EOF
fi
