"""The Python of bench/llhls-common.sh (issue 46 item 4: report code out of the script's heredocs),
run by it from the repository's root as `python3 bench/lib/reports/llhls_common.py ARG...`.
"""
import sys


def main(argv):
    """bench/llhls-common.sh runs `llhls_common.py "$WORK/ramps" "$RESULTS" "$DOCS"` (environment: CORES, ELAPSED, GEN_BUSY, HAPROXY, HEADING, LAG_LIMIT_MS, NGINX, PART_BYTES, PART_TARGET, PEER_TLS, ROW, RUNS, SERVER_TLS, SYSTEMS)."""
    import datetime, glob, json, os, re, subprocess, sys
    sys.dont_write_bytecode = True; sys.path.insert(0, "bench"); from docsection import put, notes; from lib.stats import median, spread as spread_of, spread_text
    ramps_dir, results, docs = argv[1:4]
    E = os.environ
    row, runs, cores = E["ROW"], int(E["RUNS"]), int(E["CORES"])
    lag_limit, gen_busy = float(E["LAG_LIMIT_MS"]), float(E["GEN_BUSY"])
    systems = E["SYSTEMS"].split()
    peer = {"node": "nginx", "lb": "haproxy"}[row]
    names = {"node": f"sealcast node, default workers ({cores})", "node-1w": "sealcast node, 1 worker",
             "nginx": "nginx, 1 worker (polled)", "lb": f"sealcast lb + node, default workers ({cores} each)",
             "lb-1w": "sealcast lb 1 worker + node", "haproxy": "HAProxy nbthread 1 + node"}

    def first_line(cmd):
        r = subprocess.run(cmd, capture_output=True, text=True)
        return ((r.stdout or r.stderr).splitlines() or [""])[0].strip()

    def verdict_of(report):
        """A ramp's count, and whether it is the server's (exact) or a lower bound, and why."""
        steps = report["steps"]
        passed = [s for s in steps if s["passed"]]
        got = {"capacity": report["capacity"], "steps_run": len(steps)}
        if passed:
            s, ll = passed[-1], passed[-1].get("ll") or {}
            cpu = s["cpu"]["watched"] or 0
            per_viewer = {k: v / s["viewers"] for k, v in (ll.get("requests_per_sec") or {}).items()}
            got["at_capacity"] = {
                "viewers": s["viewers"], "server_cpu": cpu, "generator_cpu": s["cpu"]["own"],
                "viewers_per_cpu": s["viewers"] / cpu if cpu > 0 else None,
                "part_ttfb_p99_ms": (ll.get("part_ttfb") or {}).get("p99_ms"),
                "reload_wait_p50_ms": (ll.get("reload_wait") or {}).get("p50_ms"),
                "latency_p50_ms": (ll.get("latency") or {}).get("p50_ms"),
                "latency_p99_ms": (ll.get("latency") or {}).get("p99_ms"),
                "requests_per_viewer_sec": per_viewer}
        viewers = report.get("per_viewer") or []
        lat = [v["latency_p50_ms"] for v in viewers if v.get("latency_p50_ms") is not None]
        got["viewers_seen"] = {"viewers": len(viewers), "stalled": sum(1 for v in viewers if v["stalls"]),
                               "failed": sum(1 for v in viewers if v["failed"]),
                               "latency_p50_ms_median": median(lat)}
        if not report["ended_on_failure"]:
            got.update(exact=False, limited_by="ramp ceiling (MAX_VIEWERS)")
            return got
        f = steps[-1]
        cores_busy = f["cpu"]["cores"]
        got["failed_step"] = {"viewers": f["viewers"], "verdict": f["verdict"], "errors": f["errors"],
                              "ll": f.get("ll"), "issue_lag_p99_ms": f["issue_lag_p99_ms"],
                              "server_cpu": f["cpu"]["watched"], "generator_cpu": f["cpu"]["own"], "cores_busy": cores_busy}
        if f["issue_lag_p99_ms"] > lag_limit or (len(cores_busy) > 1 and cores_busy[1] >= gen_busy):
            got.update(exact=False, limited_by="load generator")
        elif (f["cpu"]["watched"] or 0) >= 0.9 or (cores_busy and cores_busy[0] >= 0.9):
            got.update(exact=True, limited_by=f"server CPU ({f['verdict']})")
        else:
            got.update(exact=True, limited_by=f"server latency, core 0 not saturated ({f['verdict']})")
        return got

    per = {}
    for path in sorted(glob.glob(os.path.join(ramps_dir, "*.json"))):
        system, run = os.path.basename(path)[:-5].rsplit("-", 1)
        entry = verdict_of(json.load(open(path)))
        entry["run"] = int(run)
        counted = path[:-5] + ".counted"
        if os.path.exists(counted) and open(counted).read().strip():
            entry["node_counted"] = {"counted": int(float(open(counted).read())),
                                     "viewers": len(json.load(open(path)).get("per_viewer") or [])}
        # Each viewer's own summary stays out of the results (megabytes); viewers_seen sums it up.
        entry["ramp"] = {k: v for k, v in json.load(open(path)).items() if k != "per_viewer"}
        per.setdefault(system, []).append(entry)
    for xs in per.values():
        xs.sort(key=lambda e: e["run"])

    spread = lambda xs: spread_of(xs, count=True)

    out = {"benchmark": f"LL-HLS viewers ({row}): held with part TTFB p99 < threshold, no stall, no failed request",
           "date": datetime.date.today().isoformat(), "runs": runs, "cores": cores, "systems_order": systems,
           "ramp": {k.lower(): E[k] for k in ("STEP_SECS", "JOIN_SECS", "TTFB_MS", "START", "STEP", "GROWTH", "MAX_VIEWERS", "ARRIVAL", "SOURCES")},
           "part_target": float(E["PART_TARGET"]), "part_bytes": int(E["PART_BYTES"]), "elapsed_secs": int(E["ELAPSED"]),
           "generator_saturated_when": {"issue_lag_p99_ms_above": lag_limit, "core1_busy_at_least": gen_busy},
           "tls": {"sealcast": E["SERVER_TLS"], "haproxy": E["PEER_TLS"]},
           "nginx": first_line([E["NGINX"], "-v"]), "haproxy": first_line([E["HAPROXY"], "-v"]),
           "systems": {}, "pairs": {}}
    for system, xs in per.items():
        out["systems"][system] = {"capacity": spread([x["capacity"] for x in xs]),
                                  "exact_runs": sum(1 for x in xs if x["exact"]),
                                  "runs": [{k: v for k, v in x.items() if k != "ramp"} for x in xs]}
    def equal_audience(ours, theirs):
        """Per CPU-second, ours over the peer's, at the largest step both ramps of a run passed."""
        def passed(x):
            return {s["viewers"]: s["cpu"]["watched"] for s in x["ramp"]["steps"]
                    if s["passed"] and (s["cpu"]["watched"] or 0) > 0}
        a, b = passed(ours), passed(theirs)
        common = sorted(set(a) & set(b))
        if not common:
            return None
        v = common[-1]
        return {"viewers": v, "ratio": b[v] / a[v]}

    P = {x["run"]: x for x in per.get(peer, [])}
    for ours in (s for s in systems if s != peer):
        O = {x["run"]: x for x in per.get(ours, [])}
        both = [r for r in sorted(set(O) & set(P)) if O[r]["exact"] and P[r]["exact"] and P[r]["capacity"]]
        # Per CPU-second at each ramp's last passed step, whether or not its count is exact: what
        # a server spends per viewer does not depend on why the ramp stopped.
        per_cpu = [O[r]["at_capacity"]["viewers_per_cpu"] / P[r]["at_capacity"]["viewers_per_cpu"]
                   for r in sorted(set(O) & set(P))
                   if "at_capacity" in O[r] and "at_capacity" in P[r]
                   and O[r]["at_capacity"]["viewers_per_cpu"] and P[r]["at_capacity"]["viewers_per_cpu"]]
        # The same per run at the largest audience both ramps passed: like for like, where the
        # ratio above also compares a ramp that went further (its fixed costs shared by more viewers).
        at_equal = [x for x in (equal_audience(O[r], P[r]) for r in sorted(set(O) & set(P))) if x]
        out["pairs"][f"{ours}/{peer}"] = {"ratio_viewers": spread([O[r]["capacity"] / P[r]["capacity"] for r in both]),
                                          "ratio_viewers_per_cpu": spread(per_cpu), "runs_with_both_exact": len(both),
                                          "ratio_per_cpu_at_equal_audience": spread([x["ratio"] for x in at_equal]),
                                          "equal_audiences": [x["viewers"] for x in at_equal]}
    pe = [P[r] for r in sorted(P)]
    out["noise_floor_peer_aa"] = spread([pe[i]["capacity"] / pe[i + 1]["capacity"] for i in range(len(pe) - 1)
                                         if pe[i]["exact"] and pe[i + 1]["exact"] and pe[i + 1]["capacity"]])
    pc = [x["at_capacity"]["viewers_per_cpu"] if "at_capacity" in x else None for x in pe]
    out["noise_floor_peer_aa_per_cpu"] = spread([pc[i] / pc[i + 1] for i in range(len(pc) - 1) if pc[i] and pc[i + 1]])
    out["raw"] = {s: [x["ramp"] for x in xs] for s, xs in per.items()}
    json.dump(out, open(results, "w"), indent=2)

    def med(system, key, fmt):
        m = median([x["at_capacity"].get(key) for x in per.get(system, []) if "at_capacity" in x])
        return "-" if m is None else fmt.format(m)
    def count(system):
        xs = per.get(system, [])
        if not xs:
            return "-"
        caps = [x["capacity"] for x in xs]
        text = f"{median(caps):,.0f} ({min(caps):,}–{max(caps):,})"
        lower = [x for x in xs if not x["exact"]]
        if lower:
            why = ", ".join(sorted({x["limited_by"] for x in lower}))
            text = ("≥ " if len(lower) == len(xs) else "") + text + f"; {len(lower)} of {len(xs)} a lower bound ({why})"
        return text
    def rps(system):
        xs = [x["at_capacity"]["requests_per_viewer_sec"] for x in per.get(system, []) if "at_capacity" in x]
        if not xs:
            return "-"
        kinds = sorted({k for x in xs for k in x})
        return ", ".join(f"{k} {median([x.get(k, 0) for x in xs]):.2f}" for k in kinds)
    rng = spread_text

    ngx = out["nginx"].replace("nginx version: ", "")
    m = re.search(r"version (\S+)", out["haproxy"]); ha = f"HAProxy {m.group(1)}" if m else "HAProxy"
    r = out["ramp"]
    if row == "node":
        setup = (f"Servers on core 0, one at a time: `sealcast broadcast` at its default worker threads ({cores}, one per core) and "
                 f"with one (`TOKIO_WORKER_THREADS=1`), both fed by the same ingest, against {ngx} (1 worker, `sendfile on`, "
                 "`access_log off`) serving the same files on tmpfs: a mirror on core 1 follows the node with blocking reloads and "
                 "writes each new part, segment and init segment, then the node's playlist, by rename (at most a few ms behind "
                 "the node). nginx cannot hold a request, so its viewers poll the playlist every part target (no hints): the "
                 "LL-HLS nginx can offer. Plain HTTP/1.1 keep-alive for all (a viewer keeps up to 3 connections).")
    else:
        setup = (f"`sealcast lb` at its default worker threads ({cores}) and with one, against {ha} (`nbthread 1`), over TLS 1.3 "
                 f"with HTTP/2 by ALPN (ours {out['tls']['sealcast'] or '-'}, HAProxy {out['tls']['haproxy'] or '-'}), each in "
                 f"front of the same `sealcast broadcast` node (default workers), which shares core 0 with the proxy under test; "
                 "the sticky cookie kept per viewer; one HTTP/2 connection per viewer.")
    lines = [E["HEADING"], "",
        f"LL-HLS viewers of one stream's 360p rung (the publisher's 640x360 ~730 kb/s H.264 passed through, CMAF, 2 s segments, "
        f"parts of {out['part_target']} s, {out['part_bytes'] // 1024} KiB each) held while no viewer stalls, no request fails and "
        f"the parts' time to first byte stays at p99 < {float(r['ttfb_ms']):.0f} ms (a hinted part's from when it existed, "
        "i.e. the first answer any viewer had for it). `sealcast-viewers --mode ll` on core 1 (one thread) behaves like hls.js "
        "in low-latency mode: blocking reloads with `_HLS_msn`/`_HLS_part` and delta updates, the preload-hinted part asked "
        "for as it is hinted, every listed part from PART-HOLD-BACK behind the edge, a buffer model for stalls; viewers "
        f"arrive open loop ({r['arrival']}) over the first {r['join_secs']} s of each {r['step_secs']} s step, {int(r['start']):,} "
        f"first, then +{int(r['step']):,} or ×{r['growth']}, up to {int(r['max_viewers']):,}, "
        + (f"each from its own loopback address (of {int(r['sources']):,}). " if int(r.get('sources') or 0) > 0
           else "all from 127.0.0.1. ") + setup +
        f" {runs} run{'s' if runs > 1 else ''}, the order rotated each run, {out['date']}.", "",
        "| system | viewers, median (min–max) | ratio to the peer (median, min–max) | viewers per server CPU-second | "
        "at capacity: part TTFB p99 / latency behind the edge p50, p99 / reload wait p50 (ms) | requests per viewer-second |",
        "|---|---|---|---|---|---|"]
    for s in systems:
        pair = out["pairs"].get(f"{s}/{peer}")
        ratio = "—" if pair is None else rng(pair["ratio_viewers"]) + (
            f" over {pair['runs_with_both_exact']} of {runs} runs" if pair["runs_with_both_exact"] < runs else "")
        timing = " / ".join(med(s, k, "{:.0f}") for k in ("part_ttfb_p99_ms", "latency_p50_ms", "latency_p99_ms", "reload_wait_p50_ms"))
        lines.append(f"| {names[s]} | {count(s)} | {ratio} | {med(s, 'viewers_per_cpu', '{:,.0f}')} | {timing} | {rps(s)} |")
    per_cpu = "; ".join(f"{names[s]} {rng(p['ratio_viewers_per_cpu'])}" for s in systems
                        for p in [out["pairs"].get(f"{s}/{peer}")] if p)
    equal_text = "; ".join(f"{names[s]} {rng(p['ratio_per_cpu_at_equal_audience'])} at "
                        + ", ".join(f"{v:,}" for v in p["equal_audiences"]) + " viewers"
                        for s in systems for p in [out["pairs"].get(f"{s}/{peer}")] if p)
    lines += ["", f"Viewers per server CPU-second relative to the peer, per run at each ramp's last passed step (median, min–max): "
              f"{per_cpu or '-'}; at the largest audience both ramps of a run passed (like for like: "
              f"{equal_text or '-'}); the peer against itself in consecutive runs (A/A): {rng(out['noise_floor_peer_aa_per_cpu'])} "
              f"per CPU-second, {rng(out['noise_floor_peer_aa'])} in exact counts."]
    counts = [(s, x["node_counted"]) for s in systems for x in per.get(s, []) if "node_counted" in x]
    if counts:
        lines += ["", "Viewers the node counted (`sealcast_viewers`, by client address over its last 10 s) at the end of each "
                  "ramp through ours, against the viewers the ramp started (those of the step judged last, and those of the next "
                  "step that had joined by then): " + "; ".join(
                      f"{names[s]} {c['counted']:,} of {c['viewers']:,}" for s, c in counts) + "."]
    lines += ["", "Why the ramps stopped: " + "; ".join(
        f"{names[s]}: " + ", ".join(sorted({x['limited_by'] for x in per.get(s, [])})) for s in systems if s in per) + "."]
    goal = ("a node ≥ nginx" if row == "node" else "through the load balancer ≥ 1.2 × HAProxy's viewers per core")
    lines += ["", f"A count is a lower bound (≥) when the step that failed shows the load generator short of CPU (requests issued "
              f"more than {lag_limit:.0f} ms late at p99, or core 1 ≥ {gen_busy:.0%} busy), or when the ramp reached its last step. "
              f"Goal (issue 33): {goal}. Run it with `bench/llhls-{row}.sh [RUNS]` (default 5; settings by environment, see "
              f"bench/llhls-common.sh); raw numbers in `bench/out/llhls-{row}.json`. This run took {out['elapsed_secs'] // 60} min."]
    lines += [*notes(f"bench/llhls-{row}-notes.md"), ""]
    section = "\n".join(lines)
    if docs:
        # After bench/capacity.sh's section, the node's row before the load balancer's.
        after = "## Viewers per edge worker"
        if row == "lb" and os.path.exists(docs) and "## LL-HLS viewers one node holds" in open(docs).read():
            after = "## LL-HLS viewers one node holds"
        put(section, E["HEADING"], docs, after=after, results=results)
    print(section)


if __name__ == "__main__":
    main(sys.argv)
