"""The Python of bench/push-bytes.sh (issue 46 item 4: report code out of the script's heredocs),
run by it from the repository's root as `python3 bench/lib/reports/push_bytes.py COMMAND ARG...`.
Its report is `sealcast-bench report push-bytes` (bench/viewers/src/reports/push_bytes.rs).
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


COMMANDS = {"latency": latency, "measure": measure}


def main(argv):
    """Runs COMMAND (argv[1]) with argv[1:] (the command in place of the program's name)."""
    COMMANDS[argv[1]](argv[1:])


if __name__ == "__main__":
    main(sys.argv)
