"""Viewer verification in Chromium (bench/viewer-verify.sh): one viewer plays a live stream
at one rung for SECONDS, and the page's own records say what verifying cost it.

- requests and bytes per viewer-second, by kind, from the Resource Timing entries
  (`encodedBodySize`: the body as it came over the wire): media (segments, parts, init),
  sidecars (`.sig`), part-key delegations (`.partkey`), trust material (`/trust/v1/`),
  playlists;
- verification CPU per viewer-second: `window.sealcast.verification.timeMs`, the time the
  loader spent inside its checks (digest, signature, delegation), over the media seconds
  played;
- what the same requests would have cost without the part delegation: every part's
  sidecar at the size of an ML-DSA-65 part envelope instead (computed, not measured), and
  no delegation fetched.

A WebDriver client of its own (chromedriver's HTTP API through urllib), so the script
needs nothing but Debian's chromium and chromium-driver.

Usage: python3 bench/viewer_verify.py ORIGIN STREAM RENDITION SECONDS QUERY > result.json
"""
import json
import subprocess
import sys
import tempfile
import time
import urllib.request

# An ML-DSA-65 part envelope: u32 ‖ part statement ‖ u32 ‖ 3309-byte signature; the
# statement of stream S, rendition R is 27 + 1 + 16 + (1+|S|) + 8 + (1+|R|) + 8 + 4 + 1 +
# 8 + 8 + 8 + 8 + 32 bytes.
def mldsa_part_envelope(stream, rendition):
    return 8 + (27 + 1 + 16 + 1 + len(stream) + 8 + 1 + len(rendition) + 8 + 4 + 1 + 32 + 32) + 3309


def call(base, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.loads(r.read() or b"null")["value"]


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def main():
    origin, stream, rendition, seconds, query = sys.argv[1:6]
    seconds = float(seconds)
    port = free_port()
    driver = subprocess.Popen(["chromedriver", f"--port={port}"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    profile = tempfile.mkdtemp(prefix="sealcast-verify-bench-")
    session = None
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(base + "/status", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome", "acceptInsecureCerts": True,
            "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--mute-audio",
                "--autoplay-policy=no-user-gesture-required", "--window-size=960,540",
                f"--user-data-dir={profile}"]}}}}
        session = call(base, "POST", "/session", caps)["sessionId"]
        s = f"/session/{session}"
        run = lambda script, *args: call(base, "POST", s + "/execute/sync", {"script": script, "args": list(args)})
        call(base, "POST", s + "/url", {"url": f"{origin.rstrip('/')}/{query}#live/{stream}"})
        # Plays, on the rung asked for.
        deadline = time.time() + 90
        while time.time() < deadline:
            ok = run("""const s = window.sealcast; const v = document.getElementById('video');
                if (!s || !s.hls || !s.hls.levels.length || v.currentTime <= 0) return false;
                const i = s.levels.findIndex((l) => l.name === arguments[0]);
                if (i < 0) return 'no rendition ' + arguments[0];
                if (s.hls.currentLevel !== i) s.hls.currentLevel = i;
                return s.playingLevel === i;""", rendition)
            if ok is True:
                break
            if isinstance(ok, str):
                raise SystemExit(ok)
            time.sleep(0.5)
        else:
            raise SystemExit("the player did not play the rendition: " + json.dumps(run(
                "return window.sealcast && { v: window.sealcast.verification, e: window.sealcast.errors }")))
        time.sleep(5)
        start = run("""performance.setResourceTimingBufferSize(1000000); performance.clearResourceTimings();
            const v = window.sealcast.verification;
            return { t: document.getElementById('video').currentTime, timeMs: v.timeMs,
                     verified: v.verified, refused: v.refusedCount, wall: performance.now() };""")
        time.sleep(seconds)
        end = run("""const v = window.sealcast.verification;
            const entries = performance.getEntriesByType('resource').map((e) => [e.name, e.encodedBodySize, e.transferSize]);
            return { t: document.getElementById('video').currentTime, timeMs: v.timeMs, mode: v.mode,
                     verified: v.verified, refused: v.refusedCount, wall: performance.now(), entries };""")
    finally:
        if session:
            try:
                call(base, "DELETE", f"/session/{session}")
            except OSError:
                pass
        driver.terminate()
    played = end["t"] - start["t"]
    kinds = {}
    parts = 0
    for url, body, _transfer in end["entries"]:
        path = url.split("?")[0]
        if path.endswith(".sig"):
            kind = "sidecar"
        elif path.endswith(".partkey"):
            kind = "partkey"
        elif "/trust/v1/" in path:
            kind = "trust"
        elif path.endswith(".m3u8"):
            kind = "playlist"
        elif path.endswith(".m4s") or path.endswith(".mp4") or path.endswith(".ts"):
            kind = "media"
        else:
            kind = "other"
        k = kinds.setdefault(kind, {"requests": 0, "bytes": 0})
        k["requests"] += 1
        k["bytes"] += body
    per_s = lambda n: n / played if played > 0 else None
    media = kinds.get("media", {"requests": 0, "bytes": 0})
    added = {k: kinds.get(k, {"requests": 0, "bytes": 0}) for k in ["sidecar", "partkey", "trust"]}
    added_requests = sum(v["requests"] for v in added.values())
    added_bytes = sum(v["bytes"] for v in added.values())
    # Without delegation: each part sidecar at the ML-DSA-65 envelope size, no delegation.
    part_sidecar_bytes = 0
    for url, body, _ in end["entries"]:
        name = url.split("?")[0].rsplit("/", 1)[-1]
        if name.endswith(".m4s.sig") and name.count(".") == 3:
            part_sidecar_bytes += body
            parts += 1
    without = added_bytes - added["partkey"]["bytes"] - part_sidecar_bytes + parts * mldsa_part_envelope(stream, rendition)
    print(json.dumps({
        "mode": end["mode"], "query": query, "rendition": rendition,
        "played_s": played, "wall_s": (end["wall"] - start["wall"]) / 1000,
        "verified": end["verified"] - start["verified"], "refused": end["refused"] - start["refused"],
        "verify_cpu_ms_per_viewer_s": per_s(end["timeMs"] - start["timeMs"]),
        "kinds": kinds,
        "media_bytes_per_s": per_s(media["bytes"]),
        "added_requests_per_s": per_s(added_requests),
        "added_bytes_per_s": per_s(added_bytes),
        "added_bytes_share": added_bytes / media["bytes"] if media["bytes"] else None,
        "parts": parts,
        "without_delegation_bytes_per_s": per_s(without),
        "without_delegation_share": without / media["bytes"] if media["bytes"] else None,
    }))


if __name__ == "__main__":
    main()
