"""One interactive terminal in its own process: echo round trips until stdin closes.

The soak runs this beside its streams so the keystroke's latency is the server's, not that of
the bench's own event loop busy reading 50 streams. Prints the samples (seconds) as JSON.
Usage: python -m bench.echo_probe <ws base url> <token> <workspace id> <max seconds>
"""

from __future__ import annotations

import asyncio
import json
import sys

from .terminal_bench import measure_echo
from .terminal_clients import relay_session


async def probe(ws_base_url: str, token: str, workspace_id: str, limit_s: float) -> list[float]:
    session = relay_session(ws_base_url, token, workspace_id)
    await session.open()
    await session.read_until("", 60)
    await session.drain()
    loop = asyncio.get_running_loop()
    stdin_closed = loop.run_in_executor(None, sys.stdin.read)
    print("ready", flush=True)
    samples: list[float] = []
    deadline = loop.time() + limit_s
    try:
        while not stdin_closed.done() and loop.time() < deadline:
            samples.extend(await measure_echo(session, 1, 30))
    finally:
        await session.close()
    return samples


def main() -> None:
    ws_base_url, token, workspace_id, limit = sys.argv[1:5]
    samples = asyncio.run(probe(ws_base_url, token, workspace_id, float(limit)))
    print(json.dumps(samples), flush=True)


if __name__ == "__main__":
    main()
