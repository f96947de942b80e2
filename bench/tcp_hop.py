"""A bare TCP forwarder: the cost of one userspace hop, the bound of any preview proxy.

`python -m bench.tcp_hop HOST PORT` listens on a free loopback port (printed on stdout, one line)
and forwards every connection to HOST:PORT, both directions, with the preview proxy's own loop
(`preview.splice.splice_body`: non-blocking `splice` through a pipe on an asyncio loop) and
nothing else: no HTTP, no authorization, no Jupyter server sharing the loop. It runs in a
process of its own, started by the preview part (`preview_bench`) and killed after it. What it
reaches against straight to the app is what one more process in the path costs on this machine;
our proxy's distance to it is what the server's own work costs.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys

from jupyter_popebot_code.preview.splice import BodyCutShort, splice_body

# splice_body moves a given length: a connection forwarded until it ends is a body longer than
# any connection carries, cut short by its end.
_UNTIL_THE_END = sys.maxsize


def _uncounted(_: int) -> None:
    """The proxy counts bytes for its metrics; the hop has none."""


async def _pump(source: socket.socket, target: socket.socket) -> None:
    """source -> target until source ends, then end target's sending side."""
    try:
        await splice_body(source.fileno(), target.fileno(), _UNTIL_THE_END, _uncounted)
    except (BodyCutShort, OSError):
        pass  # the source ended, or either side went away: this direction is over
    finally:
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_WR)


async def _forward(client: socket.socket, host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    app = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    app.setblocking(False)
    try:
        await asyncio.wait_for(loop.sock_connect(app, (host, port)), 10)
        for sock in (client, app):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await asyncio.gather(_pump(client, app), _pump(app, client))
    finally:
        app.close()
        client.close()


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    listener.setblocking(False)
    print(listener.getsockname()[1], flush=True)
    tasks: set[asyncio.Task[None]] = set()
    while True:
        client, _ = await loop.sock_accept(listener)
        client.setblocking(False)
        task = loop.create_task(_forward(client, host, port))
        tasks.add(task)
        task.add_done_callback(tasks.discard)


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(host, port))


if __name__ == "__main__":
    main()
