"""Clients that flood one preview, in their own process (the flood bench's own loop stays free).

Through our preview proxy, at once: `gets` clients asking the app's `progress` as fast as it
answers (small GETs), `downloads` clients fetching `big?mb=...` over and over, and `echoes`
WebSockets echoing 32-byte messages. Each client has its own connection. Prints "ready" once
every client has had its first answer, and on stdin's close (or after the time limit) stops them
and prints what they did as JSON: requests, bytes, echoes and the statuses seen.
Usage: python -m bench.preview_flood_client <preview url> <token> <gets> <downloads> <echoes>
       <download MiB> <max seconds>
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import Counter
from typing import Any

import requests
from websockets.exceptions import WebSocketException

from .preview_bench import _download, _echo_trips


class Clients:
    def __init__(self, base: str, token: str, mib: int, deadline: float) -> None:
        self.base, self.mib, self.deadline = base, mib, deadline
        self.headers = {"Authorization": f"token {token}"}
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()

    def _running(self) -> bool:
        return not self.stop.is_set() and time.monotonic() < self.deadline

    def _count(self, **counts: int) -> None:
        with self.lock:
            self.counts.update(counts)

    def _session(self) -> requests.Session:
        session = requests.Session()
        session.headers.update(self.headers)
        return session

    def get(self, first: threading.Event) -> None:
        with self._session() as session:
            while self._running():
                try:
                    reply = session.get(self.base + "progress", timeout=60)
                    self._count(gets=1, **{f"status_{reply.status_code}": 1})
                except requests.RequestException:
                    self._count(get_errors=1)
                first.set()

    def download(self, first: threading.Event) -> None:
        size = self.mib * 1024 * 1024
        with self._session() as session:
            while self._running():
                try:
                    _download(session, f"{self.base}big?mb={self.mib}", size)
                    self._count(downloads=1, download_bytes=size)
                except (requests.RequestException, RuntimeError):
                    self._count(download_errors=1)
                first.set()

    def echo(self, first: threading.Event) -> None:
        url = "ws" + self.base.removeprefix("http") + "ws"
        while self._running():
            try:
                self._count(echoes=len(_echo_trips(url, self.headers, 100)))
            except (OSError, WebSocketException, RuntimeError):
                self._count(echo_errors=1)
            first.set()


def flood(base: str, token: str, sizes: list[int], mib: int, limit_s: float) -> dict[str, Any]:
    clients = Clients(base, token, mib, time.monotonic() + limit_s)
    gets, downloads, echoes = sizes
    kinds = [clients.get] * gets + [clients.download] * downloads + [clients.echo] * echoes
    firsts = [threading.Event() for _ in kinds]
    threads = [threading.Thread(target=k, args=(f,)) for k, f in zip(kinds, firsts, strict=True)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for first in firsts:
        first.wait(timeout=60)
    print("ready", flush=True)
    reader = threading.Thread(target=sys.stdin.read, daemon=True)
    reader.start()
    reader.join(timeout=max(0.0, clients.deadline - time.monotonic()))
    clients.stop.set()
    for thread in threads:
        thread.join(timeout=120)
    return {**clients.counts, "seconds": time.monotonic() - started}


def main() -> None:
    base, token, gets, downloads, echoes, mib, limit = sys.argv[1:8]
    sizes = [int(gets), int(downloads), int(echoes)]
    print(json.dumps(flood(base, token, sizes, int(mib), float(limit))))


if __name__ == "__main__":
    main()
