"""Issue 3 §5: the relay against straight-to-ttyd and JupyterLab's terminal, same run, same box."""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from .cpu import CpuProbe
from .server import BenchServer
from .stats import ratio, summarize
from .terminal_clients import TerminadoSession, TerminalSession, relay_session, ttyd_session

# The shell prints the sentinel right after seq's last line; its echoed command line shows
# `$((6*7))` instead, so the typed command can never be mistaken for the end of the output.
SEQ_COMMAND = "seq 1 {lines}; echo BENCH_$((6*7))_END\r"
SENTINEL = "BENCH_42_END"
# Letters that no escape sequence tmux or bash sends in reply to a keystroke ends with.
ECHO_CHARS = "xyz"
ERASE = "\x7f"
WARMUP_LINES = 100_000
WARMUP_ECHOES = 5
# Between two sessions: ttyd hangs up the closed session's child before the next one attaches.
SESSION_GAP_S = 0.5


@dataclass(frozen=True)
class TerminalTarget:
    """A workspace whose ttyd the bench reaches through the relay and straight."""

    workspace_id: str
    host: str
    credential: str
    cpu: CpuProbe


def seq_output_bytes(lines: int) -> int:
    """Bytes a terminal shows for `seq 1 lines`: every line ends in CR LF after the pty."""
    total = 0
    digits = 1
    while 10 ** (digits - 1) <= lines:
        first, last = 10 ** (digits - 1), min(10**digits - 1, lines)
        total += (last - first + 1) * (digits + 2)
        digits += 1
    return total


async def measure_throughput(
    session: TerminalSession, lines: int, timeout_s: float, cpu: CpuProbe | None = None
) -> dict[str, Any]:
    """Seconds from sending `seq` until its last line (and the sentinel after it) arrives."""
    await session.drain()
    before = cpu.snapshot() if cpu else None
    started = time.perf_counter()
    await session.send_input(SEQ_COMMAND.format(lines=lines))
    received, frames = await session.read_until(SENTINEL, timeout_s)
    elapsed = time.perf_counter() - started
    run: dict[str, Any] = {
        "seconds": elapsed,
        "bytes": received,
        "frames": frames,
        "mb_per_s": received / elapsed / 1e6,
    }
    if cpu and before:
        run.update(CpuProbe.spent(before, cpu.snapshot()))
    return run


async def echo_trip(session: TerminalSession, char: str, timeout_s: float) -> float:
    """Seconds from typing `char` to its echo; it is erased (untimed) after."""
    started = time.perf_counter()
    await session.send_input(char)
    await session.read_until(char, timeout_s)
    elapsed = time.perf_counter() - started
    await session.send_input(ERASE)
    return elapsed


async def measure_echo(session: TerminalSession, trips: int, timeout_s: float) -> list[float]:
    """Keystroke to its echo, one character at a time; each is erased (untimed) after."""
    await session.drain()
    samples = []
    for trip in range(trips):
        samples.append(await echo_trip(session, ECHO_CHARS[trip % len(ECHO_CHARS)], timeout_s))
        await session.drain(quiet_s=0.05, limit_s=2.0)
    return samples


def run_queue_wait_s(pid: int) -> float | None:
    """Seconds the main thread of `pid` has waited, ready to run, for a core (schedstat)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/schedstat") as stat:
            return int(stat.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return None


async def measure_echo_in_turns(
    make_session: dict[str, Callable[[], TerminalSession]],
    trips: int,
    timeout_s: float,
    server_pid: int | None = None,
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Echo round trips on every path taking turns, one trip each, all sessions open at once.

    A shared machine's load changes within seconds: paths measured one after the other see
    different neighbours, paths taking turns see the same. Also returns, per trip, how long the
    server's event-loop thread waited for a core meanwhile (the relay and terminado run there).
    Sessions on one workspace share its terminal session and see each other's echo, so each
    trip starts once its session is quiet.
    """
    kinds = list(make_session)
    samples: dict[str, list[float]] = {kind: [] for kind in kinds}
    waits: dict[str, list[float]] = {kind: [] for kind in kinds}
    sessions: list[tuple[str, TerminalSession]] = []
    try:
        for kind in kinds:
            session = make_session[kind]()
            sessions.append((kind, session))
            await asyncio.wait_for(session.open(), 90)
            await measure_echo(session, WARMUP_ECHOES, timeout_s)
        for trip in range(trips):
            shift = trip % len(sessions)
            for kind, session in sessions[shift:] + sessions[:shift]:
                await session.drain(quiet_s=0.05, limit_s=2.0)
                before = run_queue_wait_s(server_pid) if server_pid else None
                char = ECHO_CHARS[trip % len(ECHO_CHARS)]
                samples[kind].append(await echo_trip(session, char, timeout_s))
                after = run_queue_wait_s(server_pid) if server_pid else None
                if before is not None and after is not None:
                    waits[kind].append(after - before)
    finally:
        for _, session in sessions:
            await session.close()
    return samples, waits


def _median_of(runs: list[dict[str, Any]], key: str) -> float | None:
    values = [run[key] for run in runs if run.get(key) is not None]
    return statistics.median(values) if values else None


async def run_paths(
    make_session: dict[str, Callable[[], TerminalSession]],
    cpu: CpuProbe | dict[str, CpuProbe],
    rounds: int,
    lines: int,
    trips: int,
    timeout_s: float,
) -> dict[str, Any]:
    """Each round visits every path once, in a rotated order, one session open at a time.

    `cpu` is one probe for all paths, or one per path (each its own container).
    """
    runs: dict[str, list[dict[str, Any]]] = {kind: [] for kind in make_session}
    kinds = list(make_session)
    for round_index in range(rounds):
        shift = round_index % len(kinds)
        for kind in kinds[shift:] + kinds[:shift]:
            session = make_session[kind]()
            await asyncio.wait_for(session.open(), 90)
            try:
                # Warm-up on every fresh connection (and fresh ttyd child or terminado pty).
                await measure_throughput(session, WARMUP_LINES, timeout_s)
                probe = cpu[kind] if isinstance(cpu, dict) else cpu
                run = await measure_throughput(session, lines, timeout_s, probe)
            finally:
                await session.close()
            runs[kind].append(run)
            await asyncio.sleep(SESSION_GAP_S)
    some_probe = next(iter(cpu.values())) if isinstance(cpu, dict) else cpu
    echoes, waits = await measure_echo_in_turns(
        make_session, rounds * trips, timeout_s, some_probe.server_pid
    )
    shown = seq_output_bytes(lines)
    results: dict[str, Any] = {}
    for kind in kinds:
        rates = [run["mb_per_s"] for run in runs[kind]]
        seconds = statistics.median(run["seconds"] for run in runs[kind])
        server_cpu = _median_of(runs[kind], "server_cpu_s")
        frames = statistics.median(run["frames"] for run in runs[kind])
        results[kind] = {
            "mb_per_s_median": statistics.median(rates),
            "mb_per_s_min": min(rates),
            "mb_per_s_max": max(rates),
            "seconds_median": seconds,
            "bytes_median": statistics.median(run["bytes"] for run in runs[kind]),
            "frames_median": frames,
            "seq_output_bytes": shown,
            # What the user waits for: all of seq's output shown, whatever was sent to get there.
            "effective_mb_per_s": shown / seconds / 1e6,
            "server_cpu_s_median": server_cpu,
            # The relay's cost goes with frames more than bytes (tmux sends many small ones).
            "server_cpu_us_per_frame": None if server_cpu is None else server_cpu * 1e6 / frames,
            "client_cpu_s_median": _median_of(runs[kind], "client_cpu_s"),
            "container_cpu_s_median": _median_of(runs[kind], "container_cpu_s"),
            "machine_busy_s_median": _median_of(runs[kind], "machine_busy_s"),
            "echo": summarize(echoes[kind]),
            "echo_samples_ms": [round(sample * 1000, 3) for sample in echoes[kind]],
            # The server's event-loop thread waiting for a core during each echo trip.
            "echo_server_wait": summarize(waits[kind]) if waits[kind] else None,
            "runs": runs[kind],
        }
    if "ttyd" in results:
        base = results["ttyd"]
        for kind in kinds:
            results[kind]["throughput_ratio_vs_ttyd"] = ratio(
                results[kind]["mb_per_s_median"], base["mb_per_s_median"]
            )
            results[kind]["time_ratio_vs_ttyd"] = ratio(
                base["seconds_median"], results[kind]["seconds_median"]
            )
            results[kind]["echo_p50_minus_ttyd_ms"] = (
                results[kind]["echo"]["p50_ms"] - base["echo"]["p50_ms"]
            )
    return results


def _rss_median(server: BenchServer, readings: int = 5) -> int:
    values = []
    for _ in range(readings):
        values.append(server.rss_bytes())
        time.sleep(0.2)
    return int(statistics.median(values))


async def measure_idle_memory(
    server: BenchServer, workspace_id: str, count: int, settle_s: float = 3.0
) -> dict[str, Any]:
    """Server RSS with `count` relayed sessions open and idle, against none.

    Run before the throughput rounds: memory a 17 MB stream left in Python's allocator would
    be reused by the sessions and hide their cost.
    """
    # One session first, so code loaded and caches filled on first use count as the baseline.
    warm = relay_session(server.ws_base_url, server.token, workspace_id)
    await warm.open()
    await warm.read_until("", 60)
    await warm.close()
    await asyncio.sleep(settle_s)
    before = await asyncio.to_thread(_rss_median, server)
    sessions: list[TerminalSession] = []
    limit = asyncio.Semaphore(10)

    async def open_one() -> None:
        async with limit:
            session = relay_session(server.ws_base_url, server.token, workspace_id)
            sessions.append(session)
            await session.open()
            await session.read_until("", 60)  # the first output: ttyd spawned its child

    try:
        await asyncio.wait_for(asyncio.gather(*(open_one() for _ in range(count))), 300)
        await asyncio.sleep(settle_s)
        with_sessions = await asyncio.to_thread(_rss_median, server)
    finally:
        await asyncio.gather(*(s.close() for s in sessions), return_exceptions=True)
    await asyncio.sleep(settle_s)
    after = await asyncio.to_thread(_rss_median, server)
    return {
        "sessions": count,
        "rss_idle_mib": before / 2**20,
        "rss_with_sessions_mib": with_sessions / 2**20,
        "rss_after_close_mib": after / 2**20,
        "delta_mib": (with_sessions - before) / 2**20,
        "per_session_kib": (with_sessions - before) / count / 1024,
    }


async def bench_terminals(
    server: BenchServer,
    plain: TerminalTarget,
    shipped: TerminalTarget,
    rounds: int,
    lines: int,
    trips: int,
    idle_sessions: int,
    timeout_s: float,
    loads: tuple[str, ...] = ("idle", "hog"),
) -> dict[str, Any]:
    """Idle memory; relay, ttyd and JupyterLab's terminal on a plain ttyd shell and on the
    shipped image, each without and with a CPU hog on every core (started by the bench)."""

    def terminado() -> TerminalSession:
        return TerminadoSession(server.base_url, server.ws_base_url, server.token)

    def makers(target: TerminalTarget) -> dict[str, Callable[[], TerminalSession]]:
        return {
            "relay": lambda: relay_session(server.ws_base_url, server.token, target.workspace_id),
            "ttyd": lambda: ttyd_session(target.host, target.credential),
            # JupyterLab's own terminal (a plain shell on the host) is the peer of both tables.
            "terminado": terminado,
        }

    memory = None
    if idle_sessions:
        memory = await measure_idle_memory(server, shipped.workspace_id, idle_sessions)
    results: dict[str, Any] = {
        "memory": memory,
        "workload": {"seq_lines": lines, "echo_trips": trips, "rounds": rounds},
        "targets": {"throughput_ratio_min": 0.95, "echo_p50_delta_ms_max": 1.0, "echo_p90_ms": 3.0},
        "loads": list(loads),
    }
    for load in loads:
        suffix = "" if load == "idle" else f"_{load}"
        with cpu_hog(os.cpu_count() or 1) if load == "hog" else contextlib.nullcontext():
            for name, target in (("plain", plain), ("shipped", shipped)):
                results[name + suffix] = await run_paths(
                    makers(target), target.cpu, rounds, lines, trips, timeout_s
                )
    return results


@contextlib.contextmanager
def cpu_hog(processes: int) -> Iterator[list[int]]:
    """`processes` busy loops at normal priority (one per core): both cores loaded."""
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(processes)]
    try:
        time.sleep(0.5)  # let them reach the CPU before anything is measured
        yield [hog.pid for hog in hogs]
    finally:
        for hog in hogs:
            hog.kill()
        for hog in hogs:
            hog.wait(timeout=10)
