# Mirrors a live LL-HLS rendition from a node into a directory for nginx, following it the
# way a low-latency player does: a blocking reload for the part after the last one listed;
# on each answer, the parts, segments and init segment it lists that are not here yet,
# then the playlist (the node's own text); each file written beside its place and renamed
# into it, so nginx never serves a partial file nor a playlist listing a file it lacks.
# Files not listed for 30 s are removed. Prints "ready" once it has a playlist.
import http.client, pathlib, re, sys, time
host, port, master, playlist, root = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
PART = re.compile(r'^#EXT-X-PART:.*URI="(\d+)\.(\d+)\.m4s"', re.M)
LISTED = re.compile(r'^(?:#EXT-X-(?:PART|MAP):.*URI="([^"]+)".*|([^#\n][^\n]*))$', re.M)
node = http.client.HTTPConnection(host, port, timeout=15)

def fetch(path):
    """The body of a 200 answer, reconnecting once when a kept-alive connection was lost."""
    global node
    for attempt in range(2):
        try:
            node.request("GET", path)
            answer = node.getresponse()
            body = answer.read()
            break
        except (OSError, http.client.HTTPException):
            node.close()
            node = http.client.HTTPConnection(host, port, timeout=15)
            if attempt:
                raise
    if answer.status != 200:
        raise OSError(f"{path}: HTTP {answer.status}")
    return body

def publish(path, body):
    dest = pathlib.Path(root + path)
    dest.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    tmp = dest.with_name(".tmp-" + dest.name)
    tmp.write_bytes(body)
    tmp.chmod(0o644)
    tmp.replace(dest)

publish(master, fetch(master))
base = playlist.rsplit("/", 1)[0] + "/"
listed_at, text = {}, ""
while True:
    last = PART.findall(text)
    query = f"?_HLS_msn={last[-1][0]}&_HLS_part={int(last[-1][1]) + 1}" if last else ""
    try:
        body = fetch(playlist + query)
        fresh, text, now = not text, body.decode(), time.monotonic()
        for m in LISTED.finditer(text):
            uri = m.group(1) or m.group(2)
            if uri not in listed_at:
                publish(base + uri, fetch(base + uri))
            listed_at[uri] = now
        publish(playlist, body)
        for uri in [u for u, at in listed_at.items() if now - at > 30]:
            pathlib.Path(root + base + uri).unlink(missing_ok=True)
            del listed_at[uri]
        if fresh:
            print("ready", flush=True)
    except (OSError, http.client.HTTPException, UnicodeDecodeError) as e:
        print(f"mirror: {e}", file=sys.stderr, flush=True)
        text = ""
        time.sleep(0.2)
