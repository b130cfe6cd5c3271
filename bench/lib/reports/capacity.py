"""The Python of bench/capacity.sh (issue 46 item 4: report code out of the script's heredocs),
run by it from the repository's root as `python3 bench/lib/reports/capacity.py ARG...`.
"""
import sys


def main(argv):
    """bench/capacity.sh runs `capacity.py "$WORK/ramps" "$RESULTS" "$DOCS"` (environment: ELAPSED, GEN_BUSY, GROWTH, HAPROXY, HA_TLS, JOIN_SECS, LAG_LIMIT_MS, MAX_VIEWERS, NGINX, OURS_TLS, PARTS, RUNS, SEG_BYTES, START, STEP, STEP_SECS, TLS_GROWTH, TLS_MAX_VIEWERS, TLS_START, TLS_STEP, TTFB_MS)."""
    import datetime, glob, json, os, re, subprocess, sys
    sys.dont_write_bytecode = True; sys.path.insert(0, "bench"); from docsection import put; from lib.stats import median, spread, spread_text
    ramps_dir, results, docs = argv[1:4]
    E = os.environ
    runs = int(E["RUNS"]); lag_limit = float(E["LAG_LIMIT_MS"]); gen_busy = float(E["GEN_BUSY"])

    def version(cmd):
        r = subprocess.run(cmd, capture_output=True, text=True)
        return ((r.stdout or r.stderr).splitlines() or [""])[0].strip()

    def judge(report):
        """The count a ramp gives, and whether it is exact or only a lower bound (and why)."""
        steps = report["steps"]
        out = {"capacity": report["capacity"], "planned_max": report["planned"][-1] if report["planned"] else 0,
               "steps_run": len(steps)}
        last_ok = next((s for s in reversed(steps) if s["passed"]), None)
        if last_ok:
            out["at_capacity"] = {"server_cpu": last_ok["cpu"]["watched"], "generator_cpu": last_ok["cpu"]["own"],
                                  "cores_busy": last_ok["cpu"]["cores"], "issue_lag_p99_ms": last_ok["issue_lag_p99_ms"],
                                  "segment_ttfb_p99_ms": last_ok["kinds"].get("segment", {}).get("ttfb_p99_ms")}
        if not report["ended_on_failure"]:
            out.update(exact=False, limited_by="ramp ceiling (MAX_VIEWERS)")
            return out
        f = steps[-1]
        cores = f["cpu"]["cores"]
        gen_core = cores[1] if len(cores) > 1 else None
        server_core = cores[0] if cores else None
        out["failed_step"] = {"viewers": f["viewers"], "verdict": f["verdict"], "errors": f["errors"],
                              "segment_ttfb_p99_ms": f["kinds"].get("segment", {}).get("ttfb_p99_ms"),
                              "issue_lag_p99_ms": f["issue_lag_p99_ms"], "server_cpu": f["cpu"]["watched"],
                              "generator_cpu": f["cpu"]["own"], "cores_busy": cores}
        generator_short = f["issue_lag_p99_ms"] > lag_limit or (gen_core is not None and gen_core >= gen_busy)
        server_cpu = f["cpu"]["watched"] or 0
        # What else ran on the servers' core (another process of the machine, or the node while
        # nginx is measured... which is on core 1 then): a shared machine shows here.
        others = max(0.0, (server_core or 0) - server_cpu)
        out["failed_step"]["core0_others"] = others
        if generator_short:
            out.update(exact=False, limited_by="load generator")
        elif others > 0.15:
            out.update(exact=True, limited_by=f"server, sharing core 0 ({others:.0%} of it used by other processes)")
        elif (server_core or 0) >= 0.9 or server_cpu >= 0.9:
            out.update(exact=True, limited_by="server (CPU)")
        else:
            out.update(exact=True, limited_by="server (latency; its core was not saturated)")
        return out

    per = {}
    for path in sorted(glob.glob(os.path.join(ramps_dir, "*.json"))):
        system, run = os.path.basename(path)[:-5].rsplit("-", 1)
        report = json.load(open(path))
        entry = judge(report); entry["run"] = int(run); entry["ramp"] = report
        per.setdefault(system, []).append(entry)
    for xs in per.values():
        xs.sort(key=lambda e: e["run"])

    stat = lambda xs: spread(xs, count=True)

    pairs = []
    if "1" in E["PARTS"].split(): pairs.append(("node", "nginx", "plain HTTP/1.1"))
    if "2" in E["PARTS"].split(): pairs.append(("lb", "haproxy", "TLS + h2"))
    out = {"benchmark": "viewers per edge worker: live 360p viewers held with segment TTFB p99 < threshold and no failed request",
           "date": datetime.date.today().isoformat(), "runs": runs,
           "ramp": {"step_secs": float(E["STEP_SECS"]), "join_secs": float(E["JOIN_SECS"]), "ttfb_ms": float(E["TTFB_MS"]),
                    "plain": {"start": int(E["START"]), "step": int(E["STEP"]), "growth": float(E["GROWTH"]), "max": int(E["MAX_VIEWERS"])},
                    "tls": {"start": int(E["TLS_START"]), "step": int(E["TLS_STEP"]), "growth": float(E["TLS_GROWTH"]), "max": int(E["TLS_MAX_VIEWERS"])}},
           "generator_saturated_when": {"issue_lag_p99_ms_above": lag_limit, "core1_busy_at_least": gen_busy},
           "segment_bytes": int(E["SEG_BYTES"]), "elapsed_secs": int(E["ELAPSED"]),
           "tls": {"sealcast": E["OURS_TLS"], "haproxy": E["HA_TLS"]},
           "nginx": version([E["NGINX"], "-v"]), "haproxy": version([E["HAPROXY"], "-v"]),
           "systems": {}, "pairs": {}}
    for system, xs in per.items():
        out["systems"][system] = {
            "capacity": stat([x["capacity"] for x in xs]),
            "exact_runs": sum(1 for x in xs if x["exact"]),
            "limited_by": [x["limited_by"] for x in xs],
            "runs": [{k: v for k, v in x.items() if k != "ramp"} for x in xs],
        }
    for ours, peer, proto in pairs:
        O = {x["run"]: x for x in per.get(ours, [])}; P = {x["run"]: x for x in per.get(peer, [])}
        both = [r for r in sorted(set(O) & set(P)) if O[r]["exact"] and P[r]["exact"] and P[r]["capacity"]]
        pe = [P[r] for r in sorted(P)]
        aa = [pe[i]["capacity"] / pe[i + 1]["capacity"] for i in range(len(pe) - 1)
              if pe[i]["exact"] and pe[i + 1]["exact"] and pe[i + 1]["capacity"]]
        out["pairs"][f"{ours}/{peer}"] = {"protocol": proto,
            "ratio_ours_over_peer": stat([O[r]["capacity"] / P[r]["capacity"] for r in both]),
            "runs_with_both_exact": len(both),
            "noise_floor_peer_aa": stat(aa)}
    out["raw"] = {s: [x["ramp"] for x in xs] for s, xs in per.items()}
    json.dump(out, open(results, "w"), indent=2)

    def count(system):
        xs = per.get(system, [])
        if not xs: return "-"
        caps = [x["capacity"] for x in xs]
        med = median(caps)
        lower = [x for x in xs if not x["exact"]]
        s = f"{med:,.0f} ({min(caps):,}–{max(caps):,})"
        if lower:
            why = sorted({x["limited_by"] for x in lower})
            s = ("≥ " if len(lower) == len(xs) else "") + s + f"; {len(lower)} of {len(xs)} runs a lower bound ({', '.join(why)})"
        return s
    rng = spread_text
    names = {"node": "sealcast node", "nginx": "nginx", "lb": "sealcast lb (+ node)", "haproxy": "HAProxy (+ node)"}
    ngx = out["nginx"].replace("nginx version: ", "")
    m = re.search(r"version (\S+)", out["haproxy"]); ha = f"HAProxy {m.group(1)}" if m else "HAProxy"
    rp, rt = out["ramp"]["plain"], out["ramp"]["tls"]
    lines = ["## Viewers per edge worker (bench/capacity.sh)", "",
        f"Live viewers of one stream's 360p rung (the publisher's 640x360 ~730 kb/s H.264 passed through, CMAF, 2 s segments "
        f"of {out['segment_bytes'] // 1024} KiB, plain HLS) that one worker holds while the segments' time to first byte "
        f"(response headers, from the time each request was due) stays at p99 < {out['ramp']['ttfb_ms']:.0f} ms with no failed request. "
        f"`sealcast-viewers` on core 1 (one thread) ramps hls.js-like viewers (master, media playlist every target duration open loop, "
        f"init segment once, every new segment at once from the live edge; each its own client and keep-alive connection): "
        f"{rp['start']:,} first, then +{rp['step']:,} or ×{rp['growth']} (whichever adds more) every {out['ramp']['step_secs']:.0f} s, "
        f"up to {rp['max']:,} (TLS: {rt['start']:,}, +{rt['step']:,} or ×{rt['growth']}, up to {rt['max']:,}); a step's new viewers join "
        f"over its first {out['ramp']['join_secs']:.0f} s and it is judged on the requests due in it. The count is the last step that passed. "
        f"Servers on core 0: a `sealcast broadcast` node (1 tokio worker) vs {ngx} (1 worker, `sendfile on`, `access_log off`) serving a mirror "
        f"of the node's live files on tmpfs (playlist polled every 100 ms, segments first, written by rename), over keep-alive HTTP/1.1; "
        f"`sealcast lb` (1 tokio worker) vs {ha} (`nbthread 1`) over TLS + h2 in front of the same node, which shares their core "
        f"(TLS: ours {out['tls']['sealcast'] or '-'}, HAProxy {out['tls']['haproxy'] or '-'}). "
        f"Ingest, publisher, broker and mirror on core 1 with the load generator. {runs} interleaved runs, {out['date']}.", "",
        "| pair | sealcast viewers, median (min–max) | peer viewers, median (min–max) | ratio ours/peer (median, min–max) | A/A peer |",
        "|---|---|---|---|---|"]
    for ours, peer, proto in pairs:
        p = out["pairs"][f"{ours}/{peer}"]
        ratio = rng(p["ratio_ours_over_peer"])
        if p["runs_with_both_exact"] < runs:
            ratio += f" over {p['runs_with_both_exact']} of {runs} runs"
        lines.append(f"| {names[ours]} vs {names[peer]}, {proto} | {count(ours)} | {count(peer)} | {ratio} | {rng(p['noise_floor_peer_aa'])} |")
    from collections import Counter
    lines += ["", "Why the ramps stopped: " + "; ".join(
        f"{names[sy]}: " + ", ".join(f"{why} ×{n}" for why, n in Counter(x["limited_by"] for x in xs).most_common())
        for sy, xs in per.items()) + "."]
    lines += ["", "At the last step that passed (median over runs): " + "; ".join(
        f"{names[s]} CPU {median([x['at_capacity']['server_cpu'] or 0 for x in xs if 'at_capacity' in x] or [0]):.2f}, "
        f"generator {median([x['at_capacity']['generator_cpu'] or 0 for x in xs if 'at_capacity' in x] or [0]):.2f}"
        for s, xs in per.items()) + " (CPU-seconds per second; server = the processes under test, for the load balancers with the node)."]
    lines += ["", f"A count is a lower bound (≥) when the step that failed shows the load generator short of CPU (it issued requests more than "
              f"{lag_limit:.0f} ms late at p99, or core 1 was ≥ {gen_busy:.0%} busy): the TTFB it measured is then its own delay as much as "
              "the server's; likewise when the ramp reached its last step. On this 2-core machine the load generator shares core 1 with the "
              "live source, ingest and mirror. Why each ramp stopped is in the JSON (`systems.*.runs[].limited_by`, `failed_step`). "
              "The node closes connections beyond 10,000 (its default cap), which bounds a plain-HTTP ramp too. "
              f"Aim (brief): ≥ 1.0× the peer. Run it with `bench/capacity.sh [RUNS]` (default 5; ramp settings by environment, see the script); "
              f"raw numbers in `bench/out/capacity.json`. This run took {out['elapsed_secs'] // 60} min.", ""]
    section = "\n".join(lines)
    if docs:
        put(section, "## Viewers per edge worker", docs, results=results)
    print(section)


if __name__ == "__main__":
    main(sys.argv)
