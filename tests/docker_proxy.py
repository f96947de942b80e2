"""A Unix-socket relay in front of the real Docker engine that a test can cut and restore.

From the server's side, a cut relay is exactly an engine that went away (its socket is gone),
and a stalled one an engine that accepts connections and never answers; the real engine keeps
running for everything else on the machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
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
        self._listener: socket.socket | None = None
        # Each cut ends the connections of the one before: a connection still being set up
        # when its cut comes is closed as soon as it notices (see _serve).
        self._cut = 0
        self._accepted: set[socket.socket] = set()  # accepted, not yet taken up by _serve
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
        """Let every connection end (its transports close) before the loop stops."""
        me = asyncio.current_task()
        tasks = [task for task in asyncio.all_tasks() if task is not me]
        if tasks:
            await asyncio.wait(tasks, timeout=5)

    async def _start(self) -> None:
        if self._listener is not None:
            return
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(self.path))
        listener.listen()
        listener.setblocking(False)
        self._listener = listener
        self._loop.add_reader(listener.fileno(), self._accept, listener)

    def _accept(self, listener: socket.socket) -> None:
        # Not asyncio's Server: on Python 3.11 a connection it accepts in the same loop turn as
        # its close() is left half made, its socket open (Server._attach asserts). Here a
        # connection is ours from accept() on, so a cut always finds it.
        while True:
            try:
                connection, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            connection.setblocking(False)
            self._accepted.add(connection)
            self._loop.create_task(self._serve(connection, self._cut))

    async def _stop(self) -> None:
        self._cut += 1
        if self._listener is not None:
            self._loop.remove_reader(self._listener.fileno())
            self._listener.close()
            self._listener = None
            os.unlink(self.path)
        for connection in self._accepted:
            connection.close()
        self._accepted.clear()
        writers = list(self._writers)
        self._writers.clear()
        for writer in writers:
            writer.close()
        # Closing finishes on the loop: wait for it, or close() may stop the loop first and a
        # transport still open is collected later, as a ResourceWarning in another test.
        closing = asyncio.gather(*(w.wait_closed() for w in writers), return_exceptions=True)
        await asyncio.wait([closing], timeout=5)

    async def _serve(self, connection: socket.socket, cut: int) -> None:
        if connection not in self._accepted:
            return  # closed by a cut before it was taken up
        self._accepted.discard(connection)
        try:
            reader, writer = await asyncio.open_unix_connection(sock=connection)
        except OSError:
            connection.close()
            return
        self._writers.add(writer)
        if cut != self._cut:  # cut while the transport was being made
            await _close(writer)
            return
        if self.stalled:
            return  # held open, never answered, until stop()
        try:
            up_reader, up_writer = await asyncio.open_unix_connection(self.target)
        except OSError:
            await _close(writer)
            return
        self._writers.add(up_writer)
        if cut != self._cut:
            await asyncio.gather(_close(writer), _close(up_writer))
            return
        await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer))
        await asyncio.gather(_close(writer), _close(up_writer))
        self._writers.difference_update((writer, up_writer))

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
            # A half close passes on (an exec's stdin ends, its output still comes back).
            if writer.can_write_eof() and not writer.is_closing():
                writer.write_eof()
        except (ConnectionError, OSError):
            writer.close()


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(ConnectionError, OSError):
        await writer.wait_closed()
