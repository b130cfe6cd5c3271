# Sourced by bench/llhls-node.sh and bench/llhls-lb.sh (issue 33, the first two rows of
# "benchmarks of the real workload"), not run by itself. The caller sets ROW (node or lb),
# HEADING, SYSTEMS and the ramp defaults (START, STEP, GROWTH, MAX_VIEWERS).
#
# The live stream: a cluster of separate processes as in bench/capacity.sh: a mosquitto
# broker, `sealcast ingest` and `sealcast source` (a 640x360 30 fps test pattern, ~730 kb/s,
# 2 s GOP, real time, for the whole run), and `sealcast broadcast` nodes. The ladder is the
# source rung only, named `360p` (not re-encoded: no transcode CPU anywhere), CMAF, 2 s
# segments, LL-HLS parts of PART_TARGET (0.333 s, the shipping default), a window of 6.
#
# The viewers: `sealcast-viewers --mode ll` (bench/viewers, src/ll.rs), each like hls.js in
# low-latency mode on the 360p rung: one blocking playlist reload after another
# (`_HLS_msn`/`_HLS_part` naming the part after the last listed one, `_HLS_skip=YES` once it
# has a full playlist), the preload-hinted part asked for as soon as it is hinted (the
# server holds it until it exists), every listed part from PART-HOLD-BACK behind the edge,
# rendition reports read; one client, so one HTTP/2 connection, per viewer, each from its
# own loopback address (`--sources`, SOURCES): a node counts its viewers by address, and
# the load balancer lets a viewer's playlist requests collapse only while the node has
# counted that viewer (loadbalancer/src/counted.rs), as on the Internet. A buffer model
# plays each part for its duration and counts a stall when the next has not arrived.
# Against a server that cannot block (nginx) the same viewers poll instead
# (`--mode ll-poll`: the playlist every part target, open loop, no hints, each new part at
# once): the best LL-HLS that server can offer.
#
# The ramp: viewers arrive open loop (Poisson, ARRIVAL) over the first JOIN_SECS of each
# STEP_SECS step (START, then +STEP or xGROWTH, whichever adds more, up to MAX_VIEWERS). A
# step passes when no request due in it failed, no viewer stalled in it, and the parts'
# time to first byte has p99 < TTFB_MS (a listed part's TTFB from when it was asked for; a
# hinted part's from when it existed, that is from the first answer any viewer had for it:
# the hold before that is by design). The count is the last step that passed. Each step
# also reports latency behind the live edge (wall clock at a part's arrival minus its
# EXT-X-PROGRAM-DATE-TIME), blocking-reload waits, requests per second by kind, the CPU of
# the servers under test, of the load generator and of each core, and how late the
# generator issued requests: when the step that failed shows the generator short of CPU
# (issue lag p99 > LAG_LIMIT_MS, or core 1 busy >= GEN_BUSY) the count is a lower bound.
#
# Placement on this 2-core machine: the servers under test on core 0; broker, ingest,
# source, mirror, the servers not under test and the load generator (one thread) on core 1.
# Processes whose thread count is their default are started on both cores (tokio sizes its
# runtime from the CPUs a process may use) and pinned after they started.
#
# RUNS runs; each runs every system once, the order rotating every run. Ratios ours/peer
# per run (median, min-max over runs where both counts are exact), the peer against itself
# in consecutive runs (A/A) as the noise floor. Writes RESULTS (JSON) and the section
# HEADING of docs/benchmarks.md (DOCS; DOCS= skips it), and prints the section.
#
# Environment: SEALCAST_BIN, VIEWERS_BIN (prebuilt binaries), STEP_SECS, JOIN_SECS,
# SETTLE_SECS, TTFB_MS, START, STEP, GROWTH, MAX_VIEWERS, ARRIVAL (poisson or paced),
# SOURCES (client addresses, default MAX_VIEWERS; 0: every viewer from 127.0.0.1),
# PART_TARGET, LAG_LIMIT_MS, GEN_BUSY, SYSTEMS (a subset, in order), LLHLS_RESULTS (the
# JSON, default bench/out/llhls-ROW.json), LLHLS_DOCS (default docs/benchmarks.md).

# Relative paths are relative to where the script was started.
[ -z "${SEALCAST_BIN:-}" ] || SEALCAST_BIN="$(realpath -m "$SEALCAST_BIN")"
[ -z "${VIEWERS_BIN:-}" ] || VIEWERS_BIN="$(realpath -m "$VIEWERS_BIN")"
[ -z "${LLHLS_RESULTS:-}" ] || LLHLS_RESULTS="$(realpath -m "$LLHLS_RESULTS")"
cd "$(dirname "${BASH_SOURCE[0]}")/.."
WORK=""
RESULTS="${LLHLS_RESULTS:-bench/out/llhls-$ROW.json}"
DOCS="${LLHLS_DOCS-docs/benchmarks.md}"
RUNS="${1:-5}"
STEP_SECS="${STEP_SECS:-8}"; JOIN_SECS="${JOIN_SECS:-4}"; SETTLE_SECS="${SETTLE_SECS:-2}"; TTFB_MS="${TTFB_MS:-250}"
ARRIVAL="${ARRIVAL:-poisson}"; PART_TARGET="${PART_TARGET:-0.333}"; SOURCES="${SOURCES:-$MAX_VIEWERS}"
LAG_LIMIT_MS="${LAG_LIMIT_MS:-50}"; GEN_BUSY="${GEN_BUSY:-0.95}"
STREAM=ll
PLAYLIST="/live/$STREAM/360p/index.m3u8"
MASTER="/live/$STREAM/master.m3u8"
source bench/lib.sh
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "usage: bench/llhls-$ROW.sh [RUNS]"
[[ "$ARRIVAL" =~ ^(poisson|paced)$ ]] || die "ARRIVAL is poisson or paced"
[ "$(nproc)" -ge 2 ] || die "needs two cores (servers on core 0, everything else on core 1)"
# An LL-HLS viewer over HTTP/1.1 keeps up to 3 connections (a held reload, a held hint, a
# part), over HTTP/2 one; a proxy one more to the node per held request.
ulimit -n "$(ulimit -Hn)"
NOFILE="$(ulimit -n)"
[ "$NOFILE" != unlimited ] || NOFILE=1048576
[ $((4 * MAX_VIEWERS + 1000)) -le "$NOFILE" ] \
  || die "MAX_VIEWERS=$MAX_VIEWERS needs $((4 * MAX_VIEWERS + 1000)) open files; the limit is $NOFILE"

bench_install "llhls-$ROW" nginx haproxy mosquitto curl openssl util-linux python3
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
HAPROXY="$(command -v haproxy || echo /usr/sbin/haproxy)"
bench_tmpfs_workdir "llhls-$ROW"
bench_binary
VIEWERS="${VIEWERS_BIN:-}"
if [ -z "$VIEWERS" ]; then bench_tool sealcast-viewers; VIEWERS="$TOOL"; fi
[ -x "$VIEWERS" ] || die "no sealcast-viewers binary at $VIEWERS"
bench_clear_env
# pin CORE PID...: every thread of each process onto CORE.
pin() { local core="$1" p; shift; for p in "$@"; do taskset -a -pc "$core" "$p" > /dev/null; done; }

# --- 1. the live stream ---------------------------------------------------------------------------------
bench_mosquitto 1 || die "no broker"
bench_ll_cluster "$STREAM" "$PART_TARGET" || die "could not set up the cluster"
# start_node NAME [ENV...]: a broadcast node on a free port, on both cores until pinned; sets
# NODE_PORT and NODE_PID.
start_node() {
  local name="$1"; shift
  NODE_PORT="$(free_port)"
  env "$@" taskset -c 0,1 "$BIN" broadcast --data-dir "$DATA" --config "$WORK/sealcast.toml" \
    --listen "127.0.0.1:$NODE_PORT" --node-id "$name" --recordings "$WORK/rec-$name" --ready-timeout 2 \
    > "$WORK/$name.out" 2> "$WORK/$name.err" &
  NODE_PID=$!
  PIDS+=("$NODE_PID")
  bench_wait_for 30 grep -q "^$name " "$WORK/$name.out" || { alive "$NODE_PID" "$name"; die "$name did not report ready in 30 s"; }
}
start_node llnode
NODE_URL="http://127.0.0.1:$NODE_PORT"; NODE_MAIN=$NODE_PID
if [ "$ROW" = node ]; then
  start_node llnode1w TOKIO_WORKER_THREADS=1
  NODE1_URL="http://127.0.0.1:$NODE_PORT"; NODE1_PID=$NODE_PID
fi
NODE_PID=$NODE_MAIN

bench_ll_publish 1 || die "could not publish"
# Three segments and their parts listed: a window to join.
listed() { curl -sf --max-time 2 "$1$PLAYLIST" | python3 -c 'import sys; t = sys.stdin.read(); sys.exit(0 if t.count("#EXTINF") >= 3 and "#EXT-X-PART:" in t else 1)'; }
echo "llhls-$ROW: waiting for the node to list 3 segments with parts" >&2
bench_wait_for 60 listed "$NODE_URL" || { alive "$SOURCE_PID" "sealcast source"; die "the node did not list 3 segments with parts in 60 s"; }
[ "$ROW" != node ] || bench_wait_for 20 listed "$NODE1_URL" || die "the second node did not list the stream"
pl="$(curl -sf "$NODE_URL$PLAYLIST")"
# last_part PLAYLIST_TEXT: the URI of the last part it lists.
last_part() { grep '^#EXT-X-PART:' <<< "$1" | grep -o 'URI="[^"]*"' | tail -1 | cut -d'"' -f2; }
PART_BYTES="$(curl -sf "$NODE_URL/live/$STREAM/360p/$(last_part "$pl")" | wc -c)"
echo "llhls-$ROW: live, a part is $PART_BYTES bytes" >&2
SERVER_TLS=""; PEER_TLS=""

# --- 2a. nginx on a mirror of the node's LL-HLS files ------------------------------------------------------
if [ "$ROW" = node ]; then
  WWW="$WORK/www"; mkdir -p "$WWW"; chmod 755 "$WWW"
  cat > "$WORK/mirror.py" <<'PY'
# Mirrors a live LL-HLS rendition from a node into a directory for nginx, following it the
# way a low-latency player does: a blocking reload for the part after the last one listed;
# on each answer, the parts, segments and init segment it lists that are not here yet,
# then the playlist (the node's own text); each file written beside its place and renamed
# into it, so nginx never serves a partial file nor a playlist listing a file it lacks.
# Files not listed for 30 s are removed. Prints "ready" once it has a playlist.
import http.client, pathlib, re, sys, time
host, port, master, playlist, root = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
PART = re.compile(r'^#EXT-X-PART:.*URI="(\d+)\.(\d+)\.m4s"', re.M)
LISTED = re.compile(r'^(?:#EXT-X-(?:PART|MAP):.*URI="([^"]+)".*|([^#\n][^\n]*))$', re.M)
node = http.client.HTTPConnection(host, port, timeout=15)

def fetch(path):
    """The body of a 200 answer, reconnecting once when a kept-alive connection was lost."""
    global node
    for attempt in range(2):
        try:
            node.request("GET", path)
            answer = node.getresponse()
            body = answer.read()
            break
        except (OSError, http.client.HTTPException):
            node.close()
            node = http.client.HTTPConnection(host, port, timeout=15)
            if attempt:
                raise
    if answer.status != 200:
        raise OSError(f"{path}: HTTP {answer.status}")
    return body

def publish(path, body):
    dest = pathlib.Path(root + path)
    dest.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    tmp = dest.with_name(".tmp-" + dest.name)
    tmp.write_bytes(body)
    tmp.chmod(0o644)
    tmp.replace(dest)

publish(master, fetch(master))
base = playlist.rsplit("/", 1)[0] + "/"
listed_at, text = {}, ""
while True:
    last = PART.findall(text)
    query = f"?_HLS_msn={last[-1][0]}&_HLS_part={int(last[-1][1]) + 1}" if last else ""
    try:
        body = fetch(playlist + query)
        fresh, text, now = not text, body.decode(), time.monotonic()
        for m in LISTED.finditer(text):
            uri = m.group(1) or m.group(2)
            if uri not in listed_at:
                publish(base + uri, fetch(base + uri))
            listed_at[uri] = now
        publish(playlist, body)
        for uri in [u for u, at in listed_at.items() if now - at > 30]:
            pathlib.Path(root + base + uri).unlink(missing_ok=True)
            del listed_at[uri]
        if fresh:
            print("ready", flush=True)
    except (OSError, http.client.HTTPException, UnicodeDecodeError) as e:
        print(f"mirror: {e}", file=sys.stderr, flush=True)
        text = ""
        time.sleep(0.2)
PY
  bench_start mirror 1 python3 "$WORK/mirror.py" 127.0.0.1 "${NODE1_URL##*:}" "$MASTER" "$PLAYLIST" "$WWW"
  MIRROR_PID=$LAST_PID
  bench_wait_for 20 grep -q '^ready' "$WORK/mirror.out" || die "the mirror did not start"
  NGINX_PORT="$(free_port)"
  bench_nginx_conf "$WORK/nginx" "$NGINX_PORT" "$WWW" "$NOFILE"
  bench_start nginx 0 "$NGINX" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log"
  NGINX_PID=$LAST_PID
  NGINX_URL="http://127.0.0.1:$NGINX_PORT"
  bench_wait_for 10 curl -sf "$NGINX_URL$PLAYLIST" || die "nginx did not answer"
  NGINX_PIDS="$NGINX_PID $(pgrep -P "$NGINX_PID" | tr '\n' ' ')"
  # The same bytes: the master, the init segment, a part listed by both.
  same() { [ "$(curl -sf "$NODE1_URL$1" | sha256sum)" = "$(curl -sf "$NGINX_URL$1" | sha256sum)" ]; }
  same "$MASTER" || die "nginx and the node serve different master playlists"
  same "/live/$STREAM/360p/init.mp4" || die "nginx and the node serve different init segments"
  part="$(last_part "$(curl -sf "$NGINX_URL$PLAYLIST")")"
  same "/live/$STREAM/360p/$part" || die "nginx and the node serve different bytes for $part"
  echo "llhls-$ROW: nginx $NGINX_URL mirrors the node (part $part: the same bytes)" >&2
fi

# --- 2b. the load balancers over TLS, in front of the node ---------------------------------------------------
ok200() { [ "$(curl -s --max-time 3 --cacert "$CA" -o /dev/null -w '%{http_code}' "$1")" = 200 ]; }
if [ "$ROW" = lb ]; then
  # lb NAME [ENV...]: a load balancer on a free port, on both cores until pinned; sets LB_URL
  # and LB_PID.
  lb() {
    local name="$1" port; shift
    port="$(free_port)"
    env "$@" taskset -c 0,1 "$BIN" lb --data-dir "$DATA" --certs-dir "$WORK/certs" \
      --https-listen "127.0.0.1:$port" --http-listen "127.0.0.1:$(free_port)" \
      --metrics-listen "127.0.0.1:$(free_port)" --node-id "$name" --no-access-log --no-limits \
      > "$WORK/$name.out" 2> "$WORK/$name.err" &
    LB_PID=$!
    PIDS+=("$LB_PID")
    LB_URL="https://localhost:$port"
    bench_wait_for 30 ok200 "$LB_URL$PLAYLIST" || { alive "$LB_PID" "$name"; die "$name did not answer 200 in 30 s"; }
  }
  lb lldefault; LB0_URL=$LB_URL; LB0_PID=$LB_PID
  lb ll1w TOKIO_WORKER_THREADS=1; LB1_URL=$LB_URL; LB1_PID=$LB_PID
  SERVER_TLS="$(bench_cipher "$LB0_URL")"
  suite="$(awk '{ print $2 }' <<< "$SERVER_TLS")"
  [ -n "$suite" ] || die "no TLS cipher suite from our load balancer"
  HA_PORT="$(free_port)"
  cat "$WORK/certs/server.pem" "$WORK/certs/server.key" > "$WORK/haproxy.pem"
  # Timeouts above the node's hold of a blocking request (3 target durations).
  bench_haproxy_conf "$WORK/haproxy.cfg" "$HA_PORT" "$WORK/haproxy.pem" "$suite" $((NOFILE / 2 - 100)) 120s \
    "127.0.0.1:${NODE_URL##*:}"
  "$HAPROXY" -c -q -f "$WORK/haproxy.cfg" || die "HAProxy refuses $WORK/haproxy.cfg"
  bench_start haproxy 0 "$HAPROXY" -db -f "$WORK/haproxy.cfg"
  HA_PID=$LAST_PID
  HA_URL="https://localhost:$HA_PORT"
  bench_wait_for 20 ok200 "$HA_URL$PLAYLIST" || { alive "$HA_PID" HAProxy; die "HAProxy did not answer 200 in 20 s"; }
  PEER_TLS="$(bench_cipher "$HA_URL")"
  echo "llhls-$ROW: TLS ours: $SERVER_TLS; HAProxy: $PEER_TLS" >&2
  [ "$(awk '{ print $2 }' <<< "$PEER_TLS")" = "$suite" ] || die "HAProxy negotiated $PEER_TLS, ours $SERVER_TLS"
fi

# --- 3. ramps ----------------------------------------------------------------------------------------------
mkdir -p "$WORK/ramps"
cat > "$WORK/progress.py" <<'PY'
import json, sys
for line in sys.stdin:
    try:
        s = json.loads(line)
    except ValueError:
        sys.stderr.write("  " + line)
        continue
    ll, cpu = s.get("ll") or {}, s["cpu"]
    pick = lambda k, f: (ll.get(k) or {}).get(f, 0)
    sys.stderr.write(f"  {s['viewers']:>6} viewers: {s['verdict']:<10} part TTFB p99 {pick('part_ttfb', 'p99_ms'):6.1f} ms, "
                     f"latency p50 {pick('latency', 'p50_ms'):6.1f} ms, reload wait p50 {pick('reload_wait', 'p50_ms'):5.1f} ms, "
                     f"stalls {ll.get('stalls', 0)}, errors {s['errors']}, issue lag p99 {s['issue_lag_p99_ms']:.1f} ms, "
                     f"server CPU {cpu['watched'] or 0:.2f}, generator CPU {cpu['own'] or 0:.2f}\n")
PY
# ramp SYSTEM RUN: one ramp of sealcast-viewers (core 1, one thread) against SYSTEM; its
# report in $WORK/ramps/SYSTEM-RUN.json.
ramp() {
  local system="$1" run="$2" url mode=ll args=() watch=() p out="$WORK/ramps/$1-$2.json"
  case "$system" in
    node) url="$NODE_URL"; watch=("$NODE_PID"); args=(--http1); pin 0 "$NODE_PID"; pin 1 "$NODE1_PID" ;;
    node-1w) url="$NODE1_URL"; watch=("$NODE1_PID"); args=(--http1); pin 0 "$NODE1_PID"; pin 1 "$NODE_PID" ;;
    nginx) url="$NGINX_URL"; watch=($NGINX_PIDS); args=(--http1); mode=ll-poll; pin 1 "$NODE_PID" "$NODE1_PID" ;;
    lb) url="$LB0_URL"; watch=("$LB0_PID" "$NODE_PID"); args=(--ca "$CA"); pin 0 "$LB0_PID" "$NODE_PID"; pin 1 "$LB1_PID" ;;
    lb-1w) url="$LB1_URL"; watch=("$LB1_PID" "$NODE_PID"); args=(--ca "$CA"); pin 0 "$LB1_PID" "$NODE_PID"; pin 1 "$LB0_PID" ;;
    haproxy) url="$HA_URL"; watch=("$HA_PID" "$NODE_PID"); args=(--ca "$CA"); pin 0 "$NODE_PID"; pin 1 "$LB0_PID" "$LB1_PID" ;;
  esac
  for p in "${watch[@]}"; do args+=(--watch-pid "$p"); alive "$p" "$system"; done
  alive "$SOURCE_PID" "sealcast source"
  echo "llhls-$ROW: run $run/$RUNS $system" >&2
  # There before tail looks for it (the redirection below makes it only once the tool starts).
  : > "$WORK/ramps/$system-$run.err"
  taskset -c 1 "$VIEWERS" "$url$MASTER" --mode "$mode" --arrival "$ARRIVAL" --seed "$run" --rendition 360p \
    --threads 1 --timeout 15 --step-secs "$STEP_SECS" --join-secs "$JOIN_SECS" --settle-secs "$SETTLE_SECS" \
    --stop-ttfb-ms "$TTFB_MS" --start "$START" --step "$STEP" --growth "$GROWTH" --viewers "$MAX_VIEWERS" \
    --sources "$SOURCES" "${args[@]}" --json "$out" > /dev/null 2> "$WORK/ramps/$system-$run.err" &
  local vpid=$!
  PIDS+=("$vpid")
  tail -n +1 -f --pid "$vpid" "$WORK/ramps/$system-$run.err" 2> /dev/null | python3 -u "$WORK/progress.py" || true
  wait "$vpid" || die "sealcast-viewers failed against $system: $(tail -3 "$WORK/ramps/$system-$run.err")"
  [ -s "$out" ] || die "sealcast-viewers wrote no report for $system"
  # Through ours, which collapses playlist requests only for viewers the node counted lately:
  # the viewers the node counts now (the last 10 s, so the ramp's last step), for the report.
  case "$system" in lb|lb-1w)
    curl -sf --max-time 2 "$NODE_URL/metrics" | awk '/^sealcast_viewers[{ ]/ { n += $NF } END { print n + 0 }' \
      > "$WORK/ramps/$system-$run.counted" || true ;;
  esac
  # Connections closed, sockets gone, before the next ramp.
  sleep 3
}
read -r -a ORDER <<< "$SYSTEMS"
T0=$(date +%s)
for run in $(seq 1 "$RUNS"); do
  # Rotate: each system leads once in every len(SYSTEMS) runs.
  for i in "${!ORDER[@]}"; do
    ramp "${ORDER[$(((i + run - 1) % ${#ORDER[@]}))]}" "$run"
  done
done
ELAPSED=$(($(date +%s) - T0))

# --- 4. report -------------------------------------------------------------------------------------------------
mkdir -p "$(dirname "$RESULTS")"
ROW="$ROW" HEADING="$HEADING" RUNS="$RUNS" SYSTEMS="$SYSTEMS" STEP_SECS="$STEP_SECS" JOIN_SECS="$JOIN_SECS" \
TTFB_MS="$TTFB_MS" START="$START" STEP="$STEP" GROWTH="$GROWTH" MAX_VIEWERS="$MAX_VIEWERS" ARRIVAL="$ARRIVAL" SOURCES="$SOURCES" \
PART_TARGET="$PART_TARGET" LAG_LIMIT_MS="$LAG_LIMIT_MS" GEN_BUSY="$GEN_BUSY" SERVER_TLS="$SERVER_TLS" \
PEER_TLS="$PEER_TLS" PART_BYTES="$PART_BYTES" NGINX="$NGINX" HAPROXY="$HAPROXY" ELAPSED="$ELAPSED" CORES="$(nproc)" \
python3 - "$WORK/ramps" "$RESULTS" "$DOCS" <<'PY'
import datetime, glob, json, os, re, subprocess, sys
sys.dont_write_bytecode = True; sys.path.insert(0, "bench"); from docsection import put, notes; from lib.stats import median, spread as spread_of, spread_text
ramps_dir, results, docs = sys.argv[1:4]
E = os.environ
row, runs, cores = E["ROW"], int(E["RUNS"]), int(E["CORES"])
lag_limit, gen_busy = float(E["LAG_LIMIT_MS"]), float(E["GEN_BUSY"])
systems = E["SYSTEMS"].split()
peer = {"node": "nginx", "lb": "haproxy"}[row]
names = {"node": f"sealcast node, default workers ({cores})", "node-1w": "sealcast node, 1 worker",
         "nginx": "nginx, 1 worker (polled)", "lb": f"sealcast lb + node, default workers ({cores} each)",
         "lb-1w": "sealcast lb 1 worker + node", "haproxy": "HAProxy nbthread 1 + node"}

def first_line(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    return ((r.stdout or r.stderr).splitlines() or [""])[0].strip()

def verdict_of(report):
    """A ramp's count, and whether it is the server's (exact) or a lower bound, and why."""
    steps = report["steps"]
    passed = [s for s in steps if s["passed"]]
    got = {"capacity": report["capacity"], "steps_run": len(steps)}
    if passed:
        s, ll = passed[-1], passed[-1].get("ll") or {}
        cpu = s["cpu"]["watched"] or 0
        per_viewer = {k: v / s["viewers"] for k, v in (ll.get("requests_per_sec") or {}).items()}
        got["at_capacity"] = {
            "viewers": s["viewers"], "server_cpu": cpu, "generator_cpu": s["cpu"]["own"],
            "viewers_per_cpu": s["viewers"] / cpu if cpu > 0 else None,
            "part_ttfb_p99_ms": (ll.get("part_ttfb") or {}).get("p99_ms"),
            "reload_wait_p50_ms": (ll.get("reload_wait") or {}).get("p50_ms"),
            "latency_p50_ms": (ll.get("latency") or {}).get("p50_ms"),
            "latency_p99_ms": (ll.get("latency") or {}).get("p99_ms"),
            "requests_per_viewer_sec": per_viewer}
    viewers = report.get("per_viewer") or []
    lat = [v["latency_p50_ms"] for v in viewers if v.get("latency_p50_ms") is not None]
    got["viewers_seen"] = {"viewers": len(viewers), "stalled": sum(1 for v in viewers if v["stalls"]),
                           "failed": sum(1 for v in viewers if v["failed"]),
                           "latency_p50_ms_median": median(lat)}
    if not report["ended_on_failure"]:
        got.update(exact=False, limited_by="ramp ceiling (MAX_VIEWERS)")
        return got
    f = steps[-1]
    cores_busy = f["cpu"]["cores"]
    got["failed_step"] = {"viewers": f["viewers"], "verdict": f["verdict"], "errors": f["errors"],
                          "ll": f.get("ll"), "issue_lag_p99_ms": f["issue_lag_p99_ms"],
                          "server_cpu": f["cpu"]["watched"], "generator_cpu": f["cpu"]["own"], "cores_busy": cores_busy}
    if f["issue_lag_p99_ms"] > lag_limit or (len(cores_busy) > 1 and cores_busy[1] >= gen_busy):
        got.update(exact=False, limited_by="load generator")
    elif (f["cpu"]["watched"] or 0) >= 0.9 or (cores_busy and cores_busy[0] >= 0.9):
        got.update(exact=True, limited_by=f"server CPU ({f['verdict']})")
    else:
        got.update(exact=True, limited_by=f"server latency, core 0 not saturated ({f['verdict']})")
    return got

per = {}
for path in sorted(glob.glob(os.path.join(ramps_dir, "*.json"))):
    system, run = os.path.basename(path)[:-5].rsplit("-", 1)
    entry = verdict_of(json.load(open(path)))
    entry["run"] = int(run)
    counted = path[:-5] + ".counted"
    if os.path.exists(counted) and open(counted).read().strip():
        entry["node_counted"] = {"counted": int(float(open(counted).read())),
                                 "viewers": len(json.load(open(path)).get("per_viewer") or [])}
    # Each viewer's own summary stays out of the results (megabytes); viewers_seen sums it up.
    entry["ramp"] = {k: v for k, v in json.load(open(path)).items() if k != "per_viewer"}
    per.setdefault(system, []).append(entry)
for xs in per.values():
    xs.sort(key=lambda e: e["run"])

spread = lambda xs: spread_of(xs, count=True)

out = {"benchmark": f"LL-HLS viewers ({row}): held with part TTFB p99 < threshold, no stall, no failed request",
       "date": datetime.date.today().isoformat(), "runs": runs, "cores": cores, "systems_order": systems,
       "ramp": {k.lower(): E[k] for k in ("STEP_SECS", "JOIN_SECS", "TTFB_MS", "START", "STEP", "GROWTH", "MAX_VIEWERS", "ARRIVAL", "SOURCES")},
       "part_target": float(E["PART_TARGET"]), "part_bytes": int(E["PART_BYTES"]), "elapsed_secs": int(E["ELAPSED"]),
       "generator_saturated_when": {"issue_lag_p99_ms_above": lag_limit, "core1_busy_at_least": gen_busy},
       "tls": {"sealcast": E["SERVER_TLS"], "haproxy": E["PEER_TLS"]},
       "nginx": first_line([E["NGINX"], "-v"]), "haproxy": first_line([E["HAPROXY"], "-v"]),
       "systems": {}, "pairs": {}}
for system, xs in per.items():
    out["systems"][system] = {"capacity": spread([x["capacity"] for x in xs]),
                              "exact_runs": sum(1 for x in xs if x["exact"]),
                              "runs": [{k: v for k, v in x.items() if k != "ramp"} for x in xs]}
def equal_audience(ours, theirs):
    """Per CPU-second, ours over the peer's, at the largest step both ramps of a run passed."""
    def passed(x):
        return {s["viewers"]: s["cpu"]["watched"] for s in x["ramp"]["steps"]
                if s["passed"] and (s["cpu"]["watched"] or 0) > 0}
    a, b = passed(ours), passed(theirs)
    common = sorted(set(a) & set(b))
    if not common:
        return None
    v = common[-1]
    return {"viewers": v, "ratio": b[v] / a[v]}

P = {x["run"]: x for x in per.get(peer, [])}
for ours in (s for s in systems if s != peer):
    O = {x["run"]: x for x in per.get(ours, [])}
    both = [r for r in sorted(set(O) & set(P)) if O[r]["exact"] and P[r]["exact"] and P[r]["capacity"]]
    # Per CPU-second at each ramp's last passed step, whether or not its count is exact: what
    # a server spends per viewer does not depend on why the ramp stopped.
    per_cpu = [O[r]["at_capacity"]["viewers_per_cpu"] / P[r]["at_capacity"]["viewers_per_cpu"]
               for r in sorted(set(O) & set(P))
               if "at_capacity" in O[r] and "at_capacity" in P[r]
               and O[r]["at_capacity"]["viewers_per_cpu"] and P[r]["at_capacity"]["viewers_per_cpu"]]
    # The same per run at the largest audience both ramps passed: like for like, where the
    # ratio above also compares a ramp that went further (its fixed costs shared by more viewers).
    at_equal = [x for x in (equal_audience(O[r], P[r]) for r in sorted(set(O) & set(P))) if x]
    out["pairs"][f"{ours}/{peer}"] = {"ratio_viewers": spread([O[r]["capacity"] / P[r]["capacity"] for r in both]),
                                      "ratio_viewers_per_cpu": spread(per_cpu), "runs_with_both_exact": len(both),
                                      "ratio_per_cpu_at_equal_audience": spread([x["ratio"] for x in at_equal]),
                                      "equal_audiences": [x["viewers"] for x in at_equal]}
pe = [P[r] for r in sorted(P)]
out["noise_floor_peer_aa"] = spread([pe[i]["capacity"] / pe[i + 1]["capacity"] for i in range(len(pe) - 1)
                                     if pe[i]["exact"] and pe[i + 1]["exact"] and pe[i + 1]["capacity"]])
pc = [x["at_capacity"]["viewers_per_cpu"] if "at_capacity" in x else None for x in pe]
out["noise_floor_peer_aa_per_cpu"] = spread([pc[i] / pc[i + 1] for i in range(len(pc) - 1) if pc[i] and pc[i + 1]])
out["raw"] = {s: [x["ramp"] for x in xs] for s, xs in per.items()}
json.dump(out, open(results, "w"), indent=2)

def med(system, key, fmt):
    m = median([x["at_capacity"].get(key) for x in per.get(system, []) if "at_capacity" in x])
    return "-" if m is None else fmt.format(m)
def count(system):
    xs = per.get(system, [])
    if not xs:
        return "-"
    caps = [x["capacity"] for x in xs]
    text = f"{median(caps):,.0f} ({min(caps):,}–{max(caps):,})"
    lower = [x for x in xs if not x["exact"]]
    if lower:
        why = ", ".join(sorted({x["limited_by"] for x in lower}))
        text = ("≥ " if len(lower) == len(xs) else "") + text + f"; {len(lower)} of {len(xs)} a lower bound ({why})"
    return text
def rps(system):
    xs = [x["at_capacity"]["requests_per_viewer_sec"] for x in per.get(system, []) if "at_capacity" in x]
    if not xs:
        return "-"
    kinds = sorted({k for x in xs for k in x})
    return ", ".join(f"{k} {median([x.get(k, 0) for x in xs]):.2f}" for k in kinds)
rng = spread_text

ngx = out["nginx"].replace("nginx version: ", "")
m = re.search(r"version (\S+)", out["haproxy"]); ha = f"HAProxy {m.group(1)}" if m else "HAProxy"
r = out["ramp"]
if row == "node":
    setup = (f"Servers on core 0, one at a time: `sealcast broadcast` at its default worker threads ({cores}, one per core) and "
             f"with one (`TOKIO_WORKER_THREADS=1`), both fed by the same ingest, against {ngx} (1 worker, `sendfile on`, "
             "`access_log off`) serving the same files on tmpfs: a mirror on core 1 follows the node with blocking reloads and "
             "writes each new part, segment and init segment, then the node's playlist, by rename (at most a few ms behind "
             "the node). nginx cannot hold a request, so its viewers poll the playlist every part target (no hints): the "
             "LL-HLS nginx can offer. Plain HTTP/1.1 keep-alive for all (a viewer keeps up to 3 connections).")
else:
    setup = (f"`sealcast lb` at its default worker threads ({cores}) and with one, against {ha} (`nbthread 1`), over TLS 1.3 "
             f"with HTTP/2 by ALPN (ours {out['tls']['sealcast'] or '-'}, HAProxy {out['tls']['haproxy'] or '-'}), each in "
             f"front of the same `sealcast broadcast` node (default workers), which shares core 0 with the proxy under test; "
             "the sticky cookie kept per viewer; one HTTP/2 connection per viewer.")
lines = [E["HEADING"], "",
    f"LL-HLS viewers of one stream's 360p rung (the publisher's 640x360 ~730 kb/s H.264 passed through, CMAF, 2 s segments, "
    f"parts of {out['part_target']} s, {out['part_bytes'] // 1024} KiB each) held while no viewer stalls, no request fails and "
    f"the parts' time to first byte stays at p99 < {float(r['ttfb_ms']):.0f} ms (a hinted part's from when it existed, "
    "i.e. the first answer any viewer had for it). `sealcast-viewers --mode ll` on core 1 (one thread) behaves like hls.js "
    "in low-latency mode: blocking reloads with `_HLS_msn`/`_HLS_part` and delta updates, the preload-hinted part asked "
    "for as it is hinted, every listed part from PART-HOLD-BACK behind the edge, a buffer model for stalls; viewers "
    f"arrive open loop ({r['arrival']}) over the first {r['join_secs']} s of each {r['step_secs']} s step, {int(r['start']):,} "
    f"first, then +{int(r['step']):,} or ×{r['growth']}, up to {int(r['max_viewers']):,}, "
    + (f"each from its own loopback address (of {int(r['sources']):,}). " if int(r.get('sources') or 0) > 0
       else "all from 127.0.0.1. ") + setup +
    f" {runs} run{'s' if runs > 1 else ''}, the order rotated each run, {out['date']}.", "",
    "| system | viewers, median (min–max) | ratio to the peer (median, min–max) | viewers per server CPU-second | "
    "at capacity: part TTFB p99 / latency behind the edge p50, p99 / reload wait p50 (ms) | requests per viewer-second |",
    "|---|---|---|---|---|---|"]
for s in systems:
    pair = out["pairs"].get(f"{s}/{peer}")
    ratio = "—" if pair is None else rng(pair["ratio_viewers"]) + (
        f" over {pair['runs_with_both_exact']} of {runs} runs" if pair["runs_with_both_exact"] < runs else "")
    timing = " / ".join(med(s, k, "{:.0f}") for k in ("part_ttfb_p99_ms", "latency_p50_ms", "latency_p99_ms", "reload_wait_p50_ms"))
    lines.append(f"| {names[s]} | {count(s)} | {ratio} | {med(s, 'viewers_per_cpu', '{:,.0f}')} | {timing} | {rps(s)} |")
per_cpu = "; ".join(f"{names[s]} {rng(p['ratio_viewers_per_cpu'])}" for s in systems
                    for p in [out["pairs"].get(f"{s}/{peer}")] if p)
equal_text = "; ".join(f"{names[s]} {rng(p['ratio_per_cpu_at_equal_audience'])} at "
                    + ", ".join(f"{v:,}" for v in p["equal_audiences"]) + " viewers"
                    for s in systems for p in [out["pairs"].get(f"{s}/{peer}")] if p)
lines += ["", f"Viewers per server CPU-second relative to the peer, per run at each ramp's last passed step (median, min–max): "
          f"{per_cpu or '-'}; at the largest audience both ramps of a run passed (like for like: "
          f"{equal_text or '-'}); the peer against itself in consecutive runs (A/A): {rng(out['noise_floor_peer_aa_per_cpu'])} "
          f"per CPU-second, {rng(out['noise_floor_peer_aa'])} in exact counts."]
counts = [(s, x["node_counted"]) for s in systems for x in per.get(s, []) if "node_counted" in x]
if counts:
    lines += ["", "Viewers the node counted (`sealcast_viewers`, by client address over its last 10 s) at the end of each "
              "ramp through ours, against the viewers the ramp started (those of the step judged last, and those of the next "
              "step that had joined by then): " + "; ".join(
                  f"{names[s]} {c['counted']:,} of {c['viewers']:,}" for s, c in counts) + "."]
lines += ["", "Why the ramps stopped: " + "; ".join(
    f"{names[s]}: " + ", ".join(sorted({x['limited_by'] for x in per.get(s, [])})) for s in systems if s in per) + "."]
goal = ("a node ≥ nginx" if row == "node" else "through the load balancer ≥ 1.2 × HAProxy's viewers per core")
lines += ["", f"A count is a lower bound (≥) when the step that failed shows the load generator short of CPU (requests issued "
          f"more than {lag_limit:.0f} ms late at p99, or core 1 ≥ {gen_busy:.0%} busy), or when the ramp reached its last step. "
          f"Goal (issue 33): {goal}. Run it with `bench/llhls-{row}.sh [RUNS]` (default 5; settings by environment, see "
          f"bench/llhls-common.sh); raw numbers in `bench/out/llhls-{row}.json`. This run took {out['elapsed_secs'] // 60} min."]
lines += [*notes(f"bench/llhls-{row}-notes.md"), ""]
section = "\n".join(lines)
if docs:
    # After bench/capacity.sh's section, the node's row before the load balancer's.
    after = "## Viewers per edge worker"
    if row == "lb" and os.path.exists(docs) and "## LL-HLS viewers one node holds" in open(docs).read():
        after = "## LL-HLS viewers one node holds"
    put(section, E["HEADING"], docs, after=after, results=results)
print(section)
PY
