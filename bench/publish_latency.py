#!/usr/bin/env python3
"""Helper of bench/publish-latency.sh (stdlib only).

  publish_latency.py poll --pid PID --out RAW.json --ready FILE --stop FILE URL...
      Polls every node's media playlist of each rendition every --interval seconds and
      records when each sequence number first appears on each node (wall clock, taken when
      the response arrived). Snapshots every node's /metrics and the process CPU (whole
      process and per thread, sampled every second so threads that exit are still counted)
      at the start and at the end. Writes RAW.json when FILE --stop appears.
  publish_latency.py report RAW.json
      Statistics → bench/out/publish-latency.json and a section in docs/benchmarks.md.
"""
import argparse
import datetime
import http.client
import json
import os
import re
import statistics
import sys
import threading
import time
import urllib.parse
import urllib.request

sys.dont_write_bytecode = True
from docsection import put  # noqa: E402 (bench/, this file's directory, is on sys.path)

HZ = os.sysconf("SC_CLK_TCK")


def proc_ticks(path):
    s = open(path).read()
    name = s[s.index("(") + 1 : s.rindex(")")]
    f = s[s.rindex(")") + 2 :].split()
    return name, int(f[11]) + int(f[12])


def metrics(url):
    """name{labels} → value, for every sample line of a Prometheus text page."""
    out = {}
    with urllib.request.urlopen(url.rstrip("/") + "/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if not line or line.startswith("#"):
                continue
            key, _, value = line.rpartition(" ")
            try:
                out[key] = float(value)
            except ValueError:
                pass
    return out


def parse_playlist(text):
    """→ {seq: (duration, gap)} and whether it ended."""
    seq, out, dur, gap = 0, {}, None, False
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            seq = int(line.split(":", 1)[1])
        elif line.startswith("#EXTINF:"):
            dur = float(line.split(":", 1)[1].split(",")[0])
        elif line == "#EXT-X-GAP":
            gap = True
        elif line and not line.startswith("#"):
            m = re.match(r"(\d+)\.ts", line.rsplit("/", 1)[-1])
            n = int(m.group(1)) if m else seq
            out[n] = (dur, gap)
            seq, dur, gap = n + 1, None, False
    return out, "#EXT-X-ENDLIST" in text


def poll(args):
    stop = threading.Event()
    seen = {}  # (node, rendition) → {seq: [wall, duration, gap]}
    polls = {}
    errors = {}

    def poller(node, url, rendition):
        u = urllib.parse.urlsplit(url)
        path = f"{u.path.rstrip('/')}/live/{args.stream}/{rendition}/index.m3u8"
        conn = None
        mine = seen.setdefault((node, rendition), {})
        count = err = 0
        nxt = time.monotonic()
        while not stop.is_set():
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=2)
                conn.request("GET", path)
                resp = conn.getresponse()
                body = resp.read()
                now = time.time()
                count += 1
                if resp.status == 200:
                    entries, _ = parse_playlist(body.decode())
                    for s, (d, g) in entries.items():
                        if s not in mine:
                            mine[s] = [now, d, g]
            except (OSError, http.client.HTTPException):
                err += 1
                if conn is not None:
                    conn.close()
                conn = None
            nxt += args.interval
            delay = nxt - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                nxt = time.monotonic()
        polls[(node, rendition)] = count
        errors[(node, rendition)] = err

    threads_cpu = {}  # tid → (name, max ticks seen)

    def sample_threads():
        for tid in os.listdir(f"/proc/{args.pid}/task"):
            try:
                name, t = proc_ticks(f"/proc/{args.pid}/task/{tid}/stat")
            except (OSError, ValueError):
                continue
            old = threads_cpu.get(tid)
            if old is None:
                threads_cpu[tid] = [name, t, t]  # name, first, last
            else:
                old[0], old[2] = name, max(old[2], t)

    nodes = {f"node{i + 1}": u for i, u in enumerate(args.urls)}
    m0 = {n: metrics(u) for n, u in nodes.items()}
    _, cpu0 = proc_ticks(f"/proc/{args.pid}/stat")
    sample_threads()
    t0 = time.time()
    workers = [
        threading.Thread(target=poller, args=(n, u, r), daemon=True)
        for n, u in nodes.items()
        for r in args.renditions.split(",")
    ]
    for w in workers:
        w.start()
    open(args.ready, "w").close()
    while not os.path.exists(args.stop):
        time.sleep(0.2)
        sample_threads()
    stop.set()
    for w in workers:
        w.join()
    t1 = time.time()
    sample_threads()
    _, cpu1 = proc_ticks(f"/proc/{args.pid}/stat")
    m1 = {n: metrics(u) for n, u in nodes.items()}
    raw = {
        "interval_s": args.interval,
        "stream": args.stream,
        "wall_s": t1 - t0,
        "nodes": list(nodes),
        "seen": {f"{n}|{r}": {str(s): v for s, v in d.items()} for (n, r), d in seen.items()},
        "polls": {f"{n}|{r}": c for (n, r), c in polls.items()},
        "poll_errors": {f"{n}|{r}": c for (n, r), c in errors.items()},
        "process_cpu_s": (cpu1 - cpu0) / HZ,
        "threads_cpu_s": [(name, (last - first) / HZ) for name, first, last in threads_cpu.values()],
        "metrics_start": m0,
        "metrics_end": m1,
        "publisher": args.publisher,
    }
    json.dump(raw, open(args.out, "w"))


def pct(xs, p):
    if not xs:
        return None
    xs = sorted(xs)
    k = (len(xs) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def hist(m0, m1, name, labels=""):
    """Delta of a Prometheus histogram between two snapshots → (sum, count, [(le, cumulative)])."""
    def pick(m):
        b = []
        for k, v in m.items():
            if k.startswith(name + "_bucket{") and (labels in k):
                le = re.search(r'le="([^"]+)"', k).group(1)
                b.append((float("inf") if le == "+Inf" else float(le), v))
        s = sum(v for k, v in m.items() if k.startswith(name + "_sum") and labels in k)
        c = sum(v for k, v in m.items() if k.startswith(name + "_count") and labels in k)
        return s, c, b

    s0, c0, b0 = pick(m0)
    s1, c1, b1 = pick(m1)
    before = {}
    for le, v in b0:
        before[le] = before.get(le, 0) + v
    after = {}
    for le, v in b1:
        after[le] = after.get(le, 0) + v
    buckets = sorted((le, after[le] - before.get(le, 0)) for le in after)
    return s1 - s0, c1 - c0, buckets


def hist_quantile(buckets, q):
    """Prometheus histogram_quantile: linear interpolation inside the bucket."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    total = buckets[-1][1]
    rank = q * total
    prev_le, prev_c = 0.0, 0.0
    for le, c in buckets:
        if c >= rank:
            if le == float("inf"):
                return prev_le
            if c == prev_c:
                return le
            return prev_le + (le - prev_le) * (rank - prev_c) / (c - prev_c)
        prev_le, prev_c = le, c
    return prev_le


def summary(xs, scale=1000.0):
    xs = [x * scale for x in xs]
    if not xs:
        return None
    return {"n": len(xs), "p50": pct(xs, 50), "p99": pct(xs, 99), "max": max(xs), "mean": statistics.mean(xs)}


def report(args):
    raw = json.load(open(args.raw))
    seen = {}
    for key, d in raw["seen"].items():
        node, rendition = key.split("|")
        seen.setdefault(rendition, {})[node] = {int(s): v for s, v in d.items()}
    nodes = raw["nodes"]
    out = {
        "benchmark": "publish latency: a segment closing at the ingest → listed on every broadcast node",
        "date": datetime.date.today().isoformat(),
        "publisher": raw["publisher"],
        "poll_interval_ms": raw["interval_s"] * 1000,
        "nodes": len(nodes),
        "wall_s": raw["wall_s"],
        "polls": raw["polls"],
        "poll_errors": raw["poll_errors"],
        "renditions": {},
    }
    for rendition, by_node in seen.items():
        seqs = sorted(set().union(*[set(d) for d in by_node.values()]))
        skew, first_to_each, gaps, missing = [], [], [], []
        durations = {}
        for s in seqs:
            ts = [by_node[n][s][0] for n in nodes if s in by_node.get(n, {})]
            for n in nodes:
                if s in by_node.get(n, {}):
                    durations[s] = by_node[n][s][1]
                    if by_node[n][s][2]:
                        gaps.append((n, s))
            if len(ts) < len(nodes):
                missing.append(s)
                continue
            skew.append(max(ts) - min(ts))
            first_to_each.extend(t - min(ts) for t in ts if t != min(ts))
        # Segments are cut on a real-time clock: seq s closes at T0 + sum of the durations up to
        # s. T0 is unknown, so this is the latency to the first listing relative to the fastest
        # segment of the run (its jitter), not an absolute latency.
        med = statistics.median([d for d in durations.values() if d]) if durations else 2.0
        end, t = {}, 0.0
        for s in range(min(seqs), max(seqs) + 1) if seqs else []:
            t += durations.get(s) or med
            end[s] = t
        first_any = {s: min(by_node[n][s][0] for n in nodes if s in by_node.get(n, {})) for s in seqs}
        # The last segment is cut by the unpublish and flushed from the encoder at once, so it
        # skips the encoder's lookahead delay: it is left out of the jitter and shown apart.
        body = seqs[:-1] if len(seqs) > 2 else seqs
        rel = {s: first_any[s] - end[s] for s in seqs}
        base = min(rel[s] for s in body) if body else 0.0
        jitter = [rel[s] - base for s in body]
        out["renditions"][rendition] = {
            "segments": len(seqs),
            "first_seq": seqs[0] if seqs else None,
            "last_seq": seqs[-1] if seqs else None,
            "not_on_every_node": missing,
            "gaps": gaps,
            "skew_ms": summary(skew),
            "first_to_other_nodes_ms": summary(first_to_each),
            "listing_jitter_vs_realtime_clock_ms": summary(jitter),
            "last_segment_vs_fastest_other_ms": (rel[seqs[-1]] - base) * 1000 if len(seqs) > 2 else None,
            "per_segment": {s: {"first_listed_unix": first_any[s], "duration": durations.get(s),
                                "rel_to_realtime_clock_ms": (rel[s] - base) * 1000,
                                "per_node_ms_after_first": {n: (by_node[n][s][0] - first_any[s]) * 1000
                                                            for n in nodes if s in by_node.get(n, {})}}
                            for s in seqs},
        }
    # Passthrough vs encoded: how much later an encoded rung lists the same sequence number
    # than the `src` rung (the transcode's pipeline delay), on the first node to list each.
    out["encoded_vs_src_ms"] = {}
    if "src" in out["renditions"]:
        src = out["renditions"]["src"]["per_segment"]
        for r, e in out["renditions"].items():
            if r == "src":
                continue
            common = sorted(set(src) & set(e["per_segment"]))[:-1]
            out["encoded_vs_src_ms"][r] = summary([e["per_segment"][s]["first_listed_unix"] - src[s]["first_listed_unix"]
                                                   for s in common])
    m0, m1 = raw["metrics_start"], raw["metrics_end"]
    verify = [hist(m0[n], m1[n], "sealcast_signature_verify_seconds") for n in nodes]
    wait = [hist(m0[n], m1[n], "sealcast_signature_wait_seconds") for n in nodes]

    def merge(hs):
        s = sum(h[0] for h in hs)
        c = sum(h[1] for h in hs)
        agg = {}
        for h in hs:
            for le, v in h[2]:
                agg[le] = agg.get(le, 0) + v
        return s, c, sorted(agg.items())

    def hsum(h):
        s, c, b = h
        return {
            "count": c,
            "sum_s": s,
            "mean_ms": s / c * 1000 if c else None,
            "p50_ms_est": (hist_quantile(b, 0.5) or 0) * 1000 if c else None,
            "p99_ms_est": (hist_quantile(b, 0.99) or 0) * 1000 if c else None,
            "buckets": [[("+Inf" if le == float("inf") else le), v] for le, v in b],
        }

    first = nodes[0]
    ingest_nodes = sorted({re.search(r'node="([^"]+)"', k).group(1)
                           for k in m1[first] if k.startswith("sealcast_ingest_push_seconds_count{")})
    out["metrics"] = {
        "signature_verify_seconds": hsum(merge(verify)),
        "signature_wait_seconds": hsum(merge(wait)),
        "signature_wait_seconds_per_node": {n: hsum(w) for n, w in zip(nodes, wait)},
        "ingest_sign_seconds": hsum(hist(m0[first], m1[first], "sealcast_ingest_sign_seconds")),
        "ingest_push_seconds": {
            n: hsum(hist(m0[first], m1[first], "sealcast_ingest_push_seconds", f'node="{n}"')) for n in ingest_nodes
        },
        "segments_published": {n: sum(v for k, v in m1[n].items() if k.startswith("sealcast_segments_published_total"))
                               - sum(v for k, v in m0[n].items() if k.startswith("sealcast_segments_published_total"))
                               for n in nodes},
        "ingest_push_failures": {re.search(r'node="([^"]+)"', k).group(1) if "node=" in k else k: v - m0[first].get(k, 0)
                                 for k, v in m1[first].items()
                                 if k.startswith("sealcast_ingest_push_failures") and v - m0[first].get(k, 0)},
        "ingest_rungs_shed": sum(v - m0[first].get(k, 0) for k, v in m1[first].items()
                                 if k.startswith("sealcast_ingest_rungs_shed")),
        "segments_rejected": {n: {re.search(r'reason="([^"]+)"', k).group(1): v - m0[n].get(k, 0)
                                  for k, v in m1[n].items()
                                  if k.startswith("sealcast_segments_rejected_total") and v - m0[n].get(k, 0)}
                              for n in nodes},
    }
    threads = {}
    for name, cpu in raw["threads_cpu_s"]:
        group = re.sub(r"[-_:].*$", "", name)  # tokio-runtime-w / tokio-rt-worker → tokio
        threads[group] = threads.get(group, 0.0) + cpu
    proc = raw["process_cpu_s"]
    # Threads of the ingest's transcode: the pipeline coordinator, the emitter, one per x264
    # rung, and the threads libavcodec/libx264 start from them (they inherit the name).
    transcode = sum(v for k, v in threads.items() if k in ("x264", "ingest", "emit"))
    vsum = out["metrics"]["signature_verify_seconds"]["sum_s"]
    tokio = threads.get("tokio", 0.0)
    out["cpu"] = {
        "process_cpu_s": proc,
        "threads_cpu_s_by_name": {k: round(v, 3) for k, v in sorted(threads.items(), key=lambda x: -x[1])},
        "transcode_threads_cpu_s": transcode,
        "tokio_threads_cpu_s": tokio,
        "verify_sum_s": vsum,
        "verify_share_of_process_cpu": vsum / proc if proc else None,
        "verify_share_of_non_transcode_cpu": vsum / (proc - transcode) if proc - transcode > 0 else None,
        "verify_share_of_tokio_threads_cpu": vsum / tokio if tokio else None,
    }
    os.makedirs("bench/out", exist_ok=True)
    json.dump(out, open("bench/out/publish-latency.json", "w"), indent=2)

    f = lambda x: "–" if x is None else f"{x:.1f}"
    lines = [
        "## Publish latency and skew across edges (bench/publish-latency.sh)",
        "",
        f"`sealcast up --broadcast 3` (ML-DSA-65), {raw['publisher']}; each node's {' and '.join(seen)} media playlists polled every "
        f"{raw['interval_s'] * 1000:.0f} ms over keep-alive HTTP/1.1 for {raw['wall_s']:.0f} s, {out['date']}. "
        "The ingest exports no per-segment close time, so *skew* is the time from a sequence number's first "
        "listing on any node to its listing on the last node (max − min over the 3 nodes), and *jitter* is the "
        "first listing measured against the publisher's real-time clock (segment end = start + sum of EXTINF), "
        "relative to the fastest segment of the run — the spread of close→listed latency, not its absolute value. "
        f"Poll resolution is {raw['interval_s'] * 1000:.0f} ms; with ~30 segments per node a p99 is close to the maximum.",
        "",
        "| rendition | segments | skew p50 ms | skew p99 ms | skew max ms | jitter p50 ms | jitter p99 ms | missing on a node | gaps |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r, e in out["renditions"].items():
        sk, ji = e["skew_ms"] or {}, e["listing_jitter_vs_realtime_clock_ms"] or {}
        lines.append(f"| {r} | {e['segments']} | {f(sk.get('p50'))} | {f(sk.get('p99'))} | {f(sk.get('max'))} | "
                     f"{f(ji.get('p50'))} | {f(ji.get('p99'))} | {len(e['not_on_every_node'])} | {len(e['gaps'])} |")
    for r, e in out["encoded_vs_src_ms"].items():
        if e:
            lines += ["", f"The {r} rung lists a sequence number {e['p50']:.0f} ms (p50; p99 {e['p99']:.0f} ms) after the "
                          "`src` rung lists the same one: the ingest emits a sequence number on all rungs together, so the "
                          "passthrough rung waits for the encoded ones."]
    lasts = [f"{r} {e['last_segment_vs_fastest_other_ms']:.0f} ms" for r, e in out["renditions"].items()
             if e["last_segment_vs_fastest_other_ms"] is not None]
    if lasts:
        lines += ["", "The last segment, cut by the unpublish, is listed relative to the real-time clock at "
                      + ", ".join(lasts) + " against the fastest other segment, so it is left out of the jitter. Negative means every other "
                      "segment spends that much longer between its end on the publisher's clock and its listing: the "
                      "encoders' pipeline delay (x264 veryfast lookahead, B-frames and frame threads, in the publisher "
                      "and in the ingest), which the unpublish flushes at once. Without ingest timestamps the two cannot "
                      "be told apart here."]
    mm = out["metrics"]
    v, w, s = mm["signature_verify_seconds"], mm["signature_wait_seconds"], mm["ingest_sign_seconds"]
    lines += [
        "",
        "From the nodes' `/metrics` over the run (all rungs, all 3 nodes; p50/p99 estimated from the histogram buckets):",
        "",
        "| metric | count | mean ms | p50 ms (est.) | p99 ms (est.) |",
        "|---|---|---|---|---|",
        f"| `sealcast_signature_verify_seconds` (ML-DSA-65 verify) | {v['count']:.0f} | {v['mean_ms'] or 0:.3f} | {v['p50_ms_est'] or 0:.3f} | {v['p99_ms_est'] or 0:.3f} |",
        f"| `sealcast_signature_wait_seconds` (bytes arrived → published: the gate's added latency) | {w['count']:.0f} | {f(w['mean_ms'])} | {f(w['p50_ms_est'])} | {f(w['p99_ms_est'])} |",
        f"| `sealcast_ingest_sign_seconds` | {s['count']:.0f} | {s['mean_ms'] or 0:.3f} | {s['p50_ms_est'] or 0:.3f} | {s['p99_ms_est'] or 0:.3f} |",
    ]
    for n, p in mm["ingest_push_seconds"].items():
        lines.append(f"| `sealcast_ingest_push_seconds{{node=\"{n}\"}}` | {p['count']:.0f} | {f(p['mean_ms'])} | {f(p['p50_ms_est'])} | {f(p['p99_ms_est'])} |")
    c = out["cpu"]
    pc = lambda x: "–" if x is None else f"{x * 100:.3f} %"
    lines += [
        "",
        f"Verification CPU: {c['verify_sum_s']:.3f} s of ML-DSA-65 verify over {v['count']:.0f} manifests, against "
        f"{c['process_cpu_s']:.1f} CPU-s for the whole `up` process ({pc(c['verify_share_of_process_cpu'])}; it includes "
        f"the ingest's transcode, {c['transcode_threads_cpu_s']:.1f} CPU-s) and {c['process_cpu_s'] - c['transcode_threads_cpu_s']:.1f} CPU-s "
        f"outside the transcode threads ({pc(c['verify_share_of_non_transcode_cpu'])}: edges, ingest push/sign, MQTT; "
        f"the tokio threads alone used {c['tokio_threads_cpu_s']:.1f} CPU-s, {pc(c['verify_share_of_tokio_threads_cpu'])}). "
        "The verify histogram times the signature check only; hashing the pushed bytes is not in it. "
        f"Segments published per node: {', '.join(f'{n} {int(x)}' for n, x in mm['segments_published'].items())}; "
        f"rejected by the gate: {json.dumps(mm['segments_rejected'])}; ingest pushes that failed: "
        f"{json.dumps(mm['ingest_push_failures'])}; rungs shed: {mm['ingest_rungs_shed']:.0f}.",
        "",
        "Aim (brief): skew across 3 edges p99 < 50 ms, gate wait / close-to-available p99 < 100 ms on loopback, "
        "verification < 2 % of edge CPU. There is no verification-off switch, so the on/off comparison is the verify "
        "histogram and the gate wait. Run it with `bench/publish-latency.sh [SECONDS]` (default 60); "
        "raw numbers in `bench/out/publish-latency.json`.",
        "",
    ]
    section = "\n".join(lines)
    put(section, "## Publish latency", results="bench/out/publish-latency.json")
    print(section)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("poll")
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--stream", default="main")
    p.add_argument("--renditions", default="720p")
    p.add_argument("--interval", type=float, default=0.01)
    p.add_argument("--out", required=True)
    p.add_argument("--ready", required=True)
    p.add_argument("--stop", required=True)
    p.add_argument("--publisher", default="")
    p.add_argument("urls", nargs="+")
    r = sub.add_parser("report")
    r.add_argument("raw")
    a = ap.parse_args()
    poll(a) if a.cmd == "poll" else report(a)


if __name__ == "__main__":
    main()
