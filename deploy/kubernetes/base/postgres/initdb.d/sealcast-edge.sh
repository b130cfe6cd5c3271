#!/bin/bash
# Run once, when the data volume is new, by the postgres image's entrypoint (the upstream
# image's and deploy/docker/postgres/entrypoint.sh both run /docker-entrypoint-initdb.d/),
# as the cluster's owner, with the server listening on its Unix socket only.
#
# Makes sealcast_edge, the broadcast nodes' role (docs/deployment.md, "The catalog's
# roles"): it may log in to the sealcast database and nothing more here. Its privileges on
# the catalog's tables are granted by sealcast itself, by the owner each time it opens the
# catalog after migrating (catalog/src/sql.rs, EDGE_GRANTS), since the tables do not exist
# yet. No role but the owner may create anything in the schema or temporary tables.
#
# The password comes from POSTGRES_EDGE_PASSWORD (.env, made by scripts/init-cluster.sh;
# the Secret sealcast-postgres on Kubernetes); psql reads it from the environment, never
# from its command line.
set -euo pipefail
if [ -z "${POSTGRES_EDGE_PASSWORD:-}" ]; then
  echo "sealcast-edge: POSTGRES_EDGE_PASSWORD is not set; refusing to make the edge role without one" >&2
  exit 1
fi
psql -v ON_ERROR_STOP=1 --no-psqlrc --username="${POSTGRES_USER:-postgres}" \
  --dbname="${POSTGRES_DB:-${POSTGRES_USER:-postgres}}" >/dev/null <<'SQL'
\getenv edge_password POSTGRES_EDGE_PASSWORD
CREATE ROLE sealcast_edge LOGIN NOINHERIT PASSWORD :'edge_password';
REVOKE ALL ON DATABASE :"DBNAME" FROM PUBLIC;
GRANT CONNECT ON DATABASE :"DBNAME" TO sealcast_edge;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO sealcast_edge;
SQL
echo "sealcast-edge: made the role sealcast_edge" >&2
