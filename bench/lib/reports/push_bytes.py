"""The Python of bench/push-bytes.sh (issue 46 item 4: report code out of the script's heredocs),
run by it from the repository's root as `python3 bench/lib/reports/push_bytes.py COMMAND ARG...`.
"""
import sys


def latency(argv):
    """bench/push-bytes.sh runs `push_bytes.py latency "$node1/live/bytes/src/index.m3u8" "$SECS" > "$dir/latency.json"`."""
    import json, re, time, urllib.request
    url, secs = argv[1], float(argv[2])
    seen, latencies, gaps = set(), [], set()
    end = time.time() + secs
    msn = None
    while time.time() < end:
        target = url if msn is None else f"{url}?_HLS_msn={msn}"
        try:
            text = urllib.request.urlopen(target, timeout=10).read().decode()
        except Exception:
            time.sleep(0.1)
            continue
        now = time.time()
        start, duration, gap, last = None, None, False, None
        for line in text.splitlines():
            if line.startswith("#EXT-X-PROGRAM-DATE-TIME:"):
                stamp = line.split(":", 1)[1].replace("Z", "+00:00")
                from datetime import datetime
                start = datetime.fromisoformat(stamp).timestamp()
            elif line.startswith("#EXTINF:"):
                duration = float(line[8:].split(",")[0])
            elif line == "#EXT-X-GAP":
                gap = True
            elif line and not line.startswith("#"):
                m = re.match(r"(\d+)\.m4s$", line)
                if m and duration is not None:
                    seq = int(m.group(1))
                    last = seq
                    if seq not in seen and msn is not None:
                        if gap:
                            gaps.add(seq)
                        elif start is not None:
                            latencies.append(now - (start + duration))
                    seen.add(seq)
                    if start is not None:
                        start += duration
                duration, gap = None, False
        if last is not None:
            msn = last + 1
    latencies.sort()
    q = lambda p: round(latencies[min(len(latencies) - 1, int(p * len(latencies)))], 3) if latencies else None
    print(json.dumps({"segments": len(latencies), "p50_s": q(0.5), "p90_s": q(0.9),
                      "max_s": round(latencies[-1], 3) if latencies else None, "gaps_listed": len(gaps)}))


def measure(argv):
    """bench/push-bytes.sh runs `push_bytes.py measure "$dir" "$mode" "$round" "$SECS" >> "$WORK/results.jsonl"`."""
    import json, re
    d, mode, rnd, secs = argv[1], argv[2], int(argv[3]), float(argv[4])
    def series(path):
        out = {}
        for line in open(path):
            m = re.match(r"^([a-z_]+)(\{[^}]*\})? ([0-9.e+-]+)$", line.strip())
            if m:
                out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
        return out
    def delta(i, name):
        a, b = series(f"{d}/before-{i}.txt"), series(f"{d}/after-{i}.txt")
        return sum(v - a.get(k, 0) for k, v in b.items() if k.startswith(name))
    kinds = {k: delta(1, f'sealcast_ingest_push_bytes_total{{node="broadcast1",kind="{k}"}}') +
                delta(1, f'sealcast_ingest_push_bytes_total{{node="broadcast2",kind="{k}"}}')
             for k in ("segment", "part", "event")}
    forms = {f: delta(1, f'sealcast_ingest_segment_pushes_total{{node="broadcast1",form="{f}"}}') +
                delta(1, f'sealcast_ingest_segment_pushes_total{{node="broadcast2",form="{f}"}}')
             for f in ("whole", "assembled", "fallback")}
    received = delta(1, "sealcast_push_bytes_total") + delta(2, "sealcast_push_bytes_total")
    gaps = delta(1, "sealcast_segment_gaps_total") + delta(2, "sealcast_segment_gaps_total")
    latency = json.load(open(f"{d}/latency.json"))
    print(json.dumps({"mode": mode, "round": rnd, "seconds": secs,
        "ingest_to_edge_kbps_per_node": round(sum(kinds.values()) * 8 / secs / 2 / 1000, 1),
        "segment_kbps_per_node": round(kinds["segment"] * 8 / secs / 2 / 1000, 1),
        "part_kbps_per_node": round(kinds["part"] * 8 / secs / 2 / 1000, 1),
        "edges_received_kbps_per_node": round(received * 8 / secs / 2 / 1000, 1),
        "segment_pushes": forms, "gaps_counted": gaps, **latency}))


def report(argv):
    """bench/push-bytes.sh runs `push_bytes.py report "$WORK/results.jsonl" "$SECS" "$ROUNDS" "${PUSH_BYTES_DOCS-docs/benchmarks.md}"`."""
    import datetime, json, statistics, sys
    sys.dont_write_bytecode = True; sys.path.insert(0, "bench"); from docsection import notes, put
    rows = [json.loads(l) for l in open(argv[1])]
    secs, rounds, docs = argv[2], argv[3], argv[4]
    json.dump({"seconds": int(secs), "rounds": int(rounds), "rows": rows}, open("bench/out/push-bytes.json", "w"), indent=1)
    def mean(mode, key):
        v = [r[key] for r in rows if r["mode"] == mode and r[key] is not None]
        return round(statistics.mean(v), 2) if v else None
    def total(mode, key):
        return sum(r[key] for r in rows if r["mode"] == mode)
    def forms(mode):
        f = {}
        for r in rows:
            if r["mode"] == mode:
                for k, v in r["segment_pushes"].items():
                    f[k] = f.get(k, 0) + int(v)
        return ", ".join(f"{k} {v}" for k, v in f.items() if v)
    table = ["## Ingest→edge bytes: segments assembled from their parts (bench/push-bytes.sh)", "",
        f"`bench/push-bytes.sh {secs} {rounds}`, {datetime.date.today()}: `sealcast up` with two broadcast nodes, the source rung only (720p30, 3000 kb/s from `sealcast source`), CMAF, 2 s segments, 0.333 s parts; each mode measured {rounds} times for {secs} s, interleaved, on this shared 2-core machine. `whole` is `SEALCAST_PUSH_WHOLE_SEGMENTS=1` (every segment pushed with its bytes, as before issue 46); `assembled` the default (a segment goes bodiless to a node that took all its parts). Bytes are the ingest's body bytes per node (`sealcast_ingest_push_bytes_total`; the edges' `sealcast_push_bytes_total` agrees); latency is a segment's listing on node 1 after its end (PROGRAM-DATE-TIME + EXTINF), through blocking reloads: the ingest's capture clock, so only the difference between the rows means something (values are means over the rounds; `bench/out/push-bytes.json` has each round).", "",
        "| mode | ingest→edge kb/s per node | of which segments | of which parts | edges received kb/s per node | segment pushes | segment latency p50 / p90 / max s | gaps (listed / counted) |",
        "|---|---|---|---|---|---|---|---|"]
    for mode in ("whole", "assembled"):
        table.append(f"| {mode} | {mean(mode, 'ingest_to_edge_kbps_per_node')} | {mean(mode, 'segment_kbps_per_node')} | {mean(mode, 'part_kbps_per_node')} | {mean(mode, 'edges_received_kbps_per_node')} | {forms(mode)} | {mean(mode, 'p50_s')} / {mean(mode, 'p90_s')} / {mean(mode, 'max_s')} | {total(mode, 'gaps_listed')} / {int(total(mode, 'gaps_counted'))} |")
    w, a = mean("whole", "ingest_to_edge_kbps_per_node"), mean("assembled", "ingest_to_edge_kbps_per_node")
    if w and a:
        table += ["", f"Assembled, the ingest sends {a / w:.0%} of the bytes it sent with whole segments."]
    table += notes("bench/push-bytes-notes.md")
    section = "\n".join(table) + "\n"
    if docs:
        put(section, "## Ingest→edge bytes", docs, results="bench/out/push-bytes.json")
    print(section)


COMMANDS = {"latency": latency, "measure": measure, "report": report}


def main(argv):
    """Runs COMMAND (argv[1]) with argv[1:] (the command in place of the program's name)."""
    COMMANDS[argv[1]](argv[1:])


if __name__ == "__main__":
    main(sys.argv)
