"""The Python of bench/edge.sh (issue 46 item 4: report code out of the script's heredocs),
run by it from the repository's root as `python3 bench/lib/reports/edge.py COMMAND ARG...`.
"""
import sys


def h2load(argv):
    """bench/edge.sh runs `edge.py h2load "$WORK/h2.out" "$WORK/h2.log"`."""
    import json, re
    text = open(argv[1]).read()
    m = re.search(r"finished in ([\d.]+)(m?s)", text)
    dur = float(m.group(1)) / (1000 if m and m.group(2) == "ms" else 1) if m else 0.0
    req = re.search(r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored", text)
    lat = []
    try:
        for line in open(argv[2]):
            parts = line.split()
            if len(parts) >= 3 and parts[1] == "200":
                lat.append(int(parts[2]) / 1000)
    except FileNotFoundError:
        pass
    lat.sort()
    pct = lambda p: lat[min(len(lat) - 1, int(p / 100 * len(lat)))] if lat else 0.0
    traffic = re.search(r"traffic: [\d.]+\w* \((\d+)\) total", text)
    print(json.dumps({"requests": int(req.group(3)) if req else 0, "duration_s": dur,
                      "errors": int(req.group(4)) + int(req.group(5)) if req else 0,
                      "bytes": int(traffic.group(1)) if traffic else 0,
                      "p50_ms": pct(50), "p99_ms": pct(99), "mean_ms": sum(lat) / len(lat) if lat else 0.0}))


def report(argv):
    """bench/edge.sh runs `edge.py report "$WORK/results.jsonl" "$RUNS" "$SECS" "$NSEG" "$((SEGBYTES / NSEG))" "$H2C_OURS" "$NGINX"`."""
    import json, os, sys, datetime, subprocess
    sys.dont_write_bytecode = True; sys.path.insert(0, "bench"); from docsection import notes, put; from lib.stats import spread
    path, runs, secs, nseg, segavg, h2c, nginx = argv[1:8]
    rows = [json.loads(l) for l in open(path) if l.strip()]
    stat = spread
    loads = {}
    for r in rows:
        l = r["load"]
        rps = l["requests"] / l["duration_s"] if l["duration_s"] else 0.0
        per_cpu = l["requests"] / r["cpu_s"] if r["cpu_s"] else 0.0
        d = loads.setdefault(f'{r["tool"]} {r["kind"]}', {}).setdefault(r["server"], [])
        d.append({"req_per_s": rps, "req_per_cpu_s": per_cpu, "cpu_s": r["cpu_s"], "cpu_share": r["cpu_s"] / l["duration_s"] if l["duration_s"] else 0,
                  "p50_ms": l["p50_ms"], "p99_ms": l["p99_ms"], "errors": l["errors"], "mb_per_s": l["bytes"] / l["duration_s"] / 1e6 if l["duration_s"] else 0})
    out = {"benchmark": "edge serving: one broadcast node vs nginx, same fixed window",
           "date": datetime.date.today().isoformat(), "runs": int(runs), "seconds_per_load": float(secs),
           "window": {"segments": int(nseg), "average_segment_bytes": int(segavg)},
           "h2c_prior_knowledge_on_node": h2c == "yes",
           "nginx": subprocess.run([nginx, "-v"], capture_output=True, text=True).stderr.strip(),
           "loads": {}}
    for name, by in loads.items():
        o, n = by.get("sealcast", []), by.get("nginx", [])
        k = min(len(o), len(n))
        entry = {s: {m: stat([x[m] for x in xs]) for m in ["req_per_s", "req_per_cpu_s", "cpu_share", "p50_ms", "p99_ms", "mb_per_s", "errors"]}
                 for s, xs in (("sealcast", o), ("nginx", n))}
        entry["ratio_ours_over_nginx"] = {
            "req_per_cpu_s": stat([o[i]["req_per_cpu_s"] / n[i]["req_per_cpu_s"] for i in range(k) if n[i]["req_per_cpu_s"]]),
            "req_per_s": stat([o[i]["req_per_s"] / n[i]["req_per_s"] for i in range(k) if n[i]["req_per_s"]]),
            "p99": stat([o[i]["p99_ms"] / n[i]["p99_ms"] for i in range(k) if n[i]["p99_ms"]]),
        }
        aa = [n[i]["req_per_cpu_s"] / n[i + 1]["req_per_cpu_s"] for i in range(len(n) - 1) if n[i + 1]["req_per_cpu_s"]]
        entry["noise_floor_nginx_aa"] = {"req_per_cpu_s": stat(aa or [1.0])}
        out["loads"][name] = entry
    os.makedirs("bench/out", exist_ok=True)
    json.dump(out, open("bench/out/edge.json", "w"), indent=2)

    f = lambda x, d=0: f"{x:,.{d}f}"
    lines = ["## Edge serving (bench/edge.sh)", "",
             f"One broadcast node (`sealcast up --broadcast 1`, 1 tokio worker) vs {out['nginx'].replace('nginx version: ', '')} "
             f"(1 worker, `sendfile on`, files on tmpfs) serving the same fixed window: master + 4 media playlists, "
             f"{nseg} segments of {int(segavg) // 1024} KiB on average. Servers on core 0, load generator on core 1; "
             f"wrk `-t1 -c64` HTTP/1.1 keep-alive, h2load `-t1 -c16 -m4` over h2c (prior knowledge); "
             f"{runs} interleaved runs of {secs} s per load, {out['date']}. Ratios are ours/nginx: > 1 is ahead for "
             f"requests per CPU-second, < 1 is ahead for p99.", "",
             "| load | sealcast req/s | sealcast req/CPU-s | sealcast p99 ms | nginx req/s | nginx req/CPU-s | nginx p99 ms | ratio req/CPU-s (median, min–max) | ratio p99 | A/A nginx |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, e in out["loads"].items():
        s, n, r = e["sealcast"], e["nginx"], e["ratio_ours_over_nginx"]
        rc = r["req_per_cpu_s"]
        lines.append(f"| {name} | {f(s['req_per_s']['median'])} | {f(s['req_per_cpu_s']['median'])} | {s['p99_ms']['median']:.2f} | "
                     f"{f(n['req_per_s']['median'])} | {f(n['req_per_cpu_s']['median'])} | {n['p99_ms']['median']:.2f} | "
                     f"{rc['median']:.2f} ({rc['min']:.2f}–{rc['max']:.2f}) | {r['p99']['median']:.2f} | {e['noise_floor_nginx_aa']['req_per_cpu_s']['median']:.2f} |")
    shares = "; ".join(f"{name} {e['sealcast']['cpu_share']['median']:.2f} / {e['nginx']['cpu_share']['median']:.2f}"
                       for name, e in out["loads"].items())
    lines += ["", f"Server CPU-s per wall-second (ours / nginx, median): {shares}. Well below 1.0 means the server did not "
              "get its core to itself (the machine is shared): raw req/s then mean little, the per-CPU-second ratio is the "
              "figure to read. The sealcast CPU is the whole `up` process (the node plus an idle ingest and MQTT broker); "
              "nginx's is master + worker. On loopback the receiver's softirq work may be charged to whichever process is "
              "running, so the byte-heavy segment figures carry more accounting noise than the playlist ones."]
    goal = {"playlists": 1.3, "segments": 1.5}
    verdicts = "; ".join(f"{name} {e['ratio_ours_over_nginx']['req_per_cpu_s']['median']:.2f} "
                         f"({'met' if e['ratio_ours_over_nginx']['req_per_cpu_s']['median'] >= goal[name.split()[1]] else 'NOT met'})"
                         for name, e in out["loads"].items())
    lines += ["", "Aim (brief): playlists ≥ 1.0× nginx req/CPU-s with p99 ≤ 1.1×, segments ≥ 0.9×. "
              f"Goal (issue 18): playlists ≥ 1.3×, segments ≥ 1.5×: {verdicts}."]
    lines += notes("bench/edge-notes.md")
    lines += ["", "Run it with `bench/edge.sh [RUNS [SECONDS]]` (default 3 runs of 4 s; `EDGE_PROFILE=DIR` adds a perf "
              "profile of each server under the wrk loads); raw numbers in `bench/out/edge.json`.", ""]
    section = "\n".join(lines)
    put(section, "## Edge serving", results="bench/out/edge.json")
    print(section)


COMMANDS = {"h2load": h2load, "report": report}


def main(argv):
    """Runs COMMAND (argv[1]) with argv[1:] (the command in place of the program's name)."""
    COMMANDS[argv[1]](argv[1:])


if __name__ == "__main__":
    main(sys.argv)
