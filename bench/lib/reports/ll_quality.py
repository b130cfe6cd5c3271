"""The Python of bench/ll-quality.sh (issue 46 item 4: report code out of the script's heredocs),
run by it from the repository's root as `python3 bench/lib/reports/ll_quality.py COMMAND ARG...`.
"""
import sys


def measure(argv):
    """bench/ll-quality.sh runs `ll_quality.py measure "$name" "$mode" "$kbps" "$out" "$secs" "$SECS" "$metrics" >> "$WORK/results.jsonl"`."""
    import json, os, re
    name, mode, kbps, out, secs, dur, metrics = argv[1:]
    psnr = re.search(r"average:([0-9.]+|inf)", metrics)
    ssim = re.search(r"All:([0-9.]+)", metrics)
    print(json.dumps({"rung": name, "mode": mode, "target_kbps": int(kbps),
        "kbps": round(os.path.getsize(out) * 8 / float(dur) / 1000, 1),
        "psnr_db": float(psnr.group(1)) if psnr else None, "ssim": float(ssim.group(1)) if ssim else None,
        "encode_fps": round(float(dur) * 30 / float(secs), 1)}))


def report(argv):
    """bench/ll-quality.sh runs `ll_quality.py report "$WORK/results.jsonl" "$SECS"`."""
    import json, sys
    sys.dont_write_bytecode = True; sys.path.insert(0, "bench"); from docsection import put
    rows = [json.loads(l) for l in open(argv[1])]
    json.dump({"seconds": int(argv[2]), "rows": rows}, open("bench/out/ll-quality.json", "w"), indent=1)
    table = ["## Low-latency x264 settings: quality cost", "",
        f"`bench/ll-quality.sh {argv[2]}`: a {argv[2]} s 720p30 source (testsrc2 with noise) encoded per rung at the ladder's bitrate with the ingest's x264 settings without parts and with them (no B-frames, no lookahead, sliced threads). PSNR/SSIM against the source scaled to the rung; encode speed on this 2-core machine.", "",
        "| rung | kb/s (target) | PSNR dB, plain → LL | Δ dB | SSIM, plain → LL | kb/s reached, plain / LL | encode fps, plain / LL |",
        "|---|---|---|---|---|---|---|"]
    by = {(r["rung"], r["mode"]): r for r in rows}
    for rung in ["720p", "480p", "360p"]:
        p, l = by[(rung, "plain")], by[(rung, "ll")]
        table.append(f"| {rung} | {p['target_kbps']} | {p['psnr_db']:.2f} → {l['psnr_db']:.2f} | {l['psnr_db'] - p['psnr_db']:+.2f} | {p['ssim']:.4f} → {l['ssim']:.4f} | {p['kbps']} / {l['kbps']} | {p['encode_fps']} / {l['encode_fps']} |")
    section = "\n".join(table) + "\n"
    put(section, "## Low-latency x264 settings", results="bench/out/ll-quality.json")
    print(section)


COMMANDS = {"measure": measure, "report": report}


def main(argv):
    """Runs COMMAND (argv[1]) with argv[1:] (the command in place of the program's name)."""
    COMMANDS[argv[1]](argv[1:])


if __name__ == "__main__":
    main(sys.argv)
