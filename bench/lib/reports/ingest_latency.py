"""The Python of bench/ingest-latency.sh (issue 46 item 4: report code out of the script's heredocs),
run by it from the repository's root as `python3 bench/lib/reports/ingest_latency.py ARG...`.
"""
import sys


def main(argv):
    """bench/ingest-latency.sh runs `ingest_latency.py "$WORK/runs.jsonl"` (environment: LADDER, PROTOCOLS, ROUNDS, SECS)."""
    import json, os, sys
    sys.dont_write_bytecode = True; sys.path.insert(0, "bench"); from docsection import put, notes; from lib.stats import median_high
    runs = [json.loads(l) for l in open(argv[1])]
    med = median_high
    if os.environ.get("TRANSPORTS", "hls").split() != ["hls"]:
        return moq_mode(runs, put, notes, med)
    publishers = {
        "source": "`sealcast source` itself over RTMP (no pipe, no ffmpeg)",
        "rtmp-bframes": "as RTMP, the source's x264 as OBS's default (B-frames, lookahead)",
        "rtmp": "Debian's ffmpeg 5.1, `-c copy` into FLV over RTMP",
        "srt": "Debian's ffmpeg 5.1 (libsrt 1.5, latency 120 ms), `-c copy` into MPEG-TS over SRT",
        "whip": "FFmpeg 9 re-encoding (x264 zerolatency, no B-frames, Opus), its whip muxer through the load balancer",
    }
    out = {"seconds_per_run": int(os.environ["SECS"]), "rounds": int(os.environ["ROUNDS"]),
           "ladder": os.environ["LADDER"], "goal_p50_s": 1.5, "protocols": {}, "runs": runs}
    for proto in os.environ["PROTOCOLS"].split():
        mine = [r for r in runs if r["protocol"] == proto]
        g = [r["glass_to_glass_s"] for r in mine if r["glass_to_glass_s"]]
        p50s, p90s = [x["p50"] for x in g], [x["p90"] for x in g]
        out["protocols"][proto] = {
            "publisher": publishers[proto],
            "p50_s": {"median": med(p50s), "min": min(p50s, default=None), "max": max(p50s, default=None)},
            "p90_s": {"median": med(p90s), "min": min(p90s, default=None), "max": max(p90s, default=None)},
            "max_s": max((x["max"] for x in g), default=None),
            "longest_stall_s": max((r["longest_stall_s"] for r in mine if r["longest_stall_s"] is not None), default=None),
            "failed_runs": sum(1 for r in mine if r.get("failed")),
            "stamped_samples": sum(r["stamped_samples"] for r in mine),
        }
    json.dump(out, open("bench/out/ingest-latency.json", "w"), indent=1)
    f = lambda v: "—" if v is None else f"{v:.2f}"
    rows = []
    for proto, p in out["protocols"].items():
        goal = "reference" if proto in ("rtmp", "rtmp-bframes", "source") else ("met" if p["p50_s"]["median"] is not None and p["p50_s"]["median"] <= 1.5 else "not met")
        rows.append(f"| {proto.upper()} | {p['publisher']} | {f(p['p50_s']['median'])} ({f(p['p50_s']['min'])}–{f(p['p50_s']['max'])}) | {f(p['p90_s']['median'])} ({f(p['p90_s']['min'])}–{f(p['p90_s']['max'])}) | {f(p['max_s'])} | {f(p['longest_stall_s'])} | {p['stamped_samples']} | {p['failed_runs']} | {goal} |")
    section = "\n".join([
        "## Glass-to-glass latency per ingest protocol",
        "",
        f"`bench/ingest-latency.sh {out['seconds_per_run']} {out['rounds']}`: `sealcast source` (720p30, x264 `--low-latency` unless the row says otherwise, GOP 2 s, AAC, the clock stamped into every frame) published over each protocol into one `sealcast up` cluster (2 edges), in turn, {out['rounds']} rounds interleaved; Chromium plays each stream as LL-HLS (the sealcast player, hls.js in low-latency mode) through the load balancer and reads the stamped clock every 250 ms, {out['seconds_per_run']} s per run after a 10 s settle. Ladder: {out['ladder']}. Goal: p50 ≤ 1.5 s for SRT and WHIP. p50 and p90: median of the runs (lowest–highest).",
        "",
        "| protocol | publisher | p50 s | p90 s | max s | longest stall s | samples | failed runs | goal |",
        "|---|---|---|---|---|---|---|---|---|",
        *rows,
        *notes("bench/ingest-latency-notes.md"),
    ]) + "\n"
    put(section, "## Glass-to-glass latency per ingest protocol", after="## Glass-to-glass latency",
        results="bench/out/ingest-latency.json")
    print(section)


def moq_mode(runs, put, notes, med):
    """TRANSPORTS="moq hls": each protocol's runs over MoQ and LL-HLS side by side."""
    import json, os
    transports = os.environ["TRANSPORTS"].split()
    names = {"moq": "MoQ (WebTransport to the relay, every object verified)", "hls": "LL-HLS (hls.js, through the load balancer)"}
    out = {"seconds_per_run": int(os.environ["SECS"]), "rounds": int(os.environ["ROUNDS"]),
           "ladder": os.environ["LADDER"], "part_s": float(os.environ["PART"]), "goal_p50_s": 0.5,
           "relay_build": os.environ.get("RELAY_BUILD", "debug"),
           "rows": {}, "runs": runs}
    for proto in os.environ["PROTOCOLS"].split():
        for transport in transports:
            mine = [r for r in runs if r["protocol"] == proto and r.get("transport") == transport]
            g = [r["glass_to_glass_s"] for r in mine if r["glass_to_glass_s"]]
            p50s, p90s = [x["p50"] for x in g], [x["p90"] for x in g]
            stalls = [r["longest_stall_s"] for r in mine if r["longest_stall_s"] is not None]
            out["rows"][f"{proto}/{transport}"] = {
                "protocol": proto, "transport": transport,
                "p50_s": {"median": med(p50s), "min": min(p50s, default=None), "max": max(p50s, default=None)},
                "p90_s": {"median": med(p90s), "min": min(p90s, default=None), "max": max(p90s, default=None)},
                "max_s": max((x["max"] for x in g), default=None),
                "longest_stall_s": max(stalls, default=None),
                "runs_with_a_stall": sum(1 for x in stalls if x >= 0.5),
                "failed_runs": sum(1 for r in mine if r.get("failed")),
                "refused": sum(((r.get("player") or {}).get("refused") or 0) for r in mine),
                "stamped_samples": sum(r["stamped_samples"] for r in mine),
            }
    json.dump(out, open("bench/out/moq-latency.json", "w"), indent=1)
    f = lambda v: "—" if v is None else f"{v:.2f}"
    rows = []
    for p in out["rows"].values():
        goal = "—" if p["transport"] != "moq" else ("met" if p["p50_s"]["median"] is not None and p["p50_s"]["median"] <= 0.5 and p["runs_with_a_stall"] == 0 and p["failed_runs"] == 0 else "not met")
        rows.append(f"| {p['protocol'].upper()} | {names.get(p['transport'], p['transport'])} | {f(p['p50_s']['median'])} ({f(p['p50_s']['min'])}–{f(p['p50_s']['max'])}) | {f(p['p90_s']['median'])} ({f(p['p90_s']['min'])}–{f(p['p90_s']['max'])}) | {f(p['max_s'])} | {f(p['longest_stall_s'])} | {p['runs_with_a_stall']} | {p['refused']} | {p['stamped_samples']} | {p['failed_runs']} | {goal} |")
    heading = "## Glass-to-glass over Media over QUIC and LL-HLS"
    section = "\n".join([
        heading,
        "",
        f"`TRANSPORTS=\"{' '.join(transports)}\" PROTOCOLS=\"{os.environ['PROTOCOLS']}\" PART={out['part_s']} bench/ingest-latency.sh {out['seconds_per_run']} {out['rounds']}`: `sealcast source` (720p30, x264 `--low-latency`, GOP 2 s, AAC, the clock stamped into every frame) published into one `sealcast up` cluster (2 edges, `--moq-run-relay`: moq-relay 0.17.10, a {out['relay_build']} build, run by `up`), a publish per run, {out['rounds']} rounds with the transports interleaved; Chromium plays each publish with the page forced onto one path (`?transport=moq` or `?transport=hls`) and reads the stamped clock every 250 ms, {out['seconds_per_run']} s per run after a 10 s settle. Parts (and MoQ objects) of {out['part_s']} s; ladder: {out['ladder']}. Goal over MoQ: p50 ≤ 0.5 s with no stall (a stall: media time standing still ≥ 0.5 s). p50 and p90: median of the runs (lowest–highest).",
        "",
        "| publish | played over | p50 s | p90 s | max s | longest stall s | runs with a stall | refused | samples | failed runs | goal |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        *rows,
        *notes("bench/moq-latency-notes.md"),
    ]) + "\n"
    put(section, heading, after="## Glass-to-glass latency per ingest protocol", results="bench/out/moq-latency.json")
    print(section)


if __name__ == "__main__":
    main(sys.argv)
