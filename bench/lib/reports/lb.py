"""The Python of bench/lb.sh (issue 46 item 4: report code out of the script's heredocs),
run by it from the repository's root as `python3 bench/lib/reports/lb.py COMMAND ARG...`.
"""
import sys


def haproxy_health(argv):
    """bench/lb.sh runs `lb.py haproxy-health "$WORK/haproxy.sock" "$1"`."""
    import socket, sys
    for server in ("nodes/b1", "nodes/b2"):
        s = socket.socket(socket.AF_UNIX)
        s.connect(argv[1])
        s.sendall(f"{argv[2]} health {server}\n".encode())
        reply = s.makefile().read().strip()
        if reply:
            sys.exit(f"lb: HAProxy: {reply}")


def tls_check(argv):
    """bench/lb.sh runs `lb.py tls-check "$WORK/results.jsonl"`."""
    import json, sys
    seen = {r["server"]: r["h2load"]["protocol"] for r in map(json.loads, open(argv[1])) if r["server"] != "direct"}
    print("lb: negotiated: " + "; ".join(f"{k} {v}" for k, v in sorted(seen.items())), file=sys.stderr)
    sys.exit(len(set(seen.values())) != 1 or "" in seen.values())


def report(argv):
    """bench/lb.sh runs `lb.py report "$WORK/results.jsonl" "$WORK/lb.metrics" "$RESULTS" "$DOCS"` (environment: HAPROXY, NGINX)."""
    import datetime, json, os, re, subprocess, sys
    sys.dont_write_bytecode = True; sys.path.insert(0, "bench"); from docsection import notes, put; from lib.stats import spread, spread_text
    rows_path, metrics_path, results, docs = argv[1:5]
    rows = [json.loads(l) for l in open(rows_path) if l.strip()]
    env = lambda k: int(os.environ[k])
    conf = {"runs": env("RUNS"), "seconds_per_load": env("SECS"), "clients": env("CLIENTS"), "streams_per_client": env("STREAMS"),
            "paced_clients": env("LAT_CLIENTS"), "paced_rps_per_client": env("LAT_RPS"),
            "playlist_bytes": env("PLAYLIST_BYTES"), "segment_bytes": env("SEGMENT_BYTES")}
    stat = spread
    def version(cmd):
        r = subprocess.run(cmd, capture_output=True, text=True)
        return (r.stdout or r.stderr).splitlines()[0].strip()

    def derived(r):
        h = r["h2load"]; be = r["backend"]
        mb = h["bytes"] / 1e6
        return {"run": r["run"], "requests": h["requests"], "errors": h["failed"] + h["errored"] + h["timeout"],
                "req_per_s": h["requests"] / h["duration_s"] if h["duration_s"] else 0.0,
                "mb_per_s": mb / h["duration_s"] if h["duration_s"] else 0.0,
                "cpu_s": r["cpu_s"], "cpu_share": r["cpu_s"] / h["duration_s"] if h["duration_s"] else 0.0,
                "cpu_ms_per_1k_requests": 1e6 * r["cpu_s"] / h["requests"] if h["requests"] else None,
                "cpu_ms_per_mb": 1e3 * r["cpu_s"] / mb if mb else None,
                "p50_us": h["p50_us"], "p99_us": h["p99_us"], "p999_us": h["p999_us"],
                "backend_accepts": be["b1_accepts"] + be["b2_accepts"],
                "backend_requests": be["b1_requests"] + be["b2_requests"],
                "backend_split_b1": be["b1_requests"] / max(1, be["b1_requests"] + be["b2_requests"])}
    def pick(server, kind, mode):
        return [derived(r) for r in rows if r["server"] == server and r["kind"] == kind and r["mode"] == mode]
    def by_run(xs): return {x["run"]: x for x in xs}

    METRICS = ["req_per_s", "mb_per_s", "cpu_share", "cpu_ms_per_1k_requests", "cpu_ms_per_mb", "p50_us", "p99_us", "p999_us", "errors", "backend_split_b1"]
    out = {"benchmark": "load-balancer overhead: sealcast lb (Pingora) vs HAProxy, sticky cookie, TLS h2, 2 nginx backends",
           "date": datetime.date.today().isoformat(), **conf,
           "haproxy": version([os.environ["HAPROXY"], "-v"]), "h2load": version(["h2load", "--version"]),
           "nginx": version([os.environ["NGINX"], "-v"]),
           "protocol": {s: next((r["h2load"]["protocol"] for r in rows if r["server"] == s), "") for s in ["haproxy", "sealcast", "direct"]},
           "direct_baseline": "h2load --h1 (HTTP/1.1, no TLS) on the backends' own ports, same clients and rate",
           "saturating": {}, "latency": {}, "reuse": {}}
    for kind in ["playlist", "segment"]:
        ha, us = pick("haproxy", kind, "load"), pick("sealcast", kind, "load")
        e = {s: {m: stat([x[m] for x in xs]) for m in METRICS} for s, xs in (("haproxy", ha), ("sealcast", us))}
        H, U = by_run(ha), by_run(us)
        runs = sorted(set(H) & set(U))
        ratio = lambda m: stat([H[i][m] / U[i][m] for i in runs if H[i][m] and U[i][m]])
        e["ratio_haproxy_over_ours"] = {"cpu_per_1k_requests": ratio("cpu_ms_per_1k_requests"), "cpu_per_mb": ratio("cpu_ms_per_mb")}
        e["throughput_ours_over_haproxy"] = stat([U[i]["req_per_s"] / H[i]["req_per_s"] for i in runs if H[i]["req_per_s"]])
        aa = [ha[i]["cpu_ms_per_1k_requests"] / ha[i + 1]["cpu_ms_per_1k_requests"] for i in range(len(ha) - 1)
              if ha[i]["cpu_ms_per_1k_requests"] and ha[i + 1]["cpu_ms_per_1k_requests"]]
        e["noise_floor_haproxy_aa"] = {"cpu_per_1k_requests": stat(aa)}
        out["saturating"][kind] = e

        lat = {s: pick(s, kind, "paced") for s in ["direct", "haproxy", "sealcast"]}
        D = by_run(lat["direct"])
        le = {s: {m: stat([x[m] for x in xs]) for m in ["req_per_s", "p50_us", "p99_us", "p999_us", "errors", "cpu_ms_per_1k_requests"]} for s, xs in lat.items()}
        le["added_us"] = {}
        for s in ["haproxy", "sealcast"]:
            S = by_run(lat[s])
            rs = sorted(set(S) & set(D))
            le["added_us"][s] = {q: stat([S[i][q] - D[i][q] for i in rs if S[i][q] is not None and D[i][q] is not None]) for q in ["p50_us", "p99_us"]}
        out["latency"][kind] = le

    def reuse(xs):
        acc, req = sum(x["backend_accepts"] for x in xs), sum(x["backend_requests"] for x in xs)
        return {"backend_accepts": acc, "backend_requests": req, "reuse": 1 - acc / req if req else None}
    for s in ["haproxy", "sealcast"]:
        out["reuse"][s] = reuse([derived(r) for r in rows if r["server"] == s])
        out["reuse"][s]["by_load"] = {f"{k} {m}": reuse(pick(s, k, m)) for k in ["playlist", "segment"] for m in ["load", "paced"]}
    out["reuse"]["note"] = "1 - TCP connections the backends accepted / requests they served (nginx stub_status), over every load; the health checks of the load balancer under test count in both (HAProxy's are paused while ours is measured)"

    choices = {}
    for line in open(metrics_path):
        m = re.match(r'sealcast_lb_choices_total\{outcome="(\w+)"\}\s+([\d.e+]+)', line)
        if m: choices[m.group(1)] = float(m.group(2))
    out["sealcast_choices"] = choices

    cpu = [out["saturating"][k]["ratio_haproxy_over_ours"]["cpu_per_1k_requests"] for k in ["playlist", "segment"]]
    out["errors"] = {s: sum(derived(r)["errors"] for r in rows if r["server"] == s) for s in ["haproxy", "sealcast", "direct"]}
    out["target"] = {"cpu_ratio_haproxy_over_ours_min": 1.2, "reuse_min": 0.99, "added_p99_max_us": 200,
                     "aim": "cpu ratio >= 1.2; added p99 < 200 us",
                     "cpu_met": all(c is not None and c["median"] >= 1.2 for c in cpu),
                     "reuse_met": (out["reuse"]["sealcast"]["reuse"] or 0) >= 0.99}
    out["target"]["added_p99_met"] = {k: e["added_us"]["sealcast"]["p99_us"] is not None
                                      and e["added_us"]["sealcast"]["p99_us"]["median"] < out["target"]["added_p99_max_us"]
                                      for k, e in out["latency"].items()}
    out["raw"] = rows
    json.dump(out, open(results, "w"), indent=2)

    f = lambda x, d=0: "-" if x is None else f"{x:,.{d}f}"
    ms = lambda s: None if s is None else s["median"]
    rng = spread_text
    m = re.search(r"version (\S+)", out["haproxy"])
    ha_name = f"HAProxy {m.group(1)}" if m else "HAProxy"
    lines = ["## Load-balancer overhead (bench/lb.sh)", "",
             f"`sealcast lb` (Pingora, 1 tokio worker) vs {ha_name} (`nbthread 1`), both pinned to core 1, "
             f"sticky by cookie (`sealcast_node`; HAProxy `cookie … insert indirect nocache`, `balance leastconn`, `http-reuse always`), "
             f"same certificate, in front of two nginx backends (core 0, with h2load). Clients: TLS + h2 ({out['protocol']['sealcast']} / {out['protocol']['haproxy']}), "
             f"half of them holding each backend's cookie. Saturating: h2load `-c{conf['clients']} -m{conf['streams_per_client']}`; "
             f"paced (latency): `-c{conf['paced_clients']} --rps {conf['paced_rps_per_client']}` per client, added latency against h2load `--h1` on the backends themselves (plain HTTP/1.1) in the same run. "
             f"Playlist {conf['playlist_bytes']} B, segment {conf['segment_bytes'] // 1024} KiB; {conf['runs']} interleaved runs of {conf['seconds_per_load']} s, {out['date']}. "
             "Ratios are HAProxy / ours: > 1 means we are ahead.", "",
             "| load | ours req/s | ours CPU ms /1k req | ours CPU ms /MB | HAProxy req/s | HAProxy CPU ms /1k req | HAProxy CPU ms /MB | ratio CPU /1k req (median, min–max) | ratio CPU /MB | A/A HAProxy |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for kind, e in out["saturating"].items():
        u, h, r = e["sealcast"], e["haproxy"], e["ratio_haproxy_over_ours"]
        lines.append(f"| {kind} | {f(ms(u['req_per_s']))} | {f(ms(u['cpu_ms_per_1k_requests']), 1)} | {f(ms(u['cpu_ms_per_mb']), 2)} | "
                     f"{f(ms(h['req_per_s']))} | {f(ms(h['cpu_ms_per_1k_requests']), 1)} | {f(ms(h['cpu_ms_per_mb']), 2)} | "
                     f"{rng(r['cpu_per_1k_requests'])} | {rng(r['cpu_per_mb'])} | {rng(e['noise_floor_haproxy_aa']['cpu_per_1k_requests'])} |")
    lines += ["", "| paced load | direct p50 / p99 µs | ours p50 / p99 µs | HAProxy p50 / p99 µs | ours added p50 / p99 µs | HAProxy added p50 / p99 µs |",
              "|---|---|---|---|---|---|"]
    for kind, e in out["latency"].items():
        pp = lambda s: f"{f(ms(e[s]['p50_us']))} / {f(ms(e[s]['p99_us']))}"
        ad = lambda s: f"{f(ms(e['added_us'][s]['p50_us']))} / {f(ms(e['added_us'][s]['p99_us']))}"
        lines.append(f"| {kind} | {pp('direct')} | {pp('sealcast')} | {pp('haproxy')} | {ad('sealcast')} | {ad('haproxy')} |")
    ru = out["reuse"]
    p99_met = ", ".join(f"{k} {'met' if ok else 'NOT met'}" for k, ok in out["target"]["added_p99_met"].items())
    pc = lambda x: "-" if x is None else f"{100 * x:.2f} %"
    shares = "; ".join(f"{k} {f(ms(e['sealcast']['cpu_share']), 2)} / {f(ms(e['haproxy']['cpu_share']), 2)}" for k, e in out["saturating"].items())
    lines += ["", f"Load-balancer CPU-s per wall-second under the saturating loads (ours / HAProxy, median): {shares}. "
              "Below 1.0 the load balancer was not the bottleneck (h2load and the backends share the other core, and the machine "
              "may be shared): requests/s then mean little, CPU per request is the figure to read."]
    if any(out["errors"].values()):
        lines += ["", f"Failed requests (h2load): ours {out['errors']['sealcast']}, HAProxy {out['errors']['haproxy']}, direct {out['errors']['direct']}."]
    if choices:
        lines += ["", "Our placements: " + ", ".join(f"{k} {int(v):,}" for k, v in sorted(choices.items()) if v) + " (sticky_hit should be nearly all)."]
    lines += ["", f"Backend connection reuse (1 − connections accepted / requests served, all loads): ours {pc(ru['sealcast']['reuse'])} "
              f"({ru['sealcast']['backend_accepts']} connections for {ru['sealcast']['backend_requests']:,} requests), "
              f"HAProxy {pc(ru['haproxy']['reuse'])} ({ru['haproxy']['backend_accepts']} for {ru['haproxy']['backend_requests']:,}).",
              "", f"Goal (issue 18): HAProxy CPU / ours ≥ 1.2 per playlist and per segment request — {'met' if out['target']['cpu_met'] else 'NOT met'}; "
              f"added p99 < 200 µs at the paced load — {p99_met}; reuse ≥ 99 % — {'met' if out['target']['reuse_met'] else 'NOT met'}. "
              "Where the CPU goes: bench/lb-profile.sh (instructions per request, below). "
              "Server CPU is the load balancer's process only (utime+stime)."]
    lines += notes("bench/lb-notes.md")
    lines += ["", "Run it with `bench/lb.sh [RUNS [SECONDS]]`; raw numbers in `bench/out/lb.json`.", ""]
    section = "\n".join(lines)
    if docs:
        put(section, "## Load-balancer overhead", docs, results=results)
    print(section)


COMMANDS = {"haproxy-health": haproxy_health, "tls-check": tls_check, "report": report}


def main(argv):
    """Runs COMMAND (argv[1]) with argv[1:] (the command in place of the program's name)."""
    COMMANDS[argv[1]](argv[1:])


if __name__ == "__main__":
    main(sys.argv)
