"""A terminal that floods: `yes` in a relayed session, read as fast as it comes, in its own process.

The flood bench runs this so reading the flood costs the bench's own event loop nothing. Prints
"ready" once the flood runs, and on stdin's close (or after the time limit) stops it with Ctrl-C
and prints the bytes it read as JSON.
Usage: python -m bench.flood_client <ws base url> <token> <workspace id> <max seconds>
"""

from __future__ import annotations

import asyncio
import json
import sys

from .terminal_clients import relay_session


async def flood(ws_base_url: str, token: str, workspace_id: str, limit_s: float) -> int:
    session = relay_session(ws_base_url, token, workspace_id)
    await session.open()
    await session.read_until("", 60)
    await session.drain()
    await session.send_input("yes flooding-the-terminal\r")
    await session.read_until("flooding-the-terminal\r\nflooding", 30)
    loop = asyncio.get_running_loop()
    stdin_closed = loop.run_in_executor(None, sys.stdin.read)
    print("ready", flush=True)
    assert session.ws is not None
    received = 0
    deadline = loop.time() + limit_s
    try:
        while not stdin_closed.done() and loop.time() < deadline:
            try:
                frame = await asyncio.wait_for(session.ws.recv(), 1.0)
            except TimeoutError:
                continue
            received += len(frame)
        await session.send_input("\x03")
        await session.drain(quiet_s=0.5, limit_s=10)
    finally:
        await session.close()
    return received


def main() -> None:
    ws_base_url, token, workspace_id, limit = sys.argv[1:5]
    print(json.dumps(asyncio.run(flood(ws_base_url, token, workspace_id, float(limit)))))


if __name__ == "__main__":
    main()
