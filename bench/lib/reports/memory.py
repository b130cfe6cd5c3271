"""The Python of bench/memory.sh (issue 46 item 4: report code out of the script's heredocs),
run by it from the repository's root as `python3 bench/lib/reports/memory.py ARG...`.
"""
import sys


def main(argv):
    """bench/memory.sh runs `memory.py "$RAW" "$WORK/ciphers" "$CONNS" "$RUNS"`."""
    import json, sys, datetime
    sys.dont_write_bytecode = True; sys.path.insert(0, "bench"); from docsection import put; from lib.stats import spread
    raw, ciphers, conns, runs = argv[1], argv[2], int(argv[3]), int(argv[4])
    per = {}
    for line in open(raw):
        run, target, before, after, opened, failed = line.split()
        opened = int(opened)
        per.setdefault(target, []).append({
            "run": int(run), "rss_before_kib": int(before), "rss_after_kib": int(after),
            "open": opened, "failed": int(failed),
            "bytes_per_connection": (int(after) - int(before)) * 1024 / max(opened, 1),
        })
    cipher = {}
    for line in open(ciphers):
        k, _, v = line.strip().partition(" ")
        cipher[k.replace("-cipher", "")] = v
    summary = {}
    for target, rs in per.items():
        summary[target] = {**spread([r["bytes_per_connection"] for r in rs]),
                           "failed": sum(r["failed"] for r in rs), "runs": rs}
    out = {"date": datetime.date.today().isoformat(), "connections": conns, "runs": runs,
           "tls": cipher, "targets": summary}
    json.dump(out, open("bench/out/memory.json", "w"), indent=2)

    def kb(x): return f"{x / 1000:.2f}"
    def row(name, t, goal):
        s = summary.get(t)
        if s is None:
            return f"| {name} | not run | — | {goal} |"
        return f"| {name} | {kb(s['median'])} ({kb(s['min'])}–{kb(s['max'])}) | {s['failed']} | {goal} |"
    lines = [
        "## Memory per idle viewer (bench/memory.sh)", "",
        f"{conns:,} keep-alive connections, each asks once for the master playlist and then stays idle; "
        f"RSS the server added per connection (all its processes, VmRSS once every connection has its answer "
        f"and the RSS has settled (12 one-second samples within 1 %), minus before, read the same way), fresh processes for each figure, {runs} interleaved runs, {out['date']}. "
        "Ours: `sealcast up --broadcast 1` (its ingest and broker idle) at the binary's defaults (a tokio worker "
        "per core: 2 here) and with `TOKIO_WORKER_THREADS=1` (1w), as the peers run one worker; the node directly over "
        "plain HTTP/1.1, and its load balancer over TLS with HTTP/2 by ALPN. Peers: nginx 1.22 (1 worker) on "
        "a copy of the same playlist, HAProxy 2.6 (`nbthread 1`) over TLS/h2 in front of the same node. "
        f"TLS: ours {cipher.get('lb', '?')}, HAProxy {cipher.get('haproxy', '?')}.", "",
        "| server | KB per idle connection, median (min–max) | failed connections | goal |",
        "|---|---|---|---|",
        row("sealcast node, HTTP/1.1, defaults", "node", "≤ 2 KB"),
        row("sealcast node, HTTP/1.1, 1 worker", "node-1w", "≤ 2 KB"),
        row("nginx, HTTP/1.1", "nginx", "—"),
        row("sealcast lb, TLS + h2, defaults", "lb", "≤ 8 KB (issue 33); ≤ 4 KB (issue 18)"),
        row("sealcast lb, TLS + h2, 1 worker", "lb-1w", "≤ 4 KB (issue 18)"),
        row("HAProxy, TLS + h2", "haproxy", "—"),
        "", open("bench/memory-notes.md").read().rstrip("\n"),
        "", "Run it with `bench/memory.sh [RUNS [CONNECTIONS]]`; raw numbers in `bench/out/memory.json`.", "",
    ]
    section = "\n".join(lines)
    print(section)
    put(section, "## Memory per idle viewer", results="bench/out/memory.json")


if __name__ == "__main__":
    main(sys.argv)
