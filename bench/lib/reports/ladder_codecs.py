"""The Python of bench/ladder-codecs.sh (issue 46 item 4: report code out of the script's heredocs),
run by it from the repository's root as `python3 bench/lib/reports/ladder_codecs.py COMMAND ARG...`.
"""
import sys


def sample(argv):
    """bench/ladder-codecs.sh runs `ladder_codecs.py sample "$codec" "$start" "$now" "$before" "$ticks" "$TICK" "$WORK/metrics.txt" >> "$WORK/samples.jsonl"`."""
    import json, re
    codec, start, now, before, ticks, tick, path = argv[1:]
    series = {}
    for line in open(path):
        m = re.match(r'(sealcast_ingest_(?:realtime_factor|lag_seconds|rungs_shed(?:_total)?))\{([^}]*)\} ([0-9.eE+-]+)', line)
        if m and 'stream="main"' in m.group(2):
            rung = re.search(r'rendition="([^"]*)"', m.group(2))
            series.setdefault(m.group(1).replace("_total", ""), {})[rung.group(1) if rung else "-"] = float(m.group(3))
    print(json.dumps({"codec": codec, "t": float(now) - float(start),
                      "cpu_cores": (int(ticks) - int(before)) / int(tick) / max(float(now) - float(start), 1e-3),
                      "realtime_factor": series.get("sealcast_ingest_realtime_factor", {}),
                      "lag_s": series.get("sealcast_ingest_lag_seconds", {}).get("-"),
                      "shed": series.get("sealcast_ingest_rungs_shed", {})}))


def report(argv):
    """bench/ladder-codecs.sh runs `ladder_codecs.py report "$WORK" $CODECS` (environment: SECS)."""
    import json, os, re, sys
    sys.dont_write_bytecode = True; sys.path.insert(0, "bench"); from docsection import put
    work, codecs = argv[1], argv[2:]
    secs = int(os.environ["SECS"])
    samples = [json.loads(l) for l in open(os.path.join(work, "samples.jsonl"))]
    out = {"seconds": secs, "source": "1920x1080 60 fps test pattern + Opus, published over E-RTMP by FFmpeg 9 (-re -c copy)", "codecs": {}}
    for codec in codecs:
        s = [x for x in samples if x["codec"] == codec]
        last = s[-1] if s else {}
        playlist = open(os.path.join(work, f"src-{codec}.m3u8")).read()
        master = open(os.path.join(work, f"master-{codec}.m3u8")).read()
        durations = [float(d) for d in re.findall(r"#EXTINF:([0-9.]+)", playlist)]
        gaps = playlist.count("#EXT-X-GAP")
        rungs = {}
        for x in s:
            for rung, rf in x["realtime_factor"].items():
                rungs.setdefault(rung, []).append(rf)
        shed = {r: v for r, v in last.get("shed", {}).items() if v > 0}
        first_shed = {}
        for x in s:
            for r, v in x["shed"].items():
                if v > 0 and r not in first_shed:
                    first_shed[r] = round(x["t"], 1)
        out["codecs"][codec] = {
            "cpu_cores": last.get("cpu_cores"),
            "realtime_factor_min": {r: min(v) for r, v in rungs.items()},
            "lag_max_s": max((x["lag_s"] for x in s if x["lag_s"] is not None), default=None),
            "rungs_shed": shed, "shed_at_s": first_shed,
            "src_codecs": (re.findall(r'CODECS="([^"]*)"[^\n]*\n[^\n]*src/', master) or [None])[0],
            "src_segments_listed": len(durations), "src_gaps": gaps,
            "src_window_s": round(sum(durations), 1),
            "samples": s,
        }
    json.dump(out, open("bench/out/ladder-codecs.json", "w"), indent=1)
    fmt = lambda v: "—" if v is None else (f"{v:.2f}" if isinstance(v, float) else str(v))
    rows = []
    for codec, r in out["codecs"].items():
        rf = ", ".join(f"{k} {v:.2f}" for k, v in sorted(r["realtime_factor_min"].items())) or "—"
        shed = ", ".join(f"{k} at {r['shed_at_s'].get(k, '?')} s" for k in r["rungs_shed"]) or "none"
        rows.append(f"| {codec} | {fmt(r['cpu_cores'])} | {rf} | {fmt(r['lag_max_s'])} | {shed} | {r['src_codecs'] or '—'} | {r['src_gaps']} |")
    section = "\n".join([
        "## Ladder CPU for 1080p60 HEVC and AV1 sources",
        "",
        f"`bench/ladder-codecs.sh {secs}`: {out['source']} to `sealcast up` with the default ladder (src passed through in its own codec, 720p/480p/360p by x264 `veryfast`), on this 2-core machine. CPU is `sealcast up`'s whole process (decode, three x264 rungs, signing, pushing to 2 nodes) in cores; realtime factor is each rung's lowest (1.0 keeps up); a rung the pipeline shed shows in `sealcast_ingest_rungs_shed` and disappears from the dashboard's rung list; the src rung's live window must have no gap (the stream never stalls).",
        "",
        "| source | CPU cores | realtime factor (lowest per rung) | lag max s | rungs shed | src CODECS | src gaps |",
        "|---|---|---|---|---|---|---|",
        *rows,
    ]) + "\n"
    put(section, "## Ladder CPU for 1080p60 HEVC and AV1 sources", after="## Ladder", results="bench/out/ladder-codecs.json")
    print(section)


COMMANDS = {"sample": sample, "report": report}


def main(argv):
    """Runs COMMAND (argv[1]) with argv[1:] (the command in place of the program's name)."""
    COMMANDS[argv[1]](argv[1:])


if __name__ == "__main__":
    main(sys.argv)
