"""The report of bench/c2pa-overhead.sh: `measure` follows a stream's rungs and counts
bytes, `report` writes the section of docs/benchmarks.md."""
import sys

SCHEME = b"urn:c2pa:verifiable-segment-info"
C2PA_UUID = bytes.fromhex("d8fec3d61b0e483c92975828877ec481")


def boxes(data):
    """(type, offset, size) of every top-level box; stops at one that does not fit."""
    at = 0
    while at + 8 <= len(data):
        size = int.from_bytes(data[at:at + 4], "big")
        kind = data[at + 4:at + 8]
        if size == 1 and at + 16 <= len(data):
            size = int.from_bytes(data[at + 8:at + 16], "big")
        if size < 8 or at + size > len(data):
            return
        yield kind, at, size
        at += size


def vsi_bytes(data):
    return sum(size for kind, at, size in boxes(data)
               if kind == b"emsg" and data[at + 12:at + 12 + len(SCHEME)] == SCHEME)


def c2pa_box(data):
    return sum(size for kind, at, size in boxes(data)
               if kind == b"uuid" and data[at + 8:at + 24] == C2PA_UUID)


def measure(argv):
    """`c2pa_overhead.py measure BASE SECONDS`: follows BASE/{rung}/index.m3u8 for SECONDS."""
    import json, time, urllib.request
    base, secs = argv[1], float(argv[2])
    get = lambda url: urllib.request.urlopen(url, timeout=20).read()
    rungs = [l.split("/")[0] for l in get(base + "/master.m3u8").decode().splitlines()
             if l and not l.startswith("#")]
    seen = {r: set() for r in rungs}
    out = {r: {"parts": 0, "part_bytes": 0, "part_vsi": 0, "part_sig": 0,
               "segments": 0, "segment_bytes": 0, "segment_vsi": 0, "segment_sig": 0}
           for r in rungs}
    for r in rungs:
        init = get(f"{base}/{r}/init.mp4")
        out[r]["init_bytes"] = len(init)
        out[r]["init_c2pa"] = c2pa_box(init)
    end = time.monotonic() + secs
    first = True
    while time.monotonic() < end:
        for r in rungs:
            text = get(f"{base}/{r}/index.m3u8").decode()
            uris = []
            for line in text.splitlines():
                if line.startswith("#EXT-X-PART:") and "URI=" in line:
                    uris.append(("part", line.split('URI="')[1].split('"')[0]))
                elif line and not line.startswith("#"):
                    uris.append(("segment", line))
            for kind, uri in uris:
                if uri in seen[r]:
                    continue
                seen[r].add(uri)
                if first:
                    continue  # what was listed before the count started
                try:
                    data, sig = get(f"{base}/{r}/{uri}"), get(f"{base}/{r}/{uri}.sig")
                except Exception:
                    continue
                o = out[r]
                o[kind + "s"] += 1
                o[kind + "_bytes"] += len(data)
                o[kind + "_vsi"] += vsi_bytes(data)
                o[kind + "_sig"] += len(sig)
        first = False
        time.sleep(0.3)
    print(json.dumps({"seconds": secs, "rungs": out}))


def report(argv):
    """`c2pa_overhead.py report MEASURE.json SECONDS DOCS`."""
    import datetime, json, sys
    sys.dont_write_bytecode = True; sys.path.insert(0, "bench"); from docsection import notes, put
    m = json.load(open(argv[1]))
    secs, docs = argv[2], argv[3]
    json.dump(m, open("bench/out/c2pa-overhead.json", "w"), indent=1)
    pct = lambda a, b: f"{100 * a / b:.2f} %" if b else "—"
    table = ["## C2PA bytes per viewer (bench/c2pa-overhead.sh)", "",
        f"`bench/c2pa-overhead.sh {secs}`, {datetime.date.today()}: `sealcast up`, the default ladder from a 720p30 3000 kb/s `sealcast source` publish, CMAF with 2 s segments and 0.333 s parts; every part and segment listed during {secs} s fetched once with its statement. C2PA is the VSI `emsg` boxes in the media (a part's own; a segment's own and its parts'), as a share of the media bytes; statements are the `.sig` files a viewer fetches beside them; the init segment carries the manifest once per rendition (docs/provenance.md).", "",
        "| rung | parts | C2PA in parts | statements beside parts | segments | C2PA in segments | statements beside segments | init segment | of it the C2PA box |",
        "|---|---|---|---|---|---|---|---|---|"]
    for r, o in m["rungs"].items():
        table.append(f"| {r} | {o['parts']} | {pct(o['part_vsi'], o['part_bytes'])} | {pct(o['part_sig'], o['part_bytes'])} | {o['segments']} | {pct(o['segment_vsi'], o['segment_bytes'])} | {pct(o['segment_sig'], o['segment_bytes'])} | {o['init_bytes']} B | {o['init_c2pa']} B |")
    table += notes("bench/c2pa-overhead-notes.md")
    section = "\n".join(table) + "\n"
    if docs:
        put(section, "## C2PA bytes per viewer", docs, results="bench/out/c2pa-overhead.json")
    print(section)


COMMANDS = {"measure": measure, "report": report}


def main(argv):
    """Runs COMMAND (argv[1]) with argv[1:] (the command in place of the program's name)."""
    COMMANDS[argv[1]](argv[1:])


if __name__ == "__main__":
    main(sys.argv)
