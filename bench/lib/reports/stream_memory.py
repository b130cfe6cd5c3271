"""The Python of bench/stream-memory.sh (issue 46 item 4: report code out of the script's heredocs),
run by it from the repository's root as `python3 bench/lib/reports/stream_memory.py ARG...`.
"""
import sys


def main(argv):
    """bench/stream-memory.sh runs `stream_memory.py "$RAW" "$RESULTS" "$DOCS" "$NOTES" "$RUNS" "$STREAMS" "$LADDER" "$SIZE" "$SOURCE_KBPS" "$SAMPLE_SECONDS" "$NODE_WORKERS" "$GRACE"`."""
    import datetime, json, os, statistics, sys
    sys.dont_write_bytecode = True; sys.path.insert(0, "bench"); from docsection import notes as notes_lines, put; from lib.stats import median, spread
    raw, results, docs, notes = argv[1:5]
    runs, streams = int(argv[5]), int(argv[6])
    ladder, size, source_kbps, sample_s, workers, grace = argv[7], argv[8], int(argv[9]), int(argv[10]), int(argv[11]), int(argv[12])
    points, extra = {}, {}
    for line in open(raw):
        o = json.loads(line)
        if "point" in o:
            points.setdefault(o["run"], {})[o["streams"]] = dict(o["point"], wait_s=o.get("wait_s"))
        else:
            extra[o["run"]] = o

    def slope(xs, ys):
        if len(xs) < 2:
            return None
        mx, my = statistics.fmean(xs), statistics.fmean(ys)
        den = sum((x - mx) ** 2 for x in xs)
        return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den if den else None

    per_run = []
    for run, pts in sorted(points.items()):
        n = max(pts)
        if n == 0:
            continue
        p0, pn = pts[0], pts[n]
        added = {k: (pn[k] - p0[k]) * 1024 for k in ("VmRSS", "RssAnon", "Pss") if pn.get(k) is not None and p0.get(k) is not None}
        ks = [k for k in sorted(pts) if k >= 1]
        r = {
            "run": run, "streams": n,
            "rss0_kib": p0["VmRSS"], "rss_kib": pn["VmRSS"],
            "added_rss_per_stream": added["VmRSS"] / n,
            "added_anon_per_stream": added.get("RssAnon", 0) / n,
            "added_pss_per_stream": added["Pss"] / n if "Pss" in added else None,
            "floor_listed_per_stream": pn["floor_listed"] / n,
            "floor_unique_per_stream": pn["floor_unique"] / n,
            "floor_served_per_stream": pn["floor_served"] / n,
            "ratio_listed": added["VmRSS"] / pn["floor_listed"],
            "ratio_unique": added["VmRSS"] / pn["floor_unique"],
            "ratio_served": added["VmRSS"] / pn["floor_served"],
            "ratio_anon_listed": added.get("RssAnon", 0) / pn["floor_listed"],
            "ratio_pss_listed": added["Pss"] / pn["floor_listed"] if "Pss" in added else None,
            "marginal_rss_per_stream": (s := slope(ks, [pts[k]["VmRSS"] * 1024 for k in ks])),
            "marginal_floor_per_stream": (f := slope(ks, [pts[k]["floor_listed"] for k in ks])),
            "marginal_ratio": s / f if s is not None and f else None,
            "kbps": pn.get("kbps"), "shed": extra.get(run, {}).get("shed"),
            "points": pts,
        }
        e = extra.get(run)
        if e:
            r["node_cpu_s"] = e["node_ticks"] / e["hz"]
            r["ingest_cpu_s"] = e["ingest_ticks"] / e["hz"]
        per_run.append(r)

    def summ(key):
        return spread([r.get(key) for r in per_run])

    keys = ["added_rss_per_stream", "added_anon_per_stream", "added_pss_per_stream",
            "floor_listed_per_stream", "floor_unique_per_stream", "floor_served_per_stream",
            "ratio_listed", "ratio_unique", "ratio_served", "ratio_anon_listed", "ratio_pss_listed",
            "marginal_rss_per_stream", "marginal_floor_per_stream", "marginal_ratio"]
    summary = {k: summ(k) for k in keys}
    kbps = {}
    for r in per_run:
        for rung, v in (r["kbps"] or {}).items():
            kbps.setdefault(rung, []).append(v)
    kbps = {rung: median(v) for rung, v in kbps.items()}
    out = {"date": datetime.date.today().isoformat(), "runs": runs, "streams": streams,
           "ladder": ladder, "source": f"{size} 30 fps {source_kbps} kb/s", "sample_seconds": sample_s,
           "node_workers": workers, "kbps": kbps, "summary": summary, "per_run": per_run}
    os.makedirs(os.path.dirname(results) or ".", exist_ok=True)
    json.dump(out, open(results, "w"), indent=2)

    def mb(x): return f"{x / 1e6:.2f}"
    def fmt(k, f, unit=""):
        s = summary.get(k)
        if not s:
            return "—"
        return f"{f(s['median'])}{unit} ({f(s['min'])}–{f(s['max'])})"
    r2 = lambda x: f"{x:.2f}"
    shed = sum(r["shed"] or 0 for r in per_run)
    if ladder == "cheap":
        setup = ("the default ladder's shape and bitrates at a quarter of the pixels (the 2-core machine cannot "
                 "transcode the default 720p ladder for more than one stream in real time): `sealcast source` "
                 f"{size} 30 fps {source_kbps} kb/s (src) and encoded rungs of 360, 270 and 180 lines at 3000 / 1200 / "
                 "730 kb/s (x264 ultrafast, one thread each); 2 s segments, window 6, CMAF with 0.333 s parts")
    else:
        setup = f"the product's default ladder (`sealcast source` {size} 30 fps {source_kbps} kb/s)"
    rates = ", ".join(f"{k} {v:.0f}" for k, v in kbps.items())
    lines = [
        "## Memory per live stream (bench/stream-memory.sh)", "",
        f"A broadcast node as its own process (`sealcast broadcast`, {workers} tokio worker; `sealcast ingest` and "
        "Mosquitto in processes of their own), live streams published at real-time pace with `sealcast source` "
        f"and added one by one up to {streams}; {setup}. Bitrates reached, kb/s over the listed window: {rates}. "
        f"After each stream, once every rung of it lists a full window and has slid on by {grace + 1} segments "
        f"(so the node also holds the {grace} segments it keeps fetchable after the window), the node's VmRSS "
        f"and Pss and the floor are sampled every 0.5 s for {sample_s} s (medians). The floor is read from the "
        "node: the size of every segment, LL-HLS part and init segment that every rung's media playlist lists "
        f"(the last three segments are listed both whole and as parts). {len(per_run)} run{'s' if len(per_run) != 1 else ''} with fresh processes, "
        f"{out['date']}; median (min–max).", "",
        "| figure | per stream |", "|---|---|",
        f"| added RSS, (RSS(k) − RSS(0)) / k at k = {streams} | {fmt('added_rss_per_stream', mb, ' MB')} |",
        f"| of which anonymous (RssAnon) | {fmt('added_anon_per_stream', mb, ' MB')} |",
        f"| added Pss | {fmt('added_pss_per_stream', mb, ' MB')} |",
        f"| floor: bytes listed (segments + parts + init) | {fmt('floor_listed_per_stream', mb, ' MB')} |",
        f"| each byte once (segments, the open segment's parts, init) | {fmt('floor_unique_per_stream', mb, ' MB')} |",
        f"| what the node answers for (listed + segments kept after the window + every part it serves) | {fmt('floor_served_per_stream', mb, ' MB')} |",
        f"| **ratio added RSS / floor listed** (goal ≤ 1.3) | **{fmt('ratio_listed', r2)}** |",
        f"| ratio added RSS / each byte once | {fmt('ratio_unique', r2)} |",
        f"| ratio added RSS / what the node answers for | {fmt('ratio_served', r2)} |",
        f"| ratio added Pss / floor listed | {fmt('ratio_pss_listed', r2)} |",
        f"| marginal: slope of RSS over k = 1..{streams} / slope of the floor | {fmt('marginal_ratio', r2)} ({fmt('marginal_rss_per_stream', mb, ' MB')} / {fmt('marginal_floor_per_stream', mb, ' MB')}) |",
        "",
        f"Rungs shed by the ingest (it fell behind real time): {shed}. RSS(0), the node with no stream: "
        + ", ".join(mb(r['rss0_kib'] * 1024) for r in per_run) + f" MB; at {streams} streams: "
        + ", ".join(mb(r['rss_kib'] * 1024) for r in per_run) + " MB (each run).",
    ]
    steps = []
    for k in range(1, streams + 1):
        xs = [(r["points"][k]["VmRSS"] - r["points"][k - 1]["VmRSS"]) * 1024 for r in per_run
              if k in r["points"] and k - 1 in r["points"]]
        fs = [r["points"][k]["floor_listed"] - r["points"][k - 1]["floor_listed"] for r in per_run
              if k in r["points"] and k - 1 in r["points"]]
        if xs:
            steps.append(f"stream {k} {mb(median(xs))} MB (floor {mb(median(fs))} MB)")
    summary["steps"] = steps
    huge = [(r["points"][0].get("AnonHugePages"), r["points"][streams].get("AnonHugePages")) for r in per_run if streams in r["points"]]
    lines += ["", "RSS each stream added, median over the runs: " + "; ".join(steps) + ". "
              + "Transparent huge pages in the node (AnonHugePages, KiB) with 0 / "
              + f"{streams} streams: " + ", ".join(f"{a:.0f} / {b:.0f}" for a, b in huge if a is not None and b is not None) + "."]
    lines += notes_lines(notes)
    lines += ["", "Run it with `bench/stream-memory.sh [RUNS [STREAMS]]` (default 5 runs of 3 streams; "
              "`LADDER=default` for the product's ladder); raw numbers in `bench/out/stream-memory.json`.", ""]
    section = "\n".join(lines)
    out["summary"] = summary
    json.dump(out, open(results, "w"), indent=2)
    print(section)
    if docs:
        put(section, "## Memory per live stream (bench/stream-memory.sh)", docs, results=results)


if __name__ == "__main__":
    main(sys.argv)
