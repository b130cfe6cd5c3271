#!/usr/bin/env bash
# The compose cluster in containers (issue 30): how long `up -d` takes to a playable master
# playlist (cached images; and cold, with BENCH_COLD=1: the images made again first), from
# `--scale broadcast=6` to the first viewer on a new edge, the floating address's failover
# (holder SIGKILLed: address moved, first answer through it), and CPU and RSS per container
# (`docker stats`) idle and with one stream, next to the same roles as one `sealcast up`
# process. Writes bench/out/compose.json and its section of docs/benchmarks.md.
#
#   bench/compose.sh [RUNS]      RUNS up/scale/failover rounds (default 3)
#
# Needs Docker and a compose tool, and root (the init script's debootstrap, the SIGKILL of
# a container's process). Uses its own project name, host ports and subnet.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
runs=${1:-3}

compose=(docker-compose)
docker-compose version >/dev/null 2>&1 || compose=(docker compose)
bench_build
bench_driver
bench_workdir
cp -a docker-compose.yml Dockerfile .dockerignore scripts deploy hosts.example "$WORK/"
rm -rf "$WORK/deploy/state"
project=sealcast-bench-$$
third=$((150 + $$ % 100))
https_port=$(free_port)
{
  echo "COMPOSE_PROJECT_NAME=$project"
  echo "FRONTEND_SUBNET=10.237.$third.0/24"
  echo "FRONTEND_RANGE=10.237.$third.128/25"
  echo "LB1_ADDRESS=10.237.$third.11"
  echo "LB2_ADDRESS=10.237.$third.12"
  echo "LB_VIP=10.237.$third.100"
  echo "LB_HTTPS_PORT=$https_port"
  echo "LB_HTTP_PORT=$(free_port)"
  echo "INGEST1_RTMP_PORT=$(free_port)"
  echo "INGEST2_RTMP_PORT=$(free_port)"
  echo "PROMETHEUS_PORT=$(free_port)"
  echo "GRAFANA_PORT=$(free_port)"
} >"$WORK/.env"
chmod 600 "$WORK/.env"
vip=10.237.$third.100
c() { (cd "$WORK" && "${compose[@]}" -p "$project" "$@"); }
down() { c --profile tools down -v -t 5 >/dev/null 2>&1 || true; }
trap 'down; bench_cleanup' EXIT
now() { date +%s.%N; }
since() { "$DRIVER" calc elapsed "$1" "$(now)"; }

cold_init=null
if [ "${BENCH_COLD:-0}" = 1 ]; then
  docker images --format '{{.Repository}}:{{.Tag}}' | grep '^sealcast-' | xargs -r docker rmi -f >/dev/null
  t=$(now)
  (cd "$WORK" && SEALCAST_BIN="$BIN" scripts/init-cluster.sh >/dev/null 2>&1)
  cold_init=$(since "$t")
fi
t=$(now)
(cd "$WORK" && SEALCAST_BIN="$BIN" scripts/init-cluster.sh >/dev/null 2>&1)
warm_init=$(since "$t")
ca=$WORK/certs/generated/ca.pem

playable() { # URL: until it answers 200
  until [ "$(curl -s -o /dev/null -w '%{http_code}' -m 2 --cacert "$ca" "$1")" = 200 ]; do sleep 0.1; done
}
healthy() {
  local ids
  while :; do
    ids=$(docker ps -a -q --filter "label=com.docker.compose.project=$project")
    # shellcheck disable=SC2086
    if ! docker inspect --format '{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}' $ids |
      grep -qv '^running \(healthy\)\?$'; then return; fi
    sleep 0.2
  done
}
node_of() { curl -s -D - -o /dev/null --cacert "$ca" "$1" | tr -d '\r' | sed -n 's/^x-sealcast-node: //p'; }
stats() { # LABEL: one JSON object per container
  local ids
  ids=$(docker ps -q --filter "label=com.docker.compose.project=$project")
  # shellcheck disable=SC2086
  docker stats --no-stream --format '{{.ID}} {{.CPUPerc}} {{.MemUsage}}' $ids | while read -r id cpu mem _; do
    service=$(docker inspect --format '{{index .Config.Labels "com.docker.compose.service"}}' "$id")
    printf '{"when":"%s","service":"%s","cpu":"%s","mem":"%s"}\n' "$1" "$service" "$cpu" "$mem"
  done
}

rounds=()
for run in $(seq 1 "$runs"); do
  down
  t=$(now)
  c up -d >/dev/null 2>&1
  healthy
  to_healthy=$(since "$t")
  playable "https://127.0.0.1:$https_port/live/demo1/master.m3u8"
  to_master=$(since "$t")
  before=$(docker ps -q --filter "label=com.docker.compose.project=$project" --filter "label=com.docker.compose.service=broadcast" | sort)
  t=$(now)
  c up -d --no-recreate --scale broadcast=6 >/dev/null 2>&1
  after=$(docker ps -q --filter "label=com.docker.compose.project=$project" --filter "label=com.docker.compose.service=broadcast" | sort)
  new=$(comm -13 <(echo "$before") <(echo "$after") | sed 's/^/broadcast-/')
  while ! grep -qxF "$(node_of "https://127.0.0.1:$https_port/live/demo1/master.m3u8")" <<<"$new"; do sleep 0.05; done
  to_new_edge=$(since "$t")
  holder=lb1
  nsenter -t "$(docker inspect --format '{{.State.Pid}}' "$(c ps -q lb2)")" -n ip -o -4 addr show |
    grep -q " $vip/" && holder=lb2
  other=lb1; [ "$holder" = lb1 ] && other=lb2
  # Both processes looked up before the clock starts; the address read from the host with
  # nsenter (docker exec takes tenths of a second itself).
  other_pid=$(docker inspect --format '{{.State.Pid}}' "$(c ps -q "$other")")
  holder_pid=$(docker inspect --format '{{.State.Pid}}' "$(c ps -q "$holder")")
  t=$(now)
  kill -9 "$holder_pid"
  until nsenter -t "$other_pid" -n ip -o -4 addr show | grep -q " $vip/"; do sleep 0.02; done
  moved=$(since "$t")
  playable "https://$vip/live/demo1/master.m3u8"
  answered=$(since "$t")
  rounds+=("{\"up_to_healthy_s\":$to_healthy,\"up_to_master_s\":$to_master,\"scale_to_new_edge_s\":$to_new_edge,\"failover_moved_s\":$moved,\"failover_answered_s\":$answered}")
  echo "compose run $run: healthy $to_healthy s, master $to_master s, new edge $to_new_edge s, failover $moved / $answered s" >&2
done

# Resources: no stream (sources stopped), then one (source1, 1280x720).
c up -d --no-recreate --scale broadcast=3 --scale source1=0 --scale source2=0 >/dev/null 2>&1
healthy
sleep 20 # settle: docker stats averages over its own sampling
idle=$(stats idle)
c up -d --no-recreate --scale broadcast=3 --scale source1=1 --scale source2=0 >/dev/null 2>&1
playable "https://127.0.0.1:$https_port/live/demo1/master.m3u8"
sleep 20
streaming=$(stats one-stream)
down

# The same roles as one process: `sealcast up` (3 edges, embedded broker, SQLite), idle
# and with one 1280x720 stream from `sealcast source`.
bench_clear_env
dir=$WORK/up
mkdir -p "$dir"
"$BIN" up --data-dir "$dir/data" --certs-dir "$dir/certs" --broadcast 3 \
  --rtmp-listen 127.0.0.1:0 --srt-listen 127.0.0.1:0 --webrtc-listen 127.0.0.1:0 --broadcast-listen 127.0.0.1:0 --mqtt-listen 127.0.0.1:0 \
  --https-listen 127.0.0.1:0 --http-listen 127.0.0.1:0 >"$dir/up.out" 2>"$dir/up.err" &
up_pid=$!
PIDS+=("$up_pid")
for _ in $(seq 1 300); do grep -q '^stream-key main ' "$dir/up.out" && break; sleep 0.1; done
rtmp=$(awk '/^obs-server /{print $2}' "$dir/up.out")
key=$(awk '/^stream-key main /{print $3}' "$dir/up.out")
[ -n "$key" ] || { tail "$dir/up.err" >&2; echo "compose: sealcast up did not start" >&2; exit 1; }
sleep 20
proc_stat() { # LABEL
  local rss ticks1 ticks2
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$up_pid/status")
  ticks1=$(cpu_ticks "$up_pid"); sleep 10; ticks2=$(cpu_ticks "$up_pid")
  printf '{"when":"%s","rss_kib":%s,"cpu_percent":%s}\n' "$1" "$rss" \
    "$("$DRIVER" calc cpu-percent "$ticks1" "$ticks2" --hz "$(getconf CLK_TCK)" --seconds 10)"
}
proc_idle=$(proc_stat idle)
SEALCAST_SOURCE_URL="$rtmp/$key" "$BIN" source >/dev/null 2>&1 &
PIDS+=($!)
sleep 30
proc_stream=$(proc_stat one-stream)

"$DRIVER" report compose --runs "$runs" --cold "$cold_init" --warm "$warm_init" \
  --rounds "$(printf '%s\n' "${rounds[@]}")" --idle "$idle" --streaming "$streaming" \
  --process-idle "$proc_idle" --process-stream "$proc_stream" --tool "${compose[*]}"
