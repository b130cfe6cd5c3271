"""The report of bench/dvr-seek.sh: time to play after going back in a live stream (issue 49)."""
import datetime
import json
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, "bench")
from docsection import notes, put  # noqa: E402


def cell(summary, key):
    value = (summary or {}).get(key)
    return "—" if value is None else f"{value / 1000:.2f} s"


def main(argv):
    result, docs = argv[1], argv[2] if len(argv) > 2 else ""
    r = json.load(open(result))
    json.dump(r, open("bench/out/dvr-seek.json", "w"), indent=1)
    back, rounds = r["back_s"], r["rounds"]
    ours, peer = r["ours"], r.get("peer") or {}
    behind = [run["behind_s"] for run in ours["runs"] if run.get("behind_s") is not None]
    refused = sum(run.get("refused", 0) or 0 for run in ours["runs"])
    verified = sum(run.get("verified", 0) or 0 for run in ours["runs"])
    lines = ["## Seeking back in a live stream (bench/dvr-seek.sh)", "",
        f"`bench/dvr-seek.sh {os.environ.get('BACK', back)} {os.environ.get('ROUNDS', rounds)}`, {datetime.date.today()}: "
        f"a live 854x480 30 fps stream; a fresh headless Chromium plays it live, then goes {back:.0f} s behind live; "
        "the time is from the request to the video playing with data ahead, each side once per round, interleaved. "
        "Ours: the player page through the load balancer, the stream's time-shift window (`/live/{s}/dvr.m3u8`, "
        "`sealcast up`, a 30-minute `--dvr-window`), every fragment verified in the page. "
        "Peer: hls.js (the same build) on FFmpeg's hls muxer output (2 s fMP4 segments, a 30-minute sliding playlist) "
        "served as files by nginx, nothing verified. Goal: within 1 s.", "",
        "| | p50 | min | max | failed rounds |",
        "|---|---|---|---|---|",
        f"| sealcast | {cell(ours['seek_ms'], 'p50')} | {cell(ours['seek_ms'], 'min')} | {cell(ours['seek_ms'], 'max')} | {ours['seek_ms'].get('failed', 0)} |"]
    if peer:
        s = peer["seek_ms"]
        lines.append(f"| nginx + FFmpeg hls (peer) | {cell(s, 'p50')} | {cell(s, 'min')} | {cell(s, 'max')} | {s.get('failed', 0)} |")
    lines += ["", f"Behind live after the seek, read from the stamp in the picture (ours): "
        f"{', '.join(f'{b:.1f} s' for b in behind) or '—'}; fragments verified over the rounds: {verified}, refused: {refused}."]
    lines += notes("bench/dvr-seek-notes.md")
    section = "\n".join(lines) + "\n"
    if docs:
        put(section, "## Seeking back in a live stream", docs, results="bench/out/dvr-seek.json")
    print(section)


if __name__ == "__main__":
    main(sys.argv)
