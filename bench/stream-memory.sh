#!/usr/bin/env bash
# Memory per live stream (docs/benchmarks.md): the RSS a broadcast
# node adds for each live stream, against the floor, the bytes of the window it lists.
#
# The roles run one per process, as a cluster runs them, so the node's RSS is its own (not
# the ingest's transcoders and buffers): a private Mosquitto on a free loopback port
# (anonymous, loopback only), `sealcast keys init` and `sealcast streams add` for the keys
# and the catalog, `sealcast ingest`, and `sealcast broadcast` (1 tokio worker, the node
# under test). Live streams are published with `sealcast source` at real-time pace, added
# one by one: stream k starts, and once every rung of it lists a full window and has slid
# on by GRACE+1 segments (the node then also holds the segments it keeps fetchable after
# they leave the window; polled, no fixed sleep), the node is sampled for SAMPLE_SECONDS
# (every 0.5 s): VmRSS, RssAnon, RssFile (/proc/PID/status) and Pss (smaps_rollup), and
# the floor, read from the node itself: every rung's media playlist of every stream, and
# the size (HEAD, Content-Length) of every segment, LL-HLS part and init segment it lists.
# Medians over the samples. RSS(0) is sampled the same way before the first stream.
#
# Figures, per run (fresh processes every run), median and min–max over RUNS:
#   - added RSS per stream, (RSS(k) − RSS(0)) / k at k = STREAMS;
#   - the floor per stream: listed bytes / k (segments + parts + init, as the playlists
#     list them: the last PART_SEGMENTS segments are listed both whole and as parts);
#   - ratio = added RSS / floor at k = STREAMS (goal ≤ 1.3), also against the unique bytes
#     (each byte once: the segments, the open segment's parts, init) and against what the
#     node serves (listed + the segments kept fetchable after the window + every part it
#     answers for);
#   - the marginal cost: least-squares slope of RSS over k = 1..STREAMS against the
#     floor's slope (leaves out what the first stream sets up once: threads, allocator
#     arenas and their transparent huge pages).
#
# The ladder (LADDER=cheap, the default) — the product's default ladder transcodes a 720p
# source at about 1.4 cores per stream, which this 2-core shared machine cannot do for
# more than one stream in real time. So: the default ladder's shape and bitrates (src +
# three encoded rungs at 3000 / 1200 / 730 kb/s, 2 s segments, window 6, CMAF with 0.333 s
# parts) at a quarter of the pixels: the source 640x360 30 fps at 2500 kb/s (veryfast),
# encoded rungs 360 / 270 / 180 lines, x264 ultrafast, one thread each. What a node keeps
# depends on bytes, rungs and parts, not on pixels; the bitrates reached are reported (the
# floor over the window's duration). LADDER=default uses the product's defaults (no
# configuration file) and a 1280x720 source, for a machine with the cores for it.
#
# Writes bench/out/stream-memory.json (STREAM_MEMORY_RESULTS moves it) and the section
# "## Memory per live stream (bench/stream-memory.sh)" in docs/benchmarks.md
# (STREAM_MEMORY_DOCS=FILE writes it there instead, STREAM_MEMORY_DOCS= skips it), with
# bench/stream-memory-notes.md (where the memory goes, from a profile) when it exists
# (`sealcast-bench report stream-memory`).
#
# Usage: bench/stream-memory.sh [RUNS [STREAMS]]   (default 5 runs of 3 streams, about 8 minutes)
# Environment:
#   SEALCAST_BIN=path   a prebuilt sealcast binary instead of `cargo build --release`
#   SEALCAST_BENCH=path the report's sealcast-bench (default: the one beside SEALCAST_BIN)
#   LADDER=cheap|default   see above (default cheap)
#   SAMPLE_SECONDS=4   how long each point is sampled
#   NODE_WORKERS=1     tokio worker threads of the node
#   NODE_PREFIX="..."  words put before the node's command, for experiments and profiles
#     (e.g. "env MIMALLOC_PURGE_DELAY=0", or "valgrind --tool=massif --pages-as-heap=yes
#     --massif-out-file=/tmp/node.massif"); the figures then describe that, not the product.
#     The prefix must exec the node in its own process (env and valgrind do; heaptrack's
#     script forks, so attach it with `heaptrack -p PID` instead)
set -euo pipefail
# A relative SEALCAST_BIN is relative to where the script was started.
[ -z "${SEALCAST_BIN:-}" ] || SEALCAST_BIN="$(realpath -m "$SEALCAST_BIN")"
GIVEN_BENCH="${SEALCAST_BENCH:+$(realpath "$SEALCAST_BENCH")}"
cd "$(dirname "$0")/.."
RUNS="${1:-5}"
STREAMS="${2:-3}"
LADDER="${LADDER:-cheap}"
SAMPLE_SECONDS="${SAMPLE_SECONDS:-4}"
NODE_WORKERS="${NODE_WORKERS:-1}"
NODE_PREFIX="${NODE_PREFIX:-}"
RESULTS="${STREAM_MEMORY_RESULTS:-bench/out/stream-memory.json}"
DOCS="${STREAM_MEMORY_DOCS-docs/benchmarks.md}"
WINDOW=6   # [ladder] window (the product's default, and the cheap ladder's)
GRACE=2    # broadcast::stream::GRACE_SEGMENTS: segments kept fetchable after the window
source bench/lib.sh
say() { echo "stream-memory: $*" >&2; }
[[ "$RUNS" =~ ^[1-9][0-9]*$ && "$STREAMS" =~ ^[1-9][0-9]*$ ]] || die "usage: bench/stream-memory.sh [RUNS [STREAMS]]"
[[ "$SAMPLE_SECONDS" =~ ^[1-9][0-9]*$ ]] || die "SAMPLE_SECONDS is a whole number of seconds"

bench_install stream-memory mosquitto curl python3
MOSQUITTO="$(command -v mosquitto || echo /usr/sbin/mosquitto)"
[ -x "$MOSQUITTO" ] || die "no mosquitto"
bench_workdir
bench_binary
bench_driver
bench_clear_env

case "$LADDER" in
  cheap)
    SIZE=640x360; SOURCE_KBPS=2500; RUNGS=4
    CONFIG="$WORK/sealcast.toml"
    cat > "$CONFIG" <<'EOF'
[ingest]
encoder_threads = 1
end_grace_seconds = 2.0

[ladder]
segment_target = 2.0
window = 6
preset = "ultrafast"
format = "cmaf"
part_target = 0.333

[[ladder.rungs]]
name = "src"
kind = "source"

[[ladder.rungs]]
name = "360p"
kind = "encode"
height = 360
bitrate_kbps = 3000
maxrate_kbps = 3210
bufsize_kbits = 4500

[[ladder.rungs]]
name = "270p"
kind = "encode"
height = 270
bitrate_kbps = 1200
maxrate_kbps = 1284
bufsize_kbits = 1800

[[ladder.rungs]]
name = "180p"
kind = "encode"
height = 180
bitrate_kbps = 730
maxrate_kbps = 781
bufsize_kbits = 1095
EOF
    CONFIG_ARGS=(--config "$CONFIG")
    ;;
  default)
    SIZE=1280x720; SOURCE_KBPS=2500; RUNGS=4; CONFIG_ARGS=() ;;
  *) die "LADDER is cheap or default" ;;
esac

# The keys, once: root, push token, edge key, ingest1's signing key (no secret on a
# command line: the roles find them through SEALCAST_KEYS_DIR).
KEYS="$WORK/keys"
"$BIN" keys --data-dir "$WORK/keys-data" --keys-dir "$KEYS" init > "$WORK/keys.log" 2>&1 \
  || { cat "$WORK/keys.log" >&2; die "sealcast keys init failed"; }

# stop PID: stops a process started here and waits for it.
stop() { kill "$1" 2> /dev/null || true; wait "$1" 2> /dev/null || true; }
# wait_line FILE PATTERN PID SECONDS: waits until FILE has a line matching PATTERN.
wait_line() {
  local i
  for ((i = 0; i < $4 * 10; i++)); do
    grep -q "$2" "$1" 2> /dev/null && return 0
    kill -0 "$3" 2> /dev/null || return 1
    sleep 0.1
  done
  return 1
}

cat > "$WORK/sm.py" <<'PY'
"""Helpers of bench/stream-memory.sh: wait for full windows, sample RSS and the floor."""
import http.client, json, re, sys, time, urllib.parse
sys.dont_write_bytecode = True; sys.path.insert(0, "bench"); from lib.stats import median

class Node:
    """One keep-alive HTTP/1.1 connection to the node; sizes of immutable files cached."""
    def __init__(self, base):
        u = urllib.parse.urlsplit(base)
        self.host, self.port = u.hostname, u.port
        self.conn = None
        self.sizes = {}

    def request(self, method, path):
        for attempt in (0, 1):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
                self.conn.request(method, path)
                r = self.conn.getresponse()
                body = r.read()
                return r.status, r.getheader("content-length"), body
            except (http.client.HTTPException, OSError):
                self.conn = None
                if attempt:
                    raise

    def text(self, path):
        status, _, body = self.request("GET", path)
        return body.decode() if status == 200 else None

    def size(self, path, cache=True):
        """Bytes of a file the node serves (None if it does not)."""
        if cache and path in self.sizes:
            return self.sizes[path]
        status, length, body = self.request("HEAD", path)
        if status != 200:
            return None
        if length is None:
            status, length, body = self.request("GET", path)
            n = len(body)
        else:
            n = int(length)
        if cache:
            self.sizes[path] = n
        return n

def join(base, uri):
    return urllib.parse.urljoin(base, uri)

def media(text):
    """A media playlist: (media sequence, init URI, [(seq, uri)], [(seq, idx, uri)], ended)."""
    msn, init, segs, parts = 0, None, [], []
    for line in text.splitlines():
        if line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            msn = int(line.split(":", 1)[1])
        elif line.startswith("#EXT-X-MAP:"):
            init = re.search(r'URI="([^"]+)"', line).group(1)
        elif line.startswith("#EXT-X-PART:"):
            uri = re.search(r'URI="([^"]+)"', line).group(1)
            m = re.match(r"(\d+)\.(\d+)\.", uri.rsplit("/", 1)[-1])
            parts.append((int(m.group(1)), int(m.group(2)), uri))
        elif line and not line.startswith("#"):
            m = re.match(r"(\d+)\.", line.rsplit("/", 1)[-1])
            segs.append((int(m.group(1)), line))
    return msn, init, segs, parts, "#EXT-X-ENDLIST" in text

def variants(node, stream):
    base = f"/live/{stream}/master.m3u8"
    text = node.text(base)
    if text is None:
        return []
    return [join(base, l) for l in text.splitlines() if l and not l.startswith("#")]

def floor(node, streams):
    """Bytes of the stream windows as the node lists them, now."""
    out = {"listed": 0, "unique": 0, "served": 0, "segments": 0, "parts": 0, "init": 0,
           "playlists": 0, "seconds": 0.0, "rungs": 0, "per_rung": {}}
    for s in streams:
        for path in variants(node, s):
            text = node.text(path)
            if text is None:
                continue
            msn, init, segs, parts, _ = media(text)
            out["rungs"] += 1
            out["playlists"] += len(text)
            out["seconds"] += sum(float(d) for d in re.findall(r"#EXTINF:([0-9.]+)", text))
            b_init = node.size(join(path, init)) or 0 if init else 0
            b_segs = sum(node.size(join(path, u)) or 0 for _, u in segs)
            b_parts = sum(node.size(join(path, u)) or 0 for _, _, u in parts)
            last = segs[-1][0] if segs else -1
            b_open = sum(node.size(join(path, u)) or 0 for q, _, u in parts if q > last)
            # What else the node answers for: segments kept after the window, and parts
            # of segments no longer listed with parts.
            extra = 0
            for q in range(msn - 1, msn - 1 - 8, -1):
                n = node.size(join(path, f"{q}.m4s"), cache=False) if q >= 0 else None
                if n is None:
                    break
                extra += n
            first_part = min((q for q, _, _ in parts), default=None)
            if first_part is not None:
                for q in range(first_part - 1, first_part - 1 - 4, -1):
                    got = 0
                    for i in range(64):
                        n = node.size(join(path, f"{q}.{i}.m4s"), cache=False) if q >= 0 else None
                        if n is None:
                            break
                        got += n
                    if not got:
                        break
                    extra += got
            listed = b_init + b_segs + b_parts
            out["listed"] += listed
            out["unique"] += b_init + b_segs + b_open
            out["served"] += listed + extra
            out["segments"] += b_segs
            out["parts"] += b_parts
            out["init"] += b_init
            rung = path.split("/")[-2]
            r = out["per_rung"].setdefault(rung, {"segment_bytes": 0, "seconds": 0.0})
            r["segment_bytes"] += b_segs
            r["seconds"] += sum(float(d) for d in re.findall(r"#EXTINF:([0-9.]+)", text))
    return out

def proc(pid):
    m = {}
    for line in open(f"/proc/{pid}/status"):
        k, _, v = line.partition(":")
        if k in ("VmRSS", "RssAnon", "RssFile", "RssShmem", "Threads"):
            m[k] = int(v.split()[0])
    try:
        for line in open(f"/proc/{pid}/smaps_rollup"):
            k, _, v = line.partition(":")
            if k in ("Pss", "Pss_Anon", "Pss_File", "AnonHugePages"):
                m[k] = int(v.split()[0])
    except OSError:
        pass
    return m

def wait(node_url, stream, rungs, window, grace, timeout):
    """Until every rung of `stream` lists `window` segments and has slid on by grace+1."""
    node, first, deadline = Node(node_url), {}, time.time() + timeout
    state = "no master playlist"
    while time.time() < deadline:
        try:
            paths = variants(node, stream)
            if len(paths) >= rungs:
                done = 0
                for path in paths:
                    text = node.text(path)
                    if text is None:
                        continue
                    msn, _, segs, _, ended = media(text)
                    if ended:
                        sys.exit(f"{stream} ended")
                    first.setdefault(path, msn if segs else None)
                    if first[path] is None and segs:
                        first[path] = msn
                    if len(segs) >= window and first[path] is not None and msn - first[path] >= grace + 1:
                        done += 1
                state = f"{done} of {len(paths)} rungs full"
                if done == len(paths):
                    return
            else:
                state = f"{len(paths)} of {rungs} rungs listed"
        except (OSError, http.client.HTTPException) as e:
            state = str(e)
        time.sleep(0.2)
    sys.exit(f"{stream}: no full window after {timeout} s ({state})")

def sample(node_url, pid, seconds, streams):
    node, samples = Node(node_url), []
    end = time.time() + seconds
    while True:
        t = time.time()
        m = proc(pid)
        m["floor"] = floor(node, streams) if streams else None
        samples.append(m)
        if t >= end:
            break
        time.sleep(max(0.0, 0.5 - (time.time() - t)))
    med = median
    out = {"samples": len(samples)}
    for k in ("VmRSS", "RssAnon", "RssFile", "Pss", "Pss_Anon", "AnonHugePages", "Threads"):
        xs = [s[k] for s in samples if k in s]
        out[k] = med(xs)
    out["VmRSS_min"] = min(s["VmRSS"] for s in samples)
    out["VmRSS_max"] = max(s["VmRSS"] for s in samples)
    if streams:
        fl = [s["floor"] for s in samples]
        for k in ("listed", "unique", "served", "segments", "parts", "init", "playlists", "seconds", "rungs"):
            out["floor_" + k] = med([f[k] for f in fl])
        rates = {}
        for f in fl:
            for rung, r in f["per_rung"].items():
                if r["seconds"]:
                    rates.setdefault(rung, []).append(8 * r["segment_bytes"] / r["seconds"] / 1000)
        out["kbps"] = {rung: round(med(xs), 1) for rung, xs in rates.items()}
    else:
        for k in ("listed", "unique", "served", "segments", "parts", "init", "playlists", "seconds", "rungs"):
            out["floor_" + k] = 0
    return out

if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "wait":
        url, stream, rungs, window, grace, timeout = sys.argv[2:8]
        wait(url, stream, int(rungs), int(window), int(grace), float(timeout))
    elif cmd == "sample":
        url, pid, seconds = sys.argv[2:5]
        print(json.dumps(sample(url, int(pid), float(seconds), sys.argv[5:])))
PY

RAW="$WORK/raw.jsonl"; : > "$RAW"
for ((run = 1; run <= RUNS; run++)); do
  R="$WORK/run$run"; mkdir -p "$R"
  # --- the broker, a catalog with the streams, the ingest, the node ---------------------
  mq_port="$(free_port)"
  printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stderr\nlog_type error\nlog_type warning\n' \
    "$mq_port" > "$R/mosquitto.conf"
  "$MOSQUITTO" -c "$R/mosquitto.conf" > "$R/mosquitto.log" 2>&1 &
  MQ_PID=$!; PIDS+=("$MQ_PID")
  for _ in $(seq 1 50); do (exec 3<> "/dev/tcp/127.0.0.1/$mq_port") 2> /dev/null && break; sleep 0.1; done
  export SEALCAST_MQTT_URL="mqtt://127.0.0.1:$mq_port" SEALCAST_KEYS_DIR="$KEYS"

  declare -A STREAM_KEY=()
  for ((k = 1; k <= STREAMS; k++)); do
    STREAM_KEY[$k]="$("$BIN" streams add "s$k" --data-dir "$R/ingest")" || die "sealcast streams add failed"
  done

  "$BIN" ingest --data-dir "$R/ingest" "${CONFIG_ARGS[@]}" --rtmp-listen 127.0.0.1:0 \
    --srt-listen 127.0.0.1:0 --webrtc-listen 127.0.0.1:0 \
    --metrics-listen 127.0.0.1:0 --node-id ingest1 > "$R/ingest.out" 2> "$R/ingest.err" &
  INGEST_PID=$!; PIDS+=("$INGEST_PID")
  wait_line "$R/ingest.out" '^metrics ' "$INGEST_PID" 30 || { tail "$R/ingest.err" >&2; die "sealcast ingest did not start"; }
  RTMP="$(awk '/^obs-server /{print $2}' "$R/ingest.out")"
  INGEST_METRICS="$(awk '/^metrics /{print $2}' "$R/ingest.out")"

  # shellcheck disable=SC2086 # NODE_PREFIX is words on purpose
  TOKIO_WORKER_THREADS="$NODE_WORKERS" $NODE_PREFIX "$BIN" broadcast --data-dir "$R/node" "${CONFIG_ARGS[@]}" \
    --listen 127.0.0.1:0 --node-id sm-node > "$R/node.out" 2> "$R/node.err" &
  NODE_PID=$!; PIDS+=("$NODE_PID")
  wait_line "$R/node.out" '^sm-node ' "$NODE_PID" 60 || { tail "$R/node.err" >&2; die "sealcast broadcast did not become ready"; }
  NODE="$(awk '/^sm-node /{print $2}' "$R/node.out")"; NODE="${NODE%/}"
  unset SEALCAST_MQTT_URL SEALCAST_KEYS_DIR

  # --- RSS(0), then the streams one by one ---------------------------------------------
  point="$(python3 "$WORK/sm.py" sample "$NODE" "$NODE_PID" "$SAMPLE_SECONDS")"
  echo "{\"run\": $run, \"streams\": 0, \"point\": $point}" >> "$RAW"
  say "run $run: 0 streams: RSS $(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["VmRSS"])' "$point") KiB"
  SOURCES=()
  names=()
  for ((k = 1; k <= STREAMS; k++)); do
    SEALCAST_SOURCE_URL="$RTMP/${STREAM_KEY[$k]}" "$BIN" source --size "$SIZE" --fps 30 \
      --bitrate "$SOURCE_KBPS" --gop 2 > "$R/source$k.log" 2>&1 &
    SOURCES+=($!); PIDS+=($!)
    names+=("s$k")
    t0=$SECONDS
    python3 "$WORK/sm.py" wait "$NODE" "s$k" "$RUNGS" "$WINDOW" "$GRACE" 120 \
      || { tail -5 "$R/source$k.log" "$R/ingest.err" "$R/node.err" >&2; die "stream s$k: no full window on the node"; }
    waited=$((SECONDS - t0))
    for p in "${SOURCES[@]}"; do kill -0 "$p" 2> /dev/null || die "a publisher stopped (see $R)"; done
    point="$(python3 "$WORK/sm.py" sample "$NODE" "$NODE_PID" "$SAMPLE_SECONDS" "${names[@]}")"
    echo "{\"run\": $run, \"streams\": $k, \"wait_s\": $waited, \"point\": $point}" >> "$RAW"
    listed_rungs="$(python3 -c 'import json,sys; print(int(json.loads(sys.argv[1])["floor_rungs"]))' "$point")"
    [ "$listed_rungs" -eq $((k * RUNGS)) ] \
      || say "run $run: $k streams list $listed_rungs rungs, not $((k * RUNGS)): a rung was shed (CPU), the floor misses it"
    say "run $run: $k streams (window full after $waited s): $(python3 -c '
import json,sys; p=json.loads(sys.argv[1])
print("RSS %d KiB (%d-%d), Pss %s KiB, floor %.0f KiB listed / %.0f unique / %.0f served, kb/s %s" % (p["VmRSS"], p["VmRSS_min"], p["VmRSS_max"], p.get("Pss"), p["floor_listed"] / 1024, p["floor_unique"] / 1024, p["floor_served"] / 1024, p["kbps"]))' "$point")"
  done
  shed="$(curl -sf "$INGEST_METRICS" | awk '/^sealcast_ingest_rungs_shed/ { s += $NF } END { print s + 0 }')"
  node_cpu="$(cpu_ticks "$NODE_PID")"; ingest_cpu="$(cpu_ticks "$INGEST_PID")"
  echo "{\"run\": $run, \"shed\": $shed, \"node_ticks\": $node_cpu, \"ingest_ticks\": $ingest_cpu, \"hz\": $(getconf CLK_TCK)}" >> "$RAW"
  grep -E " (WARN|ERROR) " "$R/node.err" "$R/ingest.err" | cut -c1-300 | head -20 | sed 's/^/stream-memory: log: /' >&2 || true
  for p in "${SOURCES[@]}"; do stop "$p"; done
  stop "$NODE_PID"; stop "$INGEST_PID"; stop "$MQ_PID"
  rm -rf "$R/node/recordings"
done

bench_report_docs "$DOCS"
"$DRIVER" report stream-memory "$RAW" --runs "$RUNS" --streams "$STREAMS" --ladder "$LADDER" --size "$SIZE" \
  --source-kbps "$SOURCE_KBPS" --sample-seconds "$SAMPLE_SECONDS" --node-workers "$NODE_WORKERS" --grace "$GRACE" \
  --date "$(date +%F)" --results "$RESULTS" "${REPORT_DOCS[@]}"
