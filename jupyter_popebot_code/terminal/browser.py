"""The relay's leg to the browser for ttyd's output: raw frames written as they are, held back
while the browser lags (backpressure).

ttyd's frames arrive as raw bytes of whole WebSocket frames (see `ttyd_protocol`): they are
written to the browser's socket as they are, one write per batch, no Future or Task per frame
(straight to the socket when tornado holds nothing unsent for it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial

from tornado.iostream import IOStream, StreamClosedError

from .. import metrics
from ..web.websocket import WriteBacklog


class BrowserLeg:
    """Where ttyd's data frames go (a `FrameSink`): the browser's socket, or a queue meanwhile."""

    def __init__(
        self,
        stream: Callable[[], IOStream | None],
        buffer_limit: int,
        *,
        on_output: Callable[[], None],
        resume_backend: Callable[[], None],
    ) -> None:
        self._stream = stream  # None once the browser has left
        self._on_output = on_output
        self._resume_backend = resume_backend
        self.backlog = WriteBacklog(buffer_limit)
        # ttyd's frames that wait for the browser to catch up (reading ttyd is paused meanwhile).
        self._held: list[memoryview] = []
        self.backend_gone: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def forward(self, frames: memoryview) -> bool:
        """Write ttyd's frames to the browser; False: stop reading ttyd until it catches up."""
        metrics.TERMINAL_TO_BROWSER.inc(len(frames))
        self._on_output()
        if self._held or not self.backlog.room_for(len(frames)):
            # Not reading ttyd fills its socket, and ttyd stops reading the pty.
            self._held.append(frames)
            return False
        self._write(frames)
        return True

    def backend_closed(self) -> None:
        held, self._held = self._held, []
        for frames in held:  # ttyd's last words reach the browser before the close frame
            self._write(frames)
        if not self.backend_gone.done():
            self.backend_gone.set_result(None)

    def _write(self, frames: memoryview) -> None:
        stream = self._stream()
        if stream is None:
            return  # the browser left: on_close closes the ttyd leg
        sent = send_now(stream, frames)
        if sent == len(frames):
            return
        frames = frames[sent:]
        try:
            flushed = stream.write(frames)
        except StreamClosedError:
            return
        if flushed.done():  # went straight into the kernel's buffer
            flushed.exception()
            return
        size = len(frames)
        self.backlog.add(size)
        flushed.add_done_callback(partial(self._flushed, size))

    def _flushed(self, size: int, flushed: asyncio.Future[None]) -> None:
        self.backlog.flushed(size)
        if not flushed.cancelled():
            flushed.exception()  # a closed socket is handled by on_close, not here
        held = self._held
        while held and self.backlog.room_for(len(held[0])):
            self._write(held.pop(0))
        if not held:
            self._resume_backend()


def send_now(stream: IOStream, data: memoryview) -> int:
    """Bytes of `data` the kernel took at once, sent straight to the browser's socket (0: none).

    A keystroke's echo is one small frame: `IOStream.write` would spend a Future, a copy into
    its buffer and a dozen calls on it (about 20 µs, as much as the send itself). Only when
    tornado holds nothing unsent for this socket (so order is kept) and the socket is plain TCP
    (an SSL stream encrypts in tornado). What is left goes through `stream.write`, which buffers
    it, counts it for backpressure and notices a closed socket, as before.
    """
    if type(stream) is not IOStream or stream.writing() or stream.closed():
        return 0
    try:
        return stream.socket.send(data)
    except OSError:
        return 0  # would block, or a closed socket: stream.write meets it and closes the stream
