"""Many live terminals at once: idle sessions held open while others stream, on the 2 cores.

1,000 relayed sessions are opened and left idle; then 50 more stream `seq` at once while one
interactive session measures echo and a thread times the REST listing. Every stream's bytes are
checked (SHA-256, plain shell: the pty passes seq's bytes as they are), the server's memory is
read before, with the idle sessions, and after everything is closed.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import statistics
import sys
import threading
import time
from typing import Any

import requests

from .server import BenchServer
from .stats import percentile, summarize
from .terminal_clients import TerminalSession, TtydProtocolSession, relay_session

# Typed into each streaming shell. The markers are printed by the command, and its echo (shown
# before `stty -echo` runs) spells them differently, so only the output can match.
STREAM_COMMAND = "stty -echo -onlcr; printf '%s\\n' BEG''IN; seq 1 {lines}; printf '%s\\n' EN''D\r"
BEGIN, END = b"BEGIN\n", b"END\n"
OPEN_CONCURRENCY = 20
SETTLE_S = 3.0
# Rounds of idle sessions opened and closed again after the soak (a leak grows with each).
AGAIN_ROUNDS = 2


def seq_digest(lines: int) -> str:
    digest = hashlib.sha256()
    for start in range(1, lines + 1, 100_000):
        stop = min(start + 100_000, lines + 1)
        digest.update("".join(f"{i}\n" for i in range(start, stop)).encode())
    return digest.hexdigest()


def seq_bytes(lines: int) -> int:
    """Bytes of `seq 1 lines` with LF line ends."""
    return sum(len(str(i)) + 1 for i in range(1, lines + 1))


def rss_median(server: BenchServer, readings: int = 5) -> float:
    values = []
    for _ in range(readings):
        values.append(server.rss_bytes())
        time.sleep(0.2)
    return statistics.median(values) / 2**20


async def open_idle(server: BenchServer, workspace_id: str, count: int) -> list[TerminalSession]:
    """`count` relayed sessions that have received their first output (ttyd spawned a shell)."""
    sessions: list[TerminalSession] = []
    limit = asyncio.Semaphore(OPEN_CONCURRENCY)

    async def open_one() -> None:
        async with limit:
            session = relay_session(server.ws_base_url, server.token, workspace_id)
            sessions.append(session)
            await session.open()
            await session.read_until("", 60)

    await asyncio.gather(*(open_one() for _ in range(count)))
    return sessions


async def stream_once(session: TtydProtocolSession, lines: int, timeout_s: float) -> str:
    """Type the seq command; answer the SHA-256 of what arrived between the markers."""
    assert session.ws is not None
    await session.drain(quiet_s=0.3, limit_s=10)
    await session.send_input(STREAM_COMMAND.format(lines=lines))
    received = bytearray()
    recv = session.ws.recv

    async def read() -> None:
        # Only the newly arrived bytes (and a marker's length before them) are searched.
        begin = -1
        while True:
            frame = await recv()
            if isinstance(frame, bytes) and frame[:1] == b"0":
                seen = max(len(received) - len(END), 0)
                received.extend(memoryview(frame)[1:])
                if begin < 0:
                    begin = received.find(BEGIN, max(seen - 2, 0))
                    if begin < 0:
                        continue
                    seen = begin + len(BEGIN)
                if received.find(END, max(seen, begin + len(BEGIN))) >= 0:
                    return

    await asyncio.wait_for(read(), timeout_s)
    start = received.find(BEGIN) + len(BEGIN)
    end = received.find(END, start)
    return hashlib.sha256(received[start:end]).hexdigest()


def time_listing(server: BenchServer, stop: threading.Event, samples: list[float]) -> None:
    """GET the listing back to back until `stop`, on its own connection (another thread)."""
    with requests.Session() as http:
        http.headers.update(server.auth_headers)
        url = server.url("api/code/workspaces")
        while not stop.is_set():
            started = time.perf_counter()
            response = http.get(url, timeout=120)
            samples.append(time.perf_counter() - started)
            if response.status_code != 200:
                raise RuntimeError(f"list answered {response.status_code} during the soak")
            stop.wait(0.05)


async def bench_soak(
    server: BenchServer,
    workspace_id: str,
    interactive_id: str,
    idle: int,
    streams: int,
    lines: int,
    budget_s: float,
) -> dict[str, Any]:
    """Idle sessions, streams, echo and listing at once; memory before, during and after."""
    warm = relay_session(server.ws_base_url, server.token, workspace_id)
    await warm.open()
    await warm.read_until("", 60)
    await warm.close()
    await asyncio.sleep(SETTLE_S)
    baseline = await asyncio.to_thread(rss_median, server)
    expected = seq_digest(lines)
    held: list[TerminalSession] = []
    result: dict[str, Any] = {"idle_sessions": idle, "streams": streams, "seq_lines": lines}
    try:
        started = time.perf_counter()
        held = await asyncio.wait_for(open_idle(server, workspace_id, idle), budget_s)
        result["open_idle_s"] = time.perf_counter() - started
        await asyncio.sleep(SETTLE_S)
        with_idle = await asyncio.to_thread(rss_median, server)

        streamers = [
            relay_session(server.ws_base_url, server.token, workspace_id) for _ in range(streams)
        ]
        held.extend(streamers)
        await asyncio.wait_for(asyncio.gather(*(s.open() for s in streamers)), budget_s)
        # The interactive session types from its own process (see echo_probe), into another
        # workspace: one ttyd serving 1,050 sessions would make it wait for the streams' ttyd.
        typist = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.echo_probe",
            server.ws_base_url,
            server.token,
            interactive_id,
            str(budget_s),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert typist.stdin is not None
        assert typist.stdout is not None
        ready = await asyncio.wait_for(typist.stdout.readline(), 120)
        if ready.strip() != b"ready":
            raise RuntimeError(f"echo probe did not start: {ready!r}")

        list_samples: list[float] = []
        stop = threading.Event()
        lister = asyncio.create_task(asyncio.to_thread(time_listing, server, stop, list_samples))
        started = time.perf_counter()
        try:
            digests = await asyncio.wait_for(
                asyncio.gather(*(stream_once(s, lines, budget_s) for s in streamers)), budget_s
            )
        finally:
            result["stream_s"] = time.perf_counter() - started
            stop.set()
            typist.stdin.close()
            output, _ = await asyncio.wait_for(typist.communicate(), 120)
            await lister
        echo_samples = json.loads(output)
        result["streams_matching"] = sum(1 for d in digests if d == expected)
        result["stream_mb"] = streams * seq_bytes(lines) / 1e6
        result["echo"] = summarize(echo_samples)
        result["echo"]["p99_ms"] = percentile([s * 1000 for s in echo_samples], 0.99)
        result["list"] = summarize(list_samples)
    finally:
        await asyncio.gather(*(s.close() for s in held), return_exceptions=True)
    await asyncio.sleep(SETTLE_S * 2)
    after = await asyncio.to_thread(rss_median, server)
    # CPython keeps freed memory for reuse rather than giving it back: a second round of idle
    # sessions must then fit in what the first left behind (growth = a leak).
    rounds_after: list[float] = []
    for _ in range(AGAIN_ROUNDS):
        again = await asyncio.wait_for(open_idle(server, workspace_id, idle), budget_s)
        await asyncio.sleep(SETTLE_S)
        with_idle_again = await asyncio.to_thread(rss_median, server)
        await asyncio.gather(*(s.close() for s in again), return_exceptions=True)
        await asyncio.sleep(SETTLE_S * 2)
        rounds_after.append(await asyncio.to_thread(rss_median, server))
    after_again = rounds_after[-1]
    result.update(
        {
            "rss_baseline_mib": baseline,
            "rss_with_idle_mib": with_idle,
            "per_idle_session_kib": (with_idle - baseline) * 1024 / idle,
            "rss_after_mib": after,
            "rss_with_idle_again_mib": with_idle_again,
            "rss_after_again_mib": after_again,
            "rss_after_each_round_mib": rounds_after,
            "targets": {
                "per_idle_session_kib": 64,
                "list_p50_ms": 50,
                "echo_p99_ms": 50,
                "after_over_baseline_mib": 5,
            },
        }
    )
    return result
