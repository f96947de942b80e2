"""Issue 17: another workspace's terminal round trip and REST GET while one workspace floods.

The flooding workspace floods in four ways, one kind per phase and then all at once:

- `terminal`: `yes` in a relayed terminal (read as fast as it comes by a separate process, as a
  browser would) and into its container's log (`/proc/1/fd/1`, by a `docker exec` as root: the
  workspace user cannot open pid 1's descriptors, so this is more than a user can do);
- `ports`: clients polling its ports listing while thousands of sockets listen in it (part 5b);
- `preview`: clients of the app it serves (the preview tests' node app) through our preview
  proxy, in a separate process: small GETs, large downloads and WebSocket echoes at once;
- `all`: the three together.

The victim's keystroke echo through the relay and its `GET api/code/workspaces/{id}` are timed
alone (baseline) and under each flood, in the same run, alternating phases so drift on a shared
machine hits all alike.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import docker

from . import docker_env
from .cpu import machine_busy_s, process_cpu_s
from .ports_bench import ListingFlood, start_listeners, victim_gets
from .preview_bench import APP_PORT, start_app
from .server import BenchServer
from .stats import percentile, summarize
from .terminal_bench import measure_echo
from .terminal_clients import relay_session

ROOT = Path(__file__).resolve().parent.parent
KINDS = ("terminal", "ports", "preview", "all")
LOG_FLOOD = "exec timeout {seconds} sh -c 'yes flooding-the-log > /proc/1/fd/1'"


def _row(samples: list[float]) -> dict[str, Any]:
    return {**summarize(samples), "p99_ms": percentile([s * 1000 for s in samples], 0.99)}


def _log_bytes(client: docker.DockerClient, container: str) -> int | None:
    path = client.api.inspect_container(container).get("LogPath") or ""
    try:
        return sum(p.stat().st_size for p in Path(path).parent.glob(Path(path).name + "*"))
    except OSError:
        return None  # the engine's files are not readable from here


def flood_process(module: str, *args: str) -> subprocess.Popen[str]:
    """A flooding client in a process of its own, once it prints "ready".

    At the lowest CPU priority: a hostile user's clients run on their own machine, not on the
    server's cores, so here they get only what the server, Docker and the workspaces leave.
    """
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        ["nice", "-n", "19", sys.executable, "-m", module, *args],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT,
    )  # fmt: skip
    assert process.stdout is not None
    if process.stdout.readline().strip() != "ready":
        process.kill()
        raise RuntimeError(f"{module} did not start flooding")
    return process


class Flood:
    """The terminal flood (a process) and the log flood (an exec), both bounded in time."""

    def __init__(self, server: BenchServer, client: docker.DockerClient, flooded: dict[str, Any]):
        self.server, self.client, self.flooded = server, client, flooded
        self.process: subprocess.Popen[str] | None = None

    def start(self, seconds: float) -> None:
        limit = f"{seconds + 30:.0f}"
        container = self.client.containers.get(self.flooded["container_name"])
        container.exec_run(["sh", "-c", LOG_FLOOD.format(seconds=limit)], detach=True)
        self.process = flood_process(
            "bench.flood_client", self.server.ws_base_url, self.server.token,
            self.flooded["id"], limit,
        )  # fmt: skip

    def stop(self) -> int:
        container = self.client.containers.get(self.flooded["container_name"])
        container.exec_run(["sh", "-c", "pkill -x timeout; pkill -x yes; true"])
        assert self.process is not None
        out, _ = self.process.communicate(input="", timeout=120)
        return int(json.loads(out.strip().splitlines()[-1]))


class PreviewFlood:
    """Clients of the flooded workspace's preview (bench/preview_flood_client.py), time-bounded."""

    def __init__(self, server: BenchServer, url: str, clients: tuple[int, int, int], mib: int):
        self.server, self.url, self.clients, self.mib = server, url, clients, mib
        self.process: subprocess.Popen[str] | None = None

    def start(self, seconds: float) -> None:
        sizes = [str(n) for n in self.clients]
        self.process = flood_process(
            "bench.preview_flood_client", self.url, self.server.token,
            *sizes, str(self.mib), f"{seconds + 30:.0f}",
        )  # fmt: skip

    def stop(self) -> dict[str, Any]:
        assert self.process is not None
        out, _ = self.process.communicate(input="", timeout=180)
        result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
        return result


async def _phase(
    server: BenchServer, victim: dict[str, Any], seconds: float
) -> tuple[list[float], list[float]]:
    """Half the phase echo round trips through the victim's relay, half REST GETs."""
    session = relay_session(server.ws_base_url, server.token, victim["id"])
    await session.open()
    echoes: list[float] = []
    try:
        await session.read_until("", 60)
        await session.drain()
        deadline = time.monotonic() + seconds / 2
        while time.monotonic() < deadline:
            echoes.extend(await measure_echo(session, 1, 30))
    finally:
        await session.close()
    gets = await asyncio.to_thread(victim_gets, server, victim["id"], seconds / 2)
    return echoes, gets


class Flooder:
    """The flooding workspace: its preview app and listening sockets, and one phase's floods."""

    def __init__(
        self,
        server: BenchServer,
        client: docker.DockerClient,
        flooded: dict[str, Any],
        *,
        sockets: int,
        ports_clients: int,
        preview_clients: tuple[int, int, int],
        preview_mib: int,
    ) -> None:
        self.server, self.client, self.flooded = server, client, flooded
        self.ports_clients = ports_clients
        container = flooded["container_name"]
        start_app(client, container)
        docker_env.wait_for_port(docker_env.container_ip(client, container), APP_PORT)
        # The app's URL before the sockets: the listing past its cap may leave port 8080 out.
        listed = server.api("GET", f"api/code/workspaces/{flooded['id']}/ports").json()
        url = server.url(next(p["url"] for p in listed["ports"] if p["port"] == APP_PORT))
        self.preview = PreviewFlood(server, url, preview_clients, preview_mib)
        start_listeners(client, container, sockets)
        self.listings: list[Any] = []

    def phase(self, kind: str, seconds: float, victim: dict[str, Any]) -> dict[str, Any]:
        """The victim's samples under one kind of flood, and what the flood did."""
        terminal = Flood(self.server, self.client, self.flooded)
        listings: list[Any] = []
        ports = ListingFlood(self.server, self.flooded["id"], self.ports_clients, listings)
        started, cpu = time.monotonic(), sum(process_cpu_s(self.server.pid))
        busy = machine_busy_s()
        if kind in ("terminal", "all"):
            terminal.start(seconds)
        if kind in ("preview", "all"):
            self.preview.start(seconds)
        if kind in ("ports", "all"):
            ports.start()
        done: dict[str, Any] = {}
        try:
            done["echo"], done["get"] = asyncio.run(_phase(self.server, victim, seconds))
        finally:
            if kind in ("ports", "all"):
                ports.stop()
                done["listings"] = len(listings)
                done["listing_errors"] = sum(1 for *_, code in listings if code != 200)
            if kind in ("preview", "all"):
                done["preview"] = self.preview.stop()
            if kind in ("terminal", "all"):
                done["terminal_bytes"] = terminal.stop()
            done["seconds"] = time.monotonic() - started
            done["server_cpu_s"] = sum(process_cpu_s(self.server.pid)) - cpu
            done["machine_busy_s"] = machine_busy_s() - busy
        return done


def _rates(phases: list[dict[str, Any]]) -> dict[str, Any]:
    """What one kind of flood did per second, over its phases."""
    seconds = sum(p["seconds"] for p in phases)
    preview: dict[str, int] = {}
    for phase in phases:
        for key, value in phase.get("preview", {}).items():
            if key != "seconds":
                preview[key] = preview.get(key, 0) + value
    # Above 1: the server's event loop (one core) is busy all the time, plus its threads.
    rates: dict[str, Any] = {
        "seconds": seconds,
        "server_cpu_cores": sum(p["server_cpu_s"] for p in phases) / seconds,
        # Everyone's: the floods, their clients, the bench, the engine and other work.
        "machine_busy_cores": sum(p["machine_busy_s"] for p in phases) / seconds,
    }
    if any("terminal_bytes" in p for p in phases):
        rates["terminal_mb_per_s"] = sum(p["terminal_bytes"] for p in phases) / seconds / 1e6
    if any("listings" in p for p in phases):
        rates["listings_per_s"] = sum(p["listings"] for p in phases) / seconds
        rates["listing_errors"] = sum(p["listing_errors"] for p in phases)
    if preview:
        rates["preview_gets_per_s"] = preview.get("gets", 0) / seconds
        rates["preview_download_mb_per_s"] = preview.get("download_bytes", 0) / seconds / 1e6
        rates["preview_echoes_per_s"] = preview.get("echoes", 0) / seconds
        rates["preview_counts"] = preview
    return rates


def bench_flood(
    server: BenchServer,
    client: docker.DockerClient,
    flooded: dict[str, Any],
    victim: dict[str, Any],
    *,
    seconds: float,
    rounds: int,
    kinds: tuple[str, ...] = KINDS,
    sockets: int,
    ports_clients: int,
    preview_clients: tuple[int, int, int],
    preview_mib: int,
) -> dict[str, Any]:
    flooder = Flooder(
        server,
        client,
        flooded,
        sockets=sockets,
        ports_clients=ports_clients,
        preview_clients=preview_clients,
        preview_mib=preview_mib,
    )
    phases: dict[str, list[dict[str, Any]]] = {kind: [] for kind in ("alone", *kinds)}
    log_before = _log_bytes(client, flooded["container_name"])
    load_before = os.getloadavg()
    for _ in range(rounds):
        for kind in kinds:  # a baseline before each flood: phases alternate
            phases["alone"].append(flooder.phase("alone", seconds, victim))
            phases[kind].append(flooder.phase(kind, seconds, victim))
    log_after = _log_bytes(client, flooded["container_name"])

    def rows(done: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "echo": _row([s for phase in done for s in phase["echo"]]),
            "get": _row([s for phase in done for s in phase["get"]]),
            "rates": _rates(done),
        }

    return {
        "seconds_per_phase": seconds,
        "rounds": rounds,
        "sockets": sockets,
        "ports_clients": ports_clients,
        "preview_clients": dict(zip(("gets", "downloads", "echoes"), preview_clients, strict=True)),
        "preview_mib": preview_mib,
        "container_log_bytes_before": log_before,
        "container_log_bytes_after": log_after,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "baseline": rows(phases.pop("alone")),
        "flooded": {kind: rows(done) for kind, done in phases.items()},
    }
