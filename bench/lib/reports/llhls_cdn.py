"""The Python of bench/llhls-cdn.sh (issue 46 item 4: report code out of the script's heredocs),
run by it from the repository's root as `python3 bench/lib/reports/llhls_cdn.py COMMAND ARG...`.
"""
import sys


def step(argv):
    """bench/llhls-cdn.sh runs `llhls_cdn.py step "$base.json"`."""
    import json
    s = json.load(open(argv[1]))["steps"][0]
    ll, cpu = s.get("ll") or {}, s["cpu"]
    g = lambda k, f: (ll.get(k) or {}).get(f, 0) or 0
    print(f"  {s['viewers']:>6} viewers: latency p50 {g('latency', 'p50_ms'):.0f} ms, part TTFB p50/p99 "
          f"{g('part_ttfb', 'p50_ms'):.0f}/{g('part_ttfb', 'p99_ms'):.0f} ms, stalls {ll.get('stalls', 0)}, errors {s['errors']}, "
          f"issue lag p99 {s['issue_lag_p99_ms']:.1f} ms, generator CPU {cpu['own'] or 0:.2f}, servers CPU {cpu['watched'] or 0:.2f}")


def parts_per_second(argv):
    """bench/llhls-cdn.sh runs `llhls_cdn.py parts-per-second "$NODE_URL"`."""
    import re, urllib.request
    text = urllib.request.urlopen(argv[1] + "/live/ll/360p/index.m3u8", timeout=5).read().decode()
    d = [float(x) for x in re.findall(r'#EXT-X-PART:DURATION=([0-9.]+)', text)]
    print(f"{len(d) / sum(d):.4f}" if d else "0")


def report(argv):
    """bench/llhls-cdn.sh runs `llhls_cdn.py report "$WORK/runs" "$RESULTS" "$DOCS"` (environment: CORES, ELAPSED, GEN_BUSY, HEADING, JOIN_SECS, LAG_LIMIT_MS, PARTS_PER_SEC, PART_TARGET, RUNS, STEP_SECS, SYSTEMS, VARNISH_VERSION)."""
    import datetime, json, os, sys
    sys.dont_write_bytecode = True; sys.path.insert(0, "bench"); from docsection import put, notes; from lib.stats import spread as spread_of, spread_text
    runs_dir, results, docs = argv[1:4]
    E = os.environ
    runs, step, join = int(E["RUNS"]), float(E["STEP_SECS"]), float(E["JOIN_SECS"])
    lag_limit, gen_busy, pps = float(E["LAG_LIMIT_MS"]), float(E["GEN_BUSY"]), float(E["PARTS_PER_SEC"])
    systems = E["SYSTEMS"].split()

    def window_rates(samples, t0, t1):
        """Per-second rates of each sampled counter between t0 and t1 (the first and last
        samples inside the window)."""
        rows = [list(map(float, l.split())) for l in open(samples) if len(l.split()) == 5]
        inside = [r for r in rows if t0 <= r[0] <= t1]
        if len(inside) < 2:
            return None
        a, b = inside[0], inside[-1]
        dt = b[0] - a[0]
        return {k: (b[i] - a[i]) / dt for i, k in enumerate(["t", "origin", "backend", "hits", "misses"]) if i}

    def one(system, run):
        base = os.path.join(runs_dir, f"{system}-{run}")
        report = json.load(open(base + ".json"))
        s = report["steps"][0]
        ll = s.get("ll") or {}
        start = float(open(base + ".times").read().split()[0])
        rates = window_rates(base + ".samples", start + join + 1, start + step)
        cores = s["cpu"]["cores"]
        limited = s["issue_lag_p99_ms"] > lag_limit or (len(cores) > 1 and cores[1] >= gen_busy)
        viewers = report.get("per_viewer") or []
        g = lambda k, f: (ll.get(k) or {}).get(f)
        return {"run": run, "viewers": s["viewers"], "origin_rps": rates and rates["origin"],
                "origin_per_part": rates and pps and rates["origin"] / pps,
                "varnish": rates and {k: rates[k] for k in ("backend", "hits", "misses")},
                "client_rps": sum((ll.get("requests_per_sec") or {}).values()),
                "requests_per_sec": ll.get("requests_per_sec"),
                "latency_p50_ms": g("latency", "p50_ms"), "latency_p99_ms": g("latency", "p99_ms"),
                "part_ttfb_p50_ms": g("part_ttfb", "p50_ms"), "part_ttfb_p99_ms": g("part_ttfb", "p99_ms"),
                "reload_wait_p50_ms": g("reload_wait", "p50_ms"), "stalls": ll.get("stalls", 0), "errors": s["errors"],
                "viewers_stalled": sum(1 for v in viewers if v.get("stalls")),
                "issue_lag_p99_ms": s["issue_lag_p99_ms"], "generator_cpu": s["cpu"]["own"],
                "servers_cpu": s["cpu"]["watched"], "cores_busy": cores, "client_limited": limited}

    per = {sy: [one(sy, r) for r in range(1, runs + 1) if os.path.exists(os.path.join(runs_dir, f"{sy}-{r}.json"))]
           for sy in systems}
    spread = lambda xs: spread_of(xs, count=True)
    added = []
    for r in range(1, runs + 1):
        a = {x["run"]: x for x in per.get("lb-100", [])}.get(r)
        b = {x["run"]: x for x in per.get("cdn-100", [])}.get(r)
        if a and b and a["latency_p50_ms"] is not None and b["latency_p50_ms"] is not None:
            added.append(b["latency_p50_ms"] - a["latency_p50_ms"])
    out = {"benchmark": "LL-HLS viewers through Varnish in front of the load balancer: origin requests and added latency",
           "date": datetime.date.today().isoformat(), "runs": runs, "cores": int(E["CORES"]), "systems": systems,
           "step_secs": step, "join_secs": join, "part_target": float(E["PART_TARGET"]), "parts_per_sec": pps,
           "varnish": E["VARNISH_VERSION"], "elapsed_secs": int(E["ELAPSED"]),
           "generator_saturated_when": {"issue_lag_p99_ms_above": lag_limit, "core1_busy_at_least": gen_busy},
           "added_latency_p50_ms": spread(added),
           "summary": {sy: {k: spread([x[k] for x in xs]) for k in
                            ("origin_rps", "origin_per_part", "client_rps", "latency_p50_ms", "latency_p99_ms",
                             "part_ttfb_p50_ms", "part_ttfb_p99_ms", "issue_lag_p99_ms", "generator_cpu", "servers_cpu")}
                       for sy, xs in per.items()},
           "per_run": per}
    json.dump(out, open(results, "w"), indent=2)

    rng = lambda s, f="{:,.1f}": spread_text(s, f)
    def label(sy):
        kind, n = sy.split("-")
        return f"{int(n):,} viewers, " + ("straight to the load balancer (TLS + h2)" if kind == "lb" else "through Varnish (h2c)")
    lines = [E["HEADING"], "",
        f"LL-HLS viewers of one stream's 360p rung (the publisher's 640x360 ~730 kb/s H.264 passed through, CMAF, 2 s "
        f"segments, parts of {out['part_target']} s: {pps:.2f} parts/s) through {out['varnish'].split(' (')[0]} with "
        "`deploy/varnish/sealcast.vcl` in front of `sealcast lb` (its plain-HTTP origin listener) and one `sealcast broadcast` "
        "node, all three at their defaults on core 0. `sealcast-viewers --mode ll` on core 1 (one thread), like hls.js in "
        "low-latency mode: blocking reloads, the preload-hinted part asked for as it is hinted, delta updates. Each audience "
        f"for {step:.0f} s, arriving open loop (Poisson) over the first {join:.0f} s and measured after; {runs} runs, order "
        f"rotated, {out['date']}. Origin requests: the node's own counter (every route a viewer reaches), per second and per "
        "part published.", "",
        "| audience | origin requests/s | per part | client requests/s | latency behind the edge p50 / p99 (ms) | part TTFB p50 / p99 (ms) | stalls, errors | generator: issue lag p99 (ms), CPU |",
        "|---|---|---|---|---|---|---|---|"]
    for sy in systems:
        xs, S = per.get(sy, []), out["summary"].get(sy, {})
        if not xs:
            continue
        lim = sum(1 for x in xs if x["client_limited"])
        lim_text = f"; the client was the limit in {lim} of {len(xs)} runs" if lim else ""
        med = lambda k: "-" if S.get(k) is None else f"{S[k]['median']:,.0f}"
        lines.append(f"| {label(sy)} | {rng(S['origin_rps'])} | {rng(S['origin_per_part'], '{:.2f}')} | {rng(S['client_rps'], '{:,.0f}')} | "
                     f"{med('latency_p50_ms')} / {med('latency_p99_ms')} | {med('part_ttfb_p50_ms')} / {med('part_ttfb_p99_ms')} | "
                     f"{sum(x['stalls'] for x in xs)}, {sum(x['errors'] for x in xs)} | "
                     f"{rng(S['issue_lag_p99_ms'], '{:.0f}')}, {rng(S['generator_cpu'], '{:.2f}')}{lim_text} |")
    lines += ["", f"The latency the cache adds (latency behind the edge p50 through Varnish minus straight to the load balancer, "
              f"100 viewers each, same run; median, min–max): {rng(out['added_latency_p50_ms'], '{:,.0f}')} ms (goal ≤ 300 ms).",
              "", "A run's audience is more than this machine could generate when its generator issued requests more than "
              f"{lag_limit:.0f} ms late at p99 or core 1 was ≥ {gen_busy:.0%} busy: then the audience the cache served was smaller "
              "than the one asked for, and the row says so. Goal (issue 33): origin load independent of audience size behind a "
              "cache. Run it with `bench/llhls-cdn.sh [RUNS]` (default 5; settings by environment, see the script); raw numbers "
              f"in `bench/out/llhls-cdn.json`. This run took {out['elapsed_secs'] // 60} min."]
    lines += [*notes("bench/llhls-cdn-notes.md"), ""]
    section = "\n".join(lines)
    if docs:
        put(section, E["HEADING"], docs, after="## LL-HLS viewers through the load balancer", results=results)
    print(section)


COMMANDS = {"step": step, "parts-per-second": parts_per_second, "report": report}


def main(argv):
    """Runs COMMAND (argv[1]) with argv[1:] (the command in place of the program's name)."""
    COMMANDS[argv[1]](argv[1:])


if __name__ == "__main__":
    main(sys.argv)
