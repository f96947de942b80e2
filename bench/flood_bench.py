"""Issue 17: another workspace's terminal round trip and REST GET while one workspace floods.

The flooding workspace runs `yes` in a relayed terminal (read as fast as it comes by a separate
process, as a browser would) and writes `yes` into its container's log (`/proc/1/fd/1`, by a
`docker exec` as root: the workspace user cannot open pid 1's descriptors, so this is more than a
user can do). The victim's keystroke echo through the relay and its `GET
api/code/workspaces/{id}` are timed alone (baseline) and under the flood, in the same run,
alternating phases so drift on a shared machine hits both alike.
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

from .ports_bench import victim_gets
from .server import BenchServer
from .stats import percentile, summarize
from .terminal_bench import measure_echo
from .terminal_clients import relay_session

ROOT = Path(__file__).resolve().parent.parent
LOG_FLOOD = "exec timeout {seconds} sh -c 'yes flooding-the-log > /proc/1/fd/1'"


def _row(samples: list[float]) -> dict[str, Any]:
    return {**summarize(samples), "p99_ms": percentile([s * 1000 for s in samples], 0.99)}


def _log_bytes(client: docker.DockerClient, container: str) -> int | None:
    path = client.api.inspect_container(container).get("LogPath") or ""
    try:
        return sum(p.stat().st_size for p in Path(path).parent.glob(Path(path).name + "*"))
    except OSError:
        return None  # the engine's files are not readable from here


class Flood:
    """The terminal flood (a process) and the log flood (an exec), both bounded in time."""

    def __init__(self, server: BenchServer, client: docker.DockerClient, flooded: dict[str, Any]):
        self.server, self.client, self.flooded = server, client, flooded
        self.process: subprocess.Popen[str] | None = None

    def start(self, seconds: float) -> None:
        limit = f"{seconds + 30:.0f}"
        container = self.client.containers.get(self.flooded["container_name"])
        container.exec_run(["sh", "-c", LOG_FLOOD.format(seconds=limit)], detach=True)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.flood_client", self.server.ws_base_url,
             self.server.token, self.flooded["id"], limit],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT,
        )  # fmt: skip
        assert self.process.stdout is not None
        if self.process.stdout.readline().strip() != "ready":
            raise RuntimeError("the flooding terminal did not start")

    def stop(self) -> int:
        container = self.client.containers.get(self.flooded["container_name"])
        container.exec_run(["sh", "-c", "pkill -x timeout; pkill -x yes; true"])
        assert self.process is not None
        out, _ = self.process.communicate(input="", timeout=120)
        return int(json.loads(out.strip().splitlines()[-1]))


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


def bench_flood(
    server: BenchServer,
    client: docker.DockerClient,
    flooded: dict[str, Any],
    victim: dict[str, Any],
    *,
    seconds: float,
    rounds: int,
) -> dict[str, Any]:
    base_echo: list[float] = []
    base_get: list[float] = []
    flood_echo: list[float] = []
    flood_get: list[float] = []
    terminal_bytes = 0
    flood_seconds = 0.0
    log_before = _log_bytes(client, flooded["container_name"])
    for _ in range(rounds):
        echoes, gets = asyncio.run(_phase(server, victim, seconds))
        base_echo += echoes
        base_get += gets
        flood = Flood(server, client, flooded)
        started = time.monotonic()
        flood.start(seconds)
        try:
            echoes, gets = asyncio.run(_phase(server, victim, seconds))
        finally:
            terminal_bytes += flood.stop()
            flood_seconds += time.monotonic() - started
        flood_echo += echoes
        flood_get += gets
    log_after = _log_bytes(client, flooded["container_name"])
    return {
        "seconds_per_phase": seconds,
        "rounds": rounds,
        "terminal_flood_mb_per_s": terminal_bytes / flood_seconds / 1e6,
        "container_log_bytes_before": log_before,
        "container_log_bytes_after": log_after,
        "baseline": {"echo": _row(base_echo), "get": _row(base_get)},
        "flooded": {"echo": _row(flood_echo), "get": _row(flood_get)},
    }
