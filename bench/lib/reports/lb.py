"""The Python of bench/lb.sh left in Python (issue 46 item 4): `haproxy-health` talks to
a running HAProxy's stats socket. The report and the TLS check are in sealcast-bench
(`report lb`, `check lb-tls`; bench/viewers/src/reports/lb.rs). Run from the repository's
root as `python3 bench/lib/reports/lb.py haproxy-health SOCKET enable|disable`.
"""
import sys


def haproxy_health(argv):
    """bench/lb.sh runs `lb.py haproxy-health "$WORK/haproxy.sock" "$1"`."""
    import socket, sys
    for server in ("nodes/b1", "nodes/b2"):
        s = socket.socket(socket.AF_UNIX)
        s.connect(argv[1])
        s.sendall(f"{argv[2]} health {server}\n".encode())
        reply = s.makefile().read().strip()
        if reply:
            sys.exit(f"lb: HAProxy: {reply}")


COMMANDS = {"haproxy-health": haproxy_health}


def main(argv):
    """Runs COMMAND (argv[1]) with argv[1:] (the command in place of the program's name)."""
    COMMANDS[argv[1]](argv[1:])


if __name__ == "__main__":
    main(sys.argv)
