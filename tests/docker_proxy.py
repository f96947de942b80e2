"""A Unix-socket relay in front of the real Docker engine that a test can cut and restore.

From the server's side, a cut relay is exactly an engine that went away (connection refused on
the socket), and a stalled one an engine that accepts connections and never answers; the real
engine keeps running for everything else on the machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from pathlib import Path

REAL_SOCKET = "/var/run/docker.sock"


class DockerSocketProxy:
    def __init__(self, path: Path, target: str = REAL_SOCKET) -> None:
        self.path = path
        self.target = target
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._server: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.stalled = False

    @property
    def url(self) -> str:
        return f"unix://{self.path}"

    def start(self) -> None:
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=10)

    def close(self) -> None:
        self.stop()
        asyncio.run_coroutine_threadsafe(self._finish(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _finish(self) -> None:
        """Let every connection's pumps end (their transports close) before the loop stops."""
        me = asyncio.current_task()
        tasks = [task for task in asyncio.all_tasks() if task is not me]
        if tasks:
            await asyncio.wait(tasks, timeout=5)

    async def _start(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_unix_server(self._serve, path=str(self.path))

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        writers = list(self._writers)
        for writer in writers:
            writer.close()
        self._writers.clear()
        # Closing finishes on the loop: wait for it, or close() may stop the loop first and a
        # transport still open (a connection in use when the test ended) is collected later,
        # as a ResourceWarning in whichever test runs then.
        closing = asyncio.gather(*(w.wait_closed() for w in writers), return_exceptions=True)
        await asyncio.wait([closing], timeout=5)
        if self.path.exists():
            os.unlink(self.path)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        if self.stalled:
            return  # held open, never answered, until stop()
        try:
            up_reader, up_writer = await asyncio.open_unix_connection(self.target)
        except OSError:
            writer.close()
            return
        if self._server is None:  # stopped while this connection was being made
            for each in (writer, up_writer):
                each.close()
                with contextlib.suppress(ConnectionError, OSError):
                    await each.wait_closed()
            return
        self._writers.add(up_writer)
        await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer))

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()
            # Kept in _writers until closed for good, so that stop() waits for it too.
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()
            self._writers.discard(writer)
