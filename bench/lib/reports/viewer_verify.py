"""The Python of bench/viewer-verify.sh (issue 46 item 4: report code out of the script's heredocs),
run by it from the repository's root as `python3 bench/lib/reports/viewer_verify.py ARG...`.
"""
import sys


def main(argv):
    """bench/viewer-verify.sh runs `viewer_verify.py "$WORK/runs.jsonl"`."""
    import json, os, sys
    sys.dont_write_bytecode = True; sys.path.insert(0, "bench"); from docsection import put; from lib.stats import median
    runs = [json.loads(l) for l in open(argv[1]) if l.strip()]
    json.dump(runs, open("bench/out/viewer-verify.json", "w"), indent=1)
    med = median
    def f(v, digits=2):
        return "—" if v is None else f"{v:,.{digits}f}"
    rows = []
    for mode in sorted({r["mode"] for r in runs}):
        mine = [r for r in runs if r["mode"] == mode]
        rows.append((mode, len(mine),
                     med(r["verify_cpu_ms_per_viewer_s"] for r in mine),
                     med(r["added_requests_per_s"] for r in mine),
                     med(r["kinds"].get("media", {}).get("requests", 0) / r["played_s"] for r in mine),
                     med(r["added_bytes_per_s"] for r in mine),
                     med(r["media_bytes_per_s"] for r in mine),
                     med(r["added_bytes_share"] for r in mine),
                     med(r["without_delegation_bytes_per_s"] for r in mine),
                     med(r["without_delegation_share"] for r in mine),
                     sum(r["refused"] for r in mine)))
    lines = [
        "## Viewer verification",
        "",
        f"One Chromium viewer plays the 360p rung (730 kb/s, LL-HLS parts of 0.333 s) of a live "
        f"720p30 `sealcast source` through the load balancer for {os.environ['SECS']} s, "
        f"{os.environ['ROUNDS']} rounds per path (medians below), checking every fragment "
        "itself (issue 31). CPU is the time the player's loader spends in its checks (SHA-256, "
        "signature, delegation) per second of media played; requests and bytes are the page's "
        "Resource Timing (`encodedBodySize`) per second played: what verification adds "
        "(sidecars, part-key delegations, trust bundle) against the media. \"Without "
        "delegation\" is the same requests with every part's sidecar at the size of an "
        "ML-DSA-65 part envelope and no delegation: computed, not measured.",
        "",
        "| path | runs | verify CPU ms per viewer-s | added requests/s | media requests/s | added bytes/s | media bytes/s | added share | without delegation: bytes/s | share | refused |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (mode, n, cpu, areq, mreq, ab, mb, share, wb, wshare, refused) in rows:
        lines.append(f"| {mode} | {n} | {f(cpu)} | {f(areq)} | {f(mreq)} | {f(ab, 0)} | {f(mb, 0)} | "
                     f"{f(share * 100 if share is not None else None, 1)} % | {f(wb, 0)} | "
                     f"{f(wshare * 100 if wshare is not None else None, 1)} % | {refused} |")
    lines += ["", "Goal (issue 31): added bytes under 3 % of the media at the 360p rung.",
              "", "Run it with `bench/viewer-verify.sh [SECONDS] [ROUNDS]`."]
    section = "\n".join(lines) + "\n"
    put(section, "## Viewer verification", after="## Glass-to-glass latency", results="bench/out/viewer-verify.json")
    print(section)


if __name__ == "__main__":
    main(sys.argv)
