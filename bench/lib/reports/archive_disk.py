"""The report of bench/archive-disk.sh: disk per recorded hour (issue 49)."""
import sys


def settle(argv):
    """`archive_disk.py settle NODE STREAM LIMIT`: waits (up to LIMIT seconds) until NODE
    lists a recording of STREAM and its archive spool is empty; prints the recording."""
    import json, time, urllib.request
    node, stream, limit = argv[1], argv[2], float(argv[3])
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            listed = json.load(urllib.request.urlopen(f"{node}/api/v1/recordings", timeout=5))
            mine = [r for r in listed if r.get("stream") == stream]
            metrics = urllib.request.urlopen(f"{node}/metrics", timeout=5).read().decode()
            spool = sum(float(l.split()[-1]) for l in metrics.splitlines()
                        if l.startswith("sealcast_archive_spool_bytes"))
            if mine and spool == 0:
                print(json.dumps(mine[0]))
                return
        except OSError:
            pass
        time.sleep(1)
    raise SystemExit("no archived recording")


def du(path):
    """Bytes of the files under `path` (0 when it is not there), as `du -sb` counts them."""
    import subprocess
    try:
        out = subprocess.run(["du", "-sb", path], check=True, capture_output=True, text=True).stdout
    except subprocess.CalledProcessError:
        return 0
    return int(out.split()[0])


def measure(argv):
    """`archive_disk.py measure DIR NODES SECS`: the disk the run left, as JSON."""
    import json, os
    d, nodes, secs = argv[1], int(argv[2]), int(argv[3])
    recording = json.load(open(f"{d}/recording.json"))
    data = f"{d}/data"
    archive = du(f"{data}/archive")
    spool = du(f"{data}/recordings")
    other = {name: du(f"{data}/{name}") for name in sorted(os.listdir(data))
             if name not in ("archive", "recordings")}
    duration = float(recording["duration_secs"])
    print(json.dumps({
        "nodes": nodes, "seconds": secs, "recorded_secs": duration,
        "renditions": recording.get("renditions", []),
        "archive_bytes": archive, "spool_bytes": spool, "other_bytes": other,
        "archive_gb_per_hour": archive * 3600 / duration / 1e9,
        "per_node_copies_gb_per_hour": nodes * archive * 3600 / duration / 1e9,
    }))


def report(argv):
    """`archive_disk.py report RESULT DOCS`: bench/out/archive-disk.json and the section."""
    import datetime, json
    sys.dont_write_bytecode = True; sys.path.insert(0, "bench"); from docsection import notes, put
    r = json.load(open(argv[1]))
    docs = argv[2]
    json.dump(r, open("bench/out/archive-disk.json", "w"), indent=1)
    other = sum(r["other_bytes"].values())
    lines = ["## Disk per recorded hour (bench/archive-disk.sh)", "",
        f"`bench/archive-disk.sh {r['seconds']} {r['nodes']}`, {datetime.date.today()}: `sealcast up` with {r['nodes']} broadcast nodes records a 720p30 `sealcast source` (3000 kb/s) through the ladder ({', '.join(r['renditions'])}; CMAF, 2 s segments, 0.333 s parts) into its local archive; measured with `du` once the recording is listed and the spool has drained. Before issue 49 every node recorded its own copy on its own disk: that column is the node count times the archive's figure.", "",
        "| nodes | recorded | archive | per recorded hour | spool after upload | catalog, keys and the rest | one copy per node (before) |",
        "|---|---|---|---|---|---|---|",
        f"| {r['nodes']} | {r['recorded_secs']:.0f} s | {r['archive_bytes'] / 1e6:.1f} MB | {r['archive_gb_per_hour']:.2f} GB | {r['spool_bytes'] / 1e6:.2f} MB | {other / 1e6:.1f} MB | {r['per_node_copies_gb_per_hour']:.2f} GB |"]
    lines += notes("bench/archive-disk-notes.md")
    section = "\n".join(lines) + "\n"
    if docs:
        put(section, "## Disk per recorded hour", docs, results="bench/out/archive-disk.json")
    print(section)


COMMANDS = {"settle": settle, "measure": measure, "report": report}


def main(argv):
    """Runs COMMAND (argv[1]) with argv[1:] (the command in place of the program's name)."""
    COMMANDS[argv[1]](argv[1:])


if __name__ == "__main__":
    main(sys.argv)
