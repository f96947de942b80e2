"""Issue 17: another workspace's REST GET while clients flood one workspace's ports listing.

The flooded workspace listens on thousands of sockets (node, started in its container); the
victim's `GET api/code/workspaces/{id}` is timed alone (baseline) and under the flood, in the
same run, alternating phases so drift on a shared machine hits both alike.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import docker
import requests

from .server import BenchServer
from .stats import percentile, summarize

# Below the kernel's ephemeral range (32768-60999): Docker's embedded DNS listens on 127.0.0.11 at
# a random port from it in every container of a user-defined network, and a listener there made
# one run in a dozen fail with EADDRINUSE.
FIRST_PORT = 10000
LISTENERS = """
const net = require("net");
const fs = require("fs");
const [first, count] = process.argv.slice(1).map(Number);
let up = 0;
for (let port = first; port < first + count; port++) {
  const server = net.createServer();
  server.on("error", (err) => {
    fs.writeFileSync("/tmp/listening", `port ${port}: ${err.message}`);
    process.exit(1);
  });
  server.listen(port, "0.0.0.0", () => {
    if (++up === count) fs.writeFileSync("/tmp/listening", "ok");
  });
}
"""


def start_listeners(client: docker.DockerClient, container_name: str, count: int) -> None:
    """`count` listening sockets in the container (one node process); waits until all listen."""
    if FIRST_PORT + count > 32768:
        raise ValueError(f"{count} sockets from port {FIRST_PORT} reach the ephemeral range")
    container = client.containers.get(container_name)
    container.exec_run(["node", "-e", LISTENERS, str(FIRST_PORT), str(count)], detach=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status = container.exec_run(["cat", "/tmp/listening"])
        if status.exit_code == 0 and status.output:
            if status.output == b"ok":
                return
            raise RuntimeError(f"listening on {count} sockets failed: {status.output.decode()}")
        time.sleep(0.5)
    raise RuntimeError(f"{count} sockets did not all listen within 120 s")


def victim_gets(server: BenchServer, workspace_id: str, seconds: float) -> list[float]:
    url = server.url(f"api/code/workspaces/{workspace_id}")
    samples: list[float] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.perf_counter()
        response = server.http.get(url, timeout=120)
        samples.append(time.perf_counter() - started)
        if response.status_code != 200:
            raise RuntimeError(f"victim GET answered {response.status_code}")
    return samples


def _flood(server: BenchServer, workspace_id: str, stop: threading.Event, out: list[Any]) -> None:
    """One client polling the ports listing as fast as it answers (its own connection)."""
    session = requests.Session()
    session.headers.update(server.auth_headers)
    url = server.url(f"api/code/workspaces/{workspace_id}/ports")
    try:
        while not stop.is_set():
            started = time.perf_counter()
            response = session.get(url, timeout=120)
            out.append((time.perf_counter() - started, len(response.content), response.status_code))
    except requests.RequestException:
        out.append((0.0, 0, 0))  # counted as a failed listing: the run stops on it
    finally:
        session.close()


class ListingFlood:
    """`clients` threads polling one workspace's ports listing until stopped."""

    def __init__(self, server: BenchServer, workspace_id: str, clients: int, out: list[Any]):
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=_flood, args=(server, workspace_id, self._stop, out))
            for _ in range(clients)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=180)


def _exec_count(client: docker.DockerClient, container: str, since: float, until: float) -> int:
    events = client.events(since=since, until=until, filters={"container": container}, decode=True)
    return sum(1 for e in events if str(e.get("Action", "")).startswith("exec_create"))


def bench_ports(
    server: BenchServer,
    client: docker.DockerClient,
    flooded: dict[str, Any],
    victim: dict[str, Any],
    *,
    sockets: int,
    clients: int,
    seconds: float,
    rounds: int,
) -> dict[str, Any]:
    start_listeners(client, flooded["container_name"], sockets)
    listed = server.api("GET", f"api/code/workspaces/{flooded['id']}/ports").json()
    baseline: list[float] = []
    flooded_gets: list[float] = []
    listings: list[Any] = []
    execs = 0
    flood_seconds = 0.0
    for _ in range(rounds):
        baseline += victim_gets(server, victim["id"], seconds)
        flood = ListingFlood(server, flooded["id"], clients, listings)
        since = time.time()
        flood.start()
        flooded_gets += victim_gets(server, victim["id"], seconds)
        flood.stop()
        until = time.time()
        flood_seconds += until - since
        execs += _exec_count(client, flooded["container_name"], since, until + 1)
    bad = [code for _, _, code in listings if code != 200]
    if bad:
        raise RuntimeError(f"ports listing answered {bad[0]} under the flood")

    def row(samples: list[float]) -> dict[str, Any]:
        return {**summarize(samples), "p99_ms": percentile([s * 1000 for s in samples], 0.99)}

    return {
        "sockets": sockets,
        "clients": clients,
        "seconds_per_phase": seconds,
        "rounds": rounds,
        "listed_ports": len(listed["ports"]),
        "truncated": listed.get("truncated"),
        "listing_bytes": max(size for _, size, _ in listings) if listings else 0,
        "listings": len(listings),
        "listing": row([t for t, _, _ in listings]) if listings else None,
        "execs_in_flooded_container": execs,
        "execs_per_second": execs / flood_seconds if flood_seconds else None,
        "baseline": row(baseline),
        "flooded": row(flooded_gets),
    }
