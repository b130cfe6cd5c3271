"""The Python of bench/lb-profile.sh (issue 46 item 4: report code out of the script's heredocs),
run by it from the repository's root as `python3 bench/lib/reports/lb_profile.py ARG...`.
"""
import sys


def main(argv):
    """bench/lb-profile.sh runs `lb_profile.py "$WORK" "$RESULTS" "$DOCS"` (environment: CLIENTS, PLAYLIST_RPS, REQUESTS, SEGMENT_RPS, SEG_CLIENTS, SEG_REQUESTS)."""
    import collections, datetime, json, os, re, subprocess, sys
    sys.dont_write_bytecode = True; sys.path.insert(0, "bench"); from docsection import notes, put
    work, results, docs = argv[1:4]
    n = {"playlist": int(os.environ["REQUESTS"]), "segment": int(os.environ["SEG_REQUESTS"])}

    OURS = ("loadbalancer", "sealcast", "domain", "certs", "plumbing")
    def group(line):
        """The crate (or library) an annotated `file:function [object]` line belongs to."""
        if "memmove" in line or "memcpy" in line:
            return "memcpy"
        file, _, func = line.partition(":")
        obj = re.search(r"\[(\S+?)\]$", line)
        m = re.search(r"index\.crates\.io-[0-9a-f]+/([A-Za-z0-9_-]+?)-\d+\.\d+", file)
        if m:
            return m.group(1)
        if "/rustc/" not in file and any(f"/{c}/src/" in file for c in OURS):
            return "sealcast (our code)"
        # Without a source file (or inlined from std), by the function's path or symbol.
        name = func.split(" as ")[0].lstrip("<")
        m = re.match(r"([a-z0-9_]+)::", name)
        if m:
            crate = m.group(1).replace("_", "-")
            crate = "sealcast (our code)" if crate in OURS else crate
            return crate + (" (inlined std)" if "/rustc/" in file else "")
        for prefix, crate in (("ring_core_", "ring"), ("mi_", "libmimalloc-sys"), ("_mi_", "libmimalloc-sys")):
            if name.startswith(prefix):
                return crate
        return os.path.basename(obj.group(1)) if obj else "other"

    def read(path):
        total, parts = 0, collections.Counter()
        for line in open(path):
            m = re.match(r"^\s*([\d,]+) \([ \d.]+%\)  (\S.*)$", line)
            if not m:
                continue
            count, fn = int(m.group(1).replace(",", "")), m.group(2)
            if "PROGRAM TOTALS" in fn:
                total = count
            else:
                parts[group(fn)] += count
        return total, parts

    out = {"benchmark": "load-balancer instructions per request under callgrind: sealcast lb (Pingora) vs HAProxy, TLS h2, sticky cookie, one nginx backend",
           "date": datetime.date.today().isoformat(), "clients": {"playlist": int(os.environ["CLIENTS"]), "segment": int(os.environ["SEG_CLIENTS"])}, "requests": n,
           "rps": {"playlist": int(os.environ["PLAYLIST_RPS"]), "segment": int(os.environ["SEGMENT_RPS"])},
           "valgrind": subprocess.run(["valgrind", "--version"], capture_output=True, text=True).stdout.strip(), "kinds": {}}
    for kind in ["playlist", "segment"]:
        e = {}
        for name in ["sealcast", "haproxy"]:
            total, parts = read(f"{work}/cg.{name}.{kind}.txt")
            h2 = open(f"{work}/cg.{name}.{kind}.h2load").read()
            ok = re.search(r"(\d+) succeeded", h2)
            # Under valgrind a health check can miss its timeout (ours: 800 ms) and take the
            # backend out of rotation for a moment; the few requests answered 503 meanwhile
            # are counted (they cost less than a proxied one) and reported.
            succeeded = int(ok.group(1)) if ok else 0
            if succeeded < 0.95 * n[kind]:
                sys.exit(f"lb-profile: {name} {kind}: too many requests failed: {h2}")
            tls = re.search(r"TLS Protocol: (\S+).*Cipher: (\S+).*Application protocol: (\S+)", h2)
            e[name] = {"instructions": total, "per_request": total / n[kind], "failed": n[kind] - succeeded,
                       "tls": " ".join(tls.groups()) if tls else "",
                       "memcpy_per_request": parts["memcpy"] / n[kind],
                       "per_request_without_memcpy": (total - parts["memcpy"]) / n[kind],
                       "by_crate_per_request": {k: v / n[kind] for k, v in parts.most_common(14)}}
        e["ratio_haproxy_over_ours"] = e["haproxy"]["per_request"] / e["sealcast"]["per_request"]
        e["ratio_without_memcpy"] = e["haproxy"]["per_request_without_memcpy"] / e["sealcast"]["per_request_without_memcpy"]
        out["kinds"][kind] = e
    json.dump(out, open(results, "w"), indent=1)
    for kind, e in out["kinds"].items():
        print(f"{kind}: ours {e['sealcast']['per_request']:,.0f} instructions/request, HAProxy {e['haproxy']['per_request']:,.0f} "
              f"(HAProxy/ours {e['ratio_haproxy_over_ours']:.2f}; without memcpy {e['ratio_without_memcpy']:.2f}); "
              f"TLS {e['sealcast']['tls']} / {e['haproxy']['tls']}")
    if not docs:
        sys.exit(0)

    lines = ["## Load-balancer instructions per request (bench/lb-profile.sh)", "",
             f"User-space instructions per request counted by valgrind's callgrind ({out['valgrind']}), the same load on each: "
             f"h2load over TLS + h2 with the backend's sticky cookie, one nginx backend: {n['playlist']:,} playlist requests (193 B) from "
             f"{out['clients']['playlist']} clients at {out['rps']['playlist']} requests/s each, {n['segment']:,} segment requests (200 KiB) from "
             f"{out['clients']['segment']} clients at {out['rps']['segment']}/s each; counted from just before the load to just after it "
             f"(the clients' TLS handshakes included), {out['date']}. Deterministic, so one run; the kernel's "
             "share is not in it (bench/lb.sh's CPU-seconds are). Valgrind's virtual CPU has no SHA or VAES instructions, so "
             "SHA-256 and AES-GCM are overstated for both. Valgrind also counts each byte a `rep movsb` copies as an "
             "instruction (glibc's memcpy uses it for large copies on this CPU; checked by hand: a C program's 200 KiB memcpy counts 204,802), "
             "where the CPU moves tens of bytes per cycle, so copies are overstated too: the figures without memcpy are the "
             "closer measure of the code's own work.", "",
             "| request | sealcast lb | HAProxy | HAProxy / ours | without memcpy: sealcast lb | HAProxy | HAProxy / ours | TLS (ours / HAProxy) |",
             "|---|---|---|---|---|---|---|---|"]
    for kind, e in out["kinds"].items():
        lines.append(f"| {kind} | {e['sealcast']['per_request']:,.0f} | {e['haproxy']['per_request']:,.0f} | "
                     f"{e['ratio_haproxy_over_ours']:.2f} | {e['sealcast']['per_request_without_memcpy']:,.0f} | "
                     f"{e['haproxy']['per_request_without_memcpy']:,.0f} | {e['ratio_without_memcpy']:.2f} | "
                     f"{e['sealcast']['tls']} / {e['haproxy']['tls']} |")
    failed = {f"{name} {kind}": e[name]["failed"] for kind, e in out["kinds"].items() for name in ["sealcast", "haproxy"] if e[name]["failed"]}
    if failed:
        lines += ["", "Requests answered with an error under valgrind (a health check that missed its timeout took the "
                  "backend out of rotation for a moment; counted in the per-request figure): "
                  + ", ".join(f"{k} {v}" for k, v in failed.items()) + "."]
    lines += ["", "Ours by crate (exclusive instructions per request, the largest first):", "",
              "| playlist | | segment | |", "|---|---|---|---|"]
    pl = list(out["kinds"]["playlist"]["sealcast"]["by_crate_per_request"].items())
    sg = list(out["kinds"]["segment"]["sealcast"]["by_crate_per_request"].items())
    for i in range(max(len(pl), len(sg))):
        a = f"{pl[i][0]} | {pl[i][1]:,.0f}" if i < len(pl) else " | "
        b = f"{sg[i][0]} | {sg[i][1]:,.0f}" if i < len(sg) else " | "
        lines.append(f"| {a} | {b} |")
    lines += notes("bench/lb-profile-notes.md")
    lines += ["", "Run it with `bench/lb-profile.sh [REQUESTS [CLIENTS]]`; raw numbers in `bench/out/lb-profile.json`."]
    section = "\n".join(lines) + "\n"
    put(section, "## Load-balancer instructions per request", docs, results=results)


if __name__ == "__main__":
    main(sys.argv)
