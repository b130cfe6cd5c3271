"""The Python of bench/ladder.sh (issue 46 item 4: report code out of the script's heredocs),
run by it from the repository's root as `python3 bench/lib/reports/ladder.py ARG...`.
"""
import sys


def main(argv):
    """bench/ladder.sh runs `ladder.py "$WORK" "$RUNS" "$PARTS" "$X264_PARAMS"`."""
    import json, os, sys, glob, datetime
    sys.dont_write_bytecode = True; sys.path.insert(0, "bench"); from docsection import put; from lib.stats import spread
    work, runs, parts, x264 = argv[1], int(argv[2]), argv[3] != "0", argv[4]
    rows = [l.split() for l in open(os.path.join(work, "runs"))]
    ours = [(float(w), float(u) + float(s)) for k, w, u, s in rows if k == "ours"]
    ff = [(float(w), float(u) + float(s)) for k, w, u, s in rows if k == "ffmpeg"]
    stat = spread
    cpu_ratio = [f[1] / o[1] for f, o in zip(ff, ours)]
    wall_ratio = [f[0] / o[0] for f, o in zip(ff, ours)]
    aa_cpu = [ff[i][1] / ff[i + 1][1] for i in range(len(ff) - 1)] or [1.0]
    aa_wall = [ff[i][0] / ff[i + 1][0] for i in range(len(ff) - 1)] or [1.0]

    RUNGS = ["src", "720p", "480p", "360p"]
    def rung_stats(files_by_rung):
        out = {}
        for rung, (init, segments) in files_by_rung.items():
            size = sum(os.path.getsize(f) for f in segments + init)
            out[rung] = {"segments": len(segments), "kbps": size * 8 / 60 / 1000}
        return out
    ours_files = {r: (glob.glob(os.path.join(work, "ours1", r, "init.mp4")), glob.glob(os.path.join(work, "ours1", r, "*.m4s"))) for r in RUNGS}
    ff_files = {r: (glob.glob(os.path.join(work, "ff1", f"{r}_init.mp4")), glob.glob(os.path.join(work, "ff1", f"{r}_*.m4s"))) for r in RUNGS}
    rungs = {"sealcast": rung_stats(ours_files), "ffmpeg": rung_stats(ff_files)}
    psnr = {}
    for line in open(os.path.join(work, "quality")):
        side, rung, value = (line.split() + [""])[:3]
        psnr.setdefault(rung, {})["sealcast" if side == "ours" else "ffmpeg"] = float(value) if value else None
    checks = {}
    for rung in RUNGS:
        o, f = rungs["sealcast"][rung], rungs["ffmpeg"][rung]
        c = {"kbps_ratio": o["kbps"] / f["kbps"] if f["kbps"] else None}
        c["kbps_ok"] = c["kbps_ratio"] is not None and abs(c["kbps_ratio"] - 1) <= 0.05
        if rung in psnr:
            p = psnr[rung]
            c["psnr_db"] = p
            c["psnr_delta_db"] = p["sealcast"] - p["ffmpeg"] if None not in p.values() else None
            c["psnr_ok"] = c["psnr_delta_db"] is not None and abs(c["psnr_delta_db"]) <= 0.1
        checks[rung] = c
    like_for_like = all(c["kbps_ok"] and c.get("psnr_ok", True) for c in checks.values())
    result = {
        "benchmark": "ladder transcode, 60 s 720p30 H.264+AAC FLV, as fast as possible",
        "date": datetime.date.today().isoformat(),
        "runs": runs,
        "ll_hls_parts": parts,
        "x264_params_both": x264,
        "cpu_seconds": {"sealcast": stat([o[1] for o in ours]), "ffmpeg": stat([f[1] for f in ff])},
        "wall_seconds": {"sealcast": stat([o[0] for o in ours]), "ffmpeg": stat([f[0] for f in ff])},
        "ratio_ffmpeg_over_ours": {"cpu": stat(cpu_ratio), "wall": stat(wall_ratio)},
        "noise_floor_ffmpeg_aa": {"cpu": stat(aa_cpu), "wall": stat(aa_wall)},
        "rungs": rungs,
        "checks": checks,
        "like_for_like": like_for_like,
    }
    os.makedirs("bench/out", exist_ok=True)
    name = "bench/out/ladder.json" if parts else "bench/out/ladder-plain.json"
    json.dump(result, open(name, "w"), indent=2)
    r = result
    rc, rw = r["ratio_ffmpeg_over_ours"]["cpu"], r["ratio_ffmpeg_over_ours"]["wall"]
    mode = ("sealcast's default ladder (CMAF with LL-HLS parts: x264 without B-frames or lookahead, slice threads), "
            f"ffmpeg given the same x264 parameters (`{x264}`)" if parts else
            "the ladder without LL-HLS parts (`part_target = 0`): x264's own `veryfast` settings on both sides")
    title = "## Ladder transcode (bench/ladder.sh)" if parts else "## Ladder transcode without parts (LADDER_PARTS=0 bench/ladder.sh)"
    table = [
        title, "",
        f"60 s 720p30 FLV → src + 720p/480p/360p, CMAF (fMP4) on both sides, x264 veryfast, 2 s closed GOPs, VBV, "
        f"bicubic scaling, frames passed through; {mode}. {runs} interleaved runs, {r['date']}, median (min–max).", "",
        "| | sealcast | ffmpeg | ratio ffmpeg/ours | A/A noise | goal |",
        "|---|---|---|---|---|---|",
        f"| CPU-seconds | {r['cpu_seconds']['sealcast']['median']:.1f} | {r['cpu_seconds']['ffmpeg']['median']:.1f} | {rc['median']:.2f} ({rc['min']:.2f}–{rc['max']:.2f}) | {r['noise_floor_ffmpeg_aa']['cpu']['median']:.2f} | ≥ 1.0 ({'met' if rc['median'] >= 1.0 else 'NOT met'}: {rc['median']:.3f}) |",
        f"| wall seconds | {r['wall_seconds']['sealcast']['median']:.1f} | {r['wall_seconds']['ffmpeg']['median']:.1f} | {rw['median']:.2f} ({rw['min']:.2f}–{rw['max']:.2f}) | {r['noise_floor_ffmpeg_aa']['wall']['median']:.2f} | ≥ 1.3 ({'met' if rw['median'] >= 1.3 else 'NOT met'}: {rw['median']:.3f}) |",
        "",
        "Like for like (run 1): bitrate within 5 % and PSNR against the source, scaled to the rung, within 0.1 dB of ffmpeg's, "
        f"per rung: **{'yes' if like_for_like else 'NO: the ratios above compare different work'}**.", "",
        "| rung | sealcast segments | sealcast kb/s | ffmpeg segments | ffmpeg kb/s | kb/s ours/ffmpeg | PSNR dB ours / ffmpeg | Δ dB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for rung in RUNGS:
        o, f, c = r["rungs"]["sealcast"][rung], r["rungs"]["ffmpeg"][rung], r["checks"][rung]
        p = c.get("psnr_db")
        ps = f"{p['sealcast']:.2f} / {p['ffmpeg']:.2f}" if p and None not in p.values() else "— (copied)"
        d = f"{c['psnr_delta_db']:+.2f}" if c.get("psnr_delta_db") is not None else "—"
        table.append(f"| {rung} | {o['segments']} | {o['kbps']:.0f} | {f['segments']} | {f['kbps']:.0f} | {c['kbps_ratio']:.3f} | {ps} | {d} |")
    table += ["", "Run it with `bench/ladder.sh [RUNS]` (`LADDER_PARTS=0` for the ladder without parts); "
              f"raw numbers in `{name}`.", ""]
    notes = "bench/ladder-notes.md"
    if parts and os.path.exists(notes):
        table[-2:-2] = [open(notes).read().strip(), ""]
    section = "\n".join(table)
    # The variant without parts goes right after the default's section.
    put(section, title, after=None if parts else "## Ladder transcode (bench/ladder.sh)", results=name)
    print(section)
    if not like_for_like:
        sys.exit("ladder: the outputs are not like for like (bitrate or PSNR per rung differ beyond the limits); see the table")


if __name__ == "__main__":
    main(sys.argv)
