"""Programs a network test runs inside a workspace: a TCP+UDP listener and a one-shot probe.

A blocked connection fails with "No route to host" (EHOSTUNREACH, the firewall's ICMP answer),
which a closed port ("Connection refused") or a missing listener cannot produce.
"""

from __future__ import annotations

import errno
import time
from collections.abc import Callable

PORT = 8077
BLOCKED = f"error {errno.EHOSTUNREACH}"

LISTENER = f"""
import socket, threading
def udp():
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("0.0.0.0", {PORT}))
    while True:
        data, peer = u.recvfrom(64)
        u.sendto(b"pong", peer)
threading.Thread(target=udp, daemon=True).start()
t = socket.socket()
t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind(("0.0.0.0", {PORT}))
t.listen()
while True:
    c, _ = t.accept()
    c.sendall(b"hello")
    c.close()
"""

PROBE = """
import socket, sys
host, port, proto = sys.argv[1], int(sys.argv[2]), sys.argv[3]
kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
s = socket.socket(socket.AF_INET, kind)
s.settimeout(3)
try:
    s.connect((host, port))
    if proto == "udp":
        s.send(b"ping")
    print("open", s.recv(16).decode())
except socket.timeout:
    print("timeout")
except OSError as err:
    print("error", err.errno)
"""


# The kernel sends at most one ICMP "unreachable" per second to one address after a burst of six
# (net.ipv4.icmp_ratelimit, icmp_ratemask), and a new container may reuse the address of one that
# just had its share: a probe whose answer was held back times out. One more try after the
# bucket refills tells a rate-limited answer from a real silence.
ICMP_REFILL = 1.1
TRIES = 3


def probe_answer(run: Callable[[list[str]], str], host: str, port: int, proto: str) -> str:
    """Run PROBE with `run` (inside a workspace): 'open <greeting>', 'error N' or 'timeout'.

    A timeout is asked again after the ICMP bucket refills (see ICMP_REFILL).
    """
    for attempt in range(TRIES):
        if attempt:
            time.sleep(ICMP_REFILL)
        answer = run(["python3", "-c", PROBE, host, str(port), proto])
        if answer != "timeout":
            break
    return answer
