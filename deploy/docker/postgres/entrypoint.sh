#!/bin/bash
# The stand-in postgres image's entrypoint (deploy/docker/postgres/Dockerfile): what the
# official image's does for POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB, and its
# /docker-entrypoint-initdb.d/*.sh scripts (sealcast's edge role: initdb.d/).
set -euo pipefail
if [ "${1:-}" != postgres ]; then exec "$@"; fi
shift
if [ "$(id -u)" = 0 ]; then
  install -d -o postgres -g postgres -m 0700 "$PGDATA"
  if [ "$(stat -c %U "$PGDATA")" != postgres ]; then chown -R postgres:postgres "$PGDATA"; fi
  install -d -o postgres -g postgres -m 2775 /var/run/postgresql
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" postgres "$@"
fi
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  user=${POSTGRES_USER:-postgres}
  db=${POSTGRES_DB:-$user}
  if [ -z "${POSTGRES_PASSWORD:-}" ]; then
    echo "postgres: POSTGRES_PASSWORD is not set; refusing to make a cluster without one" >&2
    exit 1
  fi
  pwfile=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
  initdb -D "$PGDATA" --username="$user" --pwfile="$pwfile" --encoding=UTF8 \
    --locale=C.UTF-8 --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f "$pwfile"
  echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
  if [ "$db" != postgres ]; then
    psql -v ON_ERROR_STOP=1 --username="$user" --dbname=postgres \
      --set=db="$db" <<<'CREATE DATABASE :"db";' >/dev/null
  fi
  # As the official image: its scripts, in name order, on the socket-only server.
  export POSTGRES_USER="$user" POSTGRES_DB="$db"
  for script in /docker-entrypoint-initdb.d/*.sh; do
    [ -f "$script" ] || continue
    echo "postgres: running $script" >&2
    bash "$script"
  done
  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  echo "postgres: made a cluster in $PGDATA (user $user, database $db)" >&2
fi
exec postgres "$@"
