"""The report of bench/moq-cost.sh: a MoQ viewer's cost on the servers against an LL-HLS
viewer's, the same node and stream, and against nginx's polled LL-HLS of the same stream,
in one run (issue 48)."""
import datetime
import json
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, "bench")
from docsection import notes, put  # noqa: E402
from lib.stats import spread, spread_text  # noqa: E402

HEADING = "## MoQ viewers' cost on one node"


def figures(m):
    """A measurement's cost per viewer, and how its viewers fared."""
    n, window = m["viewers"], m["window_s"]
    extra = m["busy_cpu_s"] - m["idle_cpu_s"]
    r = m["report"]
    if m["system"] in ("moq", "moq+"):
        stalls, stalled, failed = r.get("stalls", 0), r.get("viewers_stalled", 0), sum((r.get("failed") or {}).values())
        late = r.get("late") or {}
        late = (late.get("p50_ms"), late.get("p99_ms")) if late.get("p99_ms") is not None else None
    else:
        ll = r.get("ll") or {}
        stalls, stalled, failed = ll.get("stalls", 0), ll.get("stalled_viewers", 0), r.get("errors", 0)
        late = None
    return {
        "system": m["system"],
        "run": m["run"],
        "viewers_per_cpu_s": n * window / extra if extra > 0 else None,
        "cpu_ms_per_viewer_s": 1000 * extra / window / n,
        "kib_per_viewer": (m["busy_rss_kib"] - m["idle_rss_kib"]) / n,
        "idle_cpu_pct": 100 * m["idle_cpu_s"] / window,
        "stalls": stalls,
        "stalled_viewers": stalled,
        "failed": failed,
        "late_ms": late,
    }


def main(argv):
    runs, docs = argv[1], argv[2] if len(argv) > 2 else ""
    measured = [json.loads(line) for line in open(runs) if line.strip()]
    rows = [figures(m) for m in measured]
    os.makedirs("bench/out", exist_ok=True)
    json.dump({"measurements": measured, "figures": rows}, open("bench/out/moq-cost.json", "w"), indent=1)
    by = {s: [r for r in rows if r["system"] == s] for s in ("moq", "moq+", "ll-hls", "nginx")}
    variant = os.environ.get("RELAY_VARIANT", "")

    def ratios_to(peer, system="moq"):
        """`system`'s viewers per server CPU-second over `peer`'s, per run both measured."""
        out = []
        for run in sorted({r["run"] for r in rows}):
            pair = {r["system"]: r["viewers_per_cpu_s"] for r in rows if r["run"] == run}
            if pair.get(system) and pair.get(peer):
                out.append(pair[system] / pair[peer])
        return out

    ratios, to_nginx = ratios_to("ll-hls"), ratios_to("nginx")
    n = measured[0]["viewers"] if measured else 0
    window = measured[0]["window_s"] if measured else 0
    lines = [f"{HEADING} (bench/moq-cost.sh)", "",
        f"`bench/moq-cost.sh {os.environ.get('VIEWERS', n)} {os.environ.get('RUNS', len(ratios))}`, {datetime.date.today()}: "
        "one `sealcast broadcast` node and the moq-relay it publishes to (0.17.10) on one core; a 640x360 30 fps "
        "stream (~730 kb/s, CMAF, 0.333 s parts) from an ingest on the other core. "
        f"{n} viewers on the other core, one system at a time, interleaved: LL-HLS viewers of the node "
        "(`sealcast-viewers --mode ll`, hls.js's requests), MoQ viewers of the relay (`sealcast-moq-viewers`, "
        "a QUIC connection each, media and statements tracks), and the peer: nginx (one worker, sendfile) "
        "serving a mirror of the node's files to viewers that poll (`--mode ll-poll`, as bench/llhls-node.sh). "
        "The servers' CPU (node + relay; nginx's own for nginx) over "
        f"{window} s with the viewers, less the same without, per viewer; memory likewise. "
        "Goals: a MoQ viewer costs a third of an LL-HLS viewer or less (≥ 3× viewers per CPU-second), "
        "and no more than nginx's polled LL-HLS viewer (≥ 1×).", "",
        "| | viewers per server CPU-second | CPU ms per viewer-second | memory per viewer | stalls (viewers) | failed | MoQ fan-out lateness p50 / p99 |",
        "|---|---|---|---|---|---|---|"]
    systems = (("moq", "MoQ (node + moq-relay)"), ("moq+", f"MoQ (node + moq-relay `{variant}`)"),
               ("ll-hls", "LL-HLS (node)"), ("nginx", "polled LL-HLS (nginx, the peer)"))
    for system, label in systems:
        rs = by[system]
        if not rs:
            continue
        late = [r["late_ms"] for r in rs if r["late_ms"] is not None]
        lines.append(
            f"| {label} | {spread_text(spread([r['viewers_per_cpu_s'] for r in rs]), '{:.0f}')} "
            f"| {spread_text(spread([r['cpu_ms_per_viewer_s'] for r in rs]), '{:.3f}')} "
            f"| {spread_text(spread([r['kib_per_viewer'] for r in rs]), '{:.0f}')} KiB "
            f"| {sum(r['stalls'] for r in rs)} ({sum(r['stalled_viewers'] for r in rs)}) "
            f"| {sum(r['failed'] for r in rs)} "
            f"| {spread_text(spread([x[0] for x in late]), '{:.0f}') + ' / ' + spread_text(spread([x[1] for x in late]), '{:.0f}') + ' ms' if late else '—'} |")
    lines += ["", f"MoQ / LL-HLS, viewers per server CPU-second, per run: {spread_text(spread(ratios)) if ratios else '—'}"
        f" ({', '.join(f'{x:.2f}' for x in ratios)}); MoQ / nginx: {spread_text(spread(to_nginx)) if to_nginx else '—'}"
        f" ({', '.join(f'{x:.2f}' for x in to_nginx)}). Figures are median (min–max) over runs; the servers' idle CPU "
        f"(publishing, the relay's and node's own work) was {spread_text(spread([r['idle_cpu_pct'] for r in rows if r['system'] != 'nginx']), '{:.1f}')} % of a core."]
    if by["moq+"]:
        plus = ratios_to("moq", "moq+")
        lines += ["", f"With `{variant}` (a second relay, the node publishing to both): its viewers per server CPU-second "
            f"over the shipped relay's, per run: {spread_text(spread(plus)) if plus else '—'} ({', '.join(f'{x:.2f}' for x in plus)}); "
            f"over LL-HLS: {spread_text(spread(ratios_to('ll-hls', 'moq+'))) if ratios_to('ll-hls', 'moq+') else '—'}."]
    lines += notes("bench/moq-cost-notes.md")
    section = "\n".join(lines) + "\n"
    if docs:
        put(section, HEADING, docs, results="bench/out/moq-cost.json")
    print(section)


if __name__ == "__main__":
    main(sys.argv)
