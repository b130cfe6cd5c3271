"""The Python of bench/compose.sh (issue 46 item 4: report code out of the script's heredocs),
run by it from the repository's root as `python3 bench/lib/reports/compose.py ARG...`.
"""
import sys


def main(argv):
    r"""bench/compose.sh runs `compose.py "$runs" "$cold_init" "$warm_init" "$(printf '%s\n' "${rounds[@]}")" "$idle" "$streaming" "$proc_idle" "$proc_stream" "${compose[*]}"`."""
    import json, sys
    sys.dont_write_bytecode = True; sys.path.insert(0, "bench"); from docsection import put; from lib.stats import spread, spread_text
    runs, cold, warm, rounds, idle, streaming, p_idle, p_stream, tool = argv[1:10]
    rounds = [json.loads(l) for l in rounds.splitlines() if l.strip()]
    idle = [json.loads(l) for l in idle.splitlines() if l.strip()]
    streaming = [json.loads(l) for l in streaming.splitlines() if l.strip()]
    p_idle, p_stream = json.loads(p_idle), json.loads(p_stream)
    result = {"runs": int(runs), "init_cold_s": json.loads(cold), "init_warm_s": float(warm), "rounds": rounds,
              "containers_idle": idle, "containers_one_stream": streaming, "process_idle": p_idle, "process_one_stream": p_stream, "compose": tool}
    json.dump(result, open("bench/out/compose.json", "w"), indent=2)
    def med(key):
        return spread_text(spread([r[key] for r in rounds]))
    def mib(text):
        n = float(text.rstrip("KMGiB").strip()); unit = text.lstrip("0123456789.")
        return n * {"KiB": 1 / 1024, "MiB": 1, "GiB": 1024, "B": 1 / 1048576}.get(unit, 1)
    def table(rows):
        out = {}
        for r in rows:
            cpu, mem = float(r["cpu"].rstrip("%")), mib(r["mem"])
            s = out.setdefault(r["service"], [0, 0.0, 0.0])
            s[0] += 1; s[1] += cpu; s[2] += mem
        return out
    ti, ts = table(idle), table(streaming)
    lines = ["## Compose cluster in containers", "",
             f"`bench/compose.sh {runs}` with `{tool}` on this machine's Docker engine (images made from Debian's packages by the init script; {runs} rounds, median (min–max)).", "",
             "| what | seconds |", "|---|---|",
             f"| `init-cluster.sh`, images cold (debootstrap and every image) | {cold if cold != 'null' else 'not measured this run (BENCH_COLD=1)'} |",
             f"| `init-cluster.sh`, images cached | {float(warm):.1f} |",
             f"| `up -d` to every service healthy | {med('up_to_healthy_s')} |",
             f"| `up -d` to the first playable master playlist (demo1 through lb1's HTTPS port) | {med('up_to_master_s')} |",
             f"| `--scale broadcast=6` to the first new viewer on a new edge | {med('scale_to_new_edge_s')} |",
             f"| floating address: holder SIGKILLed to the address on the other balancer | {med('failover_moved_s')} |",
             f"| floating address: holder SIGKILLed to the first answer through it | {med('failover_answered_s')} |",
             "", "CPU (% of one core) and RSS per container, `docker stats`, idle (no stream: the test sources stopped) and with one 1280x720 stream from `source1` through the whole ladder:", "",
             "| service | containers | CPU idle | RSS idle (MiB) | CPU one stream | RSS one stream (MiB) |", "|---|---|---|---|---|---|"]
    total = [0, 0, 0, 0]
    for service in sorted(set(ti) | set(ts)):
        a, b = ti.get(service, [0, 0, 0]), ts.get(service, [0, 0, 0])
        n = max(a[0], b[0])
        lines.append(f"| {service} | {n} | {a[1]:.1f} | {a[2]:.1f} | {b[1]:.1f} | {b[2]:.1f} |")
        total = [total[0] + a[1], total[1] + a[2], total[2] + b[1], total[3] + b[2]]
    lines.append(f"| **all containers** | | {total[0]:.1f} | {total[1]:.1f} | {total[2]:.1f} | {total[3]:.1f} |")
    lines.append(f"| `sealcast up --broadcast 3` (one process, embedded broker, SQLite) | 1 | {p_idle['cpu_percent']} | {p_idle['rss_kib'] / 1024:.1f} | {p_stream['cpu_percent']} | {p_stream['rss_kib'] / 1024:.1f} |")
    lines += ["", "Run it with `sudo bench/compose.sh [RUNS]` (`BENCH_COLD=1` to make the images again first)."]
    put("\n".join(lines), "## Compose cluster in containers", results="bench/out/compose.json")
    print(json.dumps(result["rounds"]))


if __name__ == "__main__":
    main(sys.argv)
