"""The Python of bench/latency.sh (issue 46 item 4: report code out of the script's heredocs),
run by it from the repository's root as `python3 bench/lib/reports/latency.py ARG...`.
"""
import sys


def main(argv):
    """bench/latency.sh runs `latency.py "$WORK/runs.jsonl" "$WORK/m0.json" "$WORK/m1.json"` (environment: LADDER, ROUNDS, SECS)."""
    import json, os, sys
    sys.dont_write_bytecode = True; sys.path.insert(0, "bench"); from docsection import put; from lib.stats import median_high
    sys.path.insert(0, "bench")
    from publish_latency import hist, hist_quantile
    runs = [json.loads(l) for l in open(argv[1])]
    m0, m1 = json.load(open(argv[2])), json.load(open(argv[3]))
    span = m1["at"] - m0["at"]
    delta = lambda name: sum(v for k, v in m1["m"].items() if k.split("{")[0] == name) - sum(v for k, v in m0["m"].items() if k.split("{")[0] == name)
    parts_signed = delta("sealcast_ingest_parts_signed_total")
    segments = delta("sealcast_ingest_sign_seconds_count")
    part_sign_s = delta("sealcast_ingest_part_sign_seconds_sum")
    sign_s = delta("sealcast_ingest_sign_seconds_sum")
    verify_s = delta("sealcast_signature_verify_seconds_sum")
    verified = delta("sealcast_signature_verify_seconds_count")
    _, waits, buckets = hist(m0["m"], m1["m"], "sealcast_part_wait_seconds")
    # An envelope: u32 ‖ manifest ‖ u32 ‖ ML-DSA-65 signature (3309 bytes); a part manifest of
    # stream "main", rendition "src" is 27+1+16+5+8+4+8+4+1+8+8+8+8+32 bytes.
    part_envelope = 8 + (27 + 1 + 16 + 5 + 8 + 4 + 8 + 4 + 1 + 8 + 8 + 8 + 8 + 32) + 3309
    segment_envelope = 8 + (29 + 1 + 16 + 5 + 8 + 4 + 8 * 4 + 32) + 3309
    cost = {
        "seconds": span,
        "parts_per_s": parts_signed / span if span else None,
        "segments_per_s": segments / span if span else None,
        "ingest_sign_ms_per_s": 1000 * (part_sign_s + sign_s) / span if span else None,
        "part_sign_ms_mean": 1000 * part_sign_s / parts_signed if parts_signed else None,
        "edge_verify_ms_per_s_per_node": 1000 * verify_s / span / 2 if span else None,
        "verify_ms_mean": 1000 * verify_s / verified if verified else None,
        "mqtt_manifest_bytes_per_s": (parts_signed * part_envelope + segments * segment_envelope) / span if span else None,
        "part_wait_ms": {"p50": (hist_quantile(buckets, 0.5) or 0) * 1000, "p99": (hist_quantile(buckets, 0.99) or 0) * 1000, "n": waits},
    }
    names = {"ll": "sealcast LL-HLS (lb, HTTPS)", "plain": "sealcast plain HLS (lb, HTTPS)", "nginx": "nginx-rtmp HLS (hls_fragment 2s)"}
    out = {"seconds_per_run": int(os.environ["SECS"]), "rounds": int(os.environ["ROUNDS"]),
           "ladder": os.environ["LADDER"], "publisher": "`sealcast source` 1280x720 30 fps via nginx-rtmp", "systems": {}}
    for system in ["ll", "plain", "nginx"]:
        mine = [r for r in runs if r["system"] == system]
        p50s = [r["glass_to_glass_s"]["p50"] for r in mine if r["glass_to_glass_s"]]
        p90s = [r["glass_to_glass_s"]["p90"] for r in mine if r["glass_to_glass_s"]]
        maxes = [r["glass_to_glass_s"]["max"] for r in mine if r["glass_to_glass_s"]]
        med = median_high
        out["systems"][system] = {
            "name": names[system],
            "p50_s": {"median": med(p50s), "min": min(p50s, default=None), "max": max(p50s, default=None)},
            "p90_s": {"median": med(p90s), "min": min(p90s, default=None), "max": max(p90s, default=None)},
            "max_s": max(maxes, default=None),
            "longest_stall_s": max((r["longest_stall_s"] for r in mine if r["longest_stall_s"] is not None), default=None),
            "failed_runs": sum(1 for r in mine if r.get("failed")),
            "stamped_samples": sum(r["stamped_samples"] for r in mine),
            "runs": mine,
        }
    out["signing"] = cost
    json.dump(out, open("bench/out/latency.json", "w"), indent=1)
    f = lambda v: "—" if v is None else f"{v:.2f}"
    table = [
        "## Glass-to-glass latency",
        "",
        f"`bench/latency.sh {out['seconds_per_run']} {out['rounds']}`: Chromium (the sealcast player, hls.js in low-latency mode) reads the clock `sealcast source` stamps into each frame every 250 ms, {out['seconds_per_run']} s per run after a 10 s settle, {out['rounds']} rounds interleaved; one publisher feeds all three (nginx-rtmp relays it to both sealcast clusters). Ladder: {out['ladder']}. Median of the runs' p50 and p90 (min–max), the worst sample, and the longest stall.",
        "",
        "| system | p50 s | p90 s | max s | longest stall s | samples | failed runs |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in out["systems"].values():
        table.append(f"| {s['name']} | {f(s['p50_s']['median'])} ({f(s['p50_s']['min'])}–{f(s['p50_s']['max'])}) | {f(s['p90_s']['median'])} ({f(s['p90_s']['min'])}–{f(s['p90_s']['max'])}) | {f(s['max_s'])} | {f(s['longest_stall_s'])} | {s['stamped_samples']} | {s['failed_runs']} |")
    c = cost
    g = lambda v, d=2: "—" if v is None else f"{v:.{d}f}"
    table += [
        "",
        f"Cost of signing every part, on the LL cluster over the {g(c['seconds'], 0)} s of the runs (one stream, ML-DSA-65): {g(c['parts_per_s'])} parts and {g(c['segments_per_s'])} segments signed per second; the ingest spends {g(c['ingest_sign_ms_per_s'])} ms of CPU per second on hashing and signing ({g(c['part_sign_ms_mean'])} ms per part); each edge {g(c['edge_verify_ms_per_s_per_node'])} ms per second verifying ({g(c['verify_ms_mean'], 3)} ms per manifest); signed manifests on MQTT {g((c['mqtt_manifest_bytes_per_s'] or 0) / 1000, 1)} KB/s per stream and rendition. The part gate's added latency (bytes arrived → listed): p50 {g(c['part_wait_ms']['p50'])} ms, p99 {g(c['part_wait_ms']['p99'])} ms over {int(c['part_wait_ms']['n'])} parts.",
    ]
    section = "\n".join(table) + "\n"
    put(section, "## Glass-to-glass latency", results="bench/out/latency.json")
    print(section)


if __name__ == "__main__":
    main(sys.argv)
