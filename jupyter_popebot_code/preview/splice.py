"""Large response bodies from the app to the browser without passing through Python: splice(2).

A body read through tornado is copied from the kernel into a buffer, into a bytes object, and
back into the kernel, with a dozen Python calls per chunk; on a busy machine that, not the
network, bounds a download. `splice` moves the bytes socket -> pipe -> socket inside the
kernel, and the loop here only waits for readiness and counts. Backpressure is the pipe's: the
app is read only as fast as the browser's socket takes the bytes.

Why the event loop and not a worker thread doing blocking splices (measured for issue 18, app
in a container, 64 MiB): a 64 MiB body needs about 16 waits here, so the loop costs nothing
measurable when idle (thread 0.70x straight to the app, loop 0.73x); while the loop runs other
requests' Python, a thread waits for the GIL (5 ms switch interval) after every call and fell
to 0.20x, the loop stayed at 0.87x.

Used for plain-TCP browser connections (no TLS: the kernel cannot encrypt) and bodies with a
Content-Length, once the head and anything tornado had buffered are written; see `http_relay`.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections.abc import Callable

# Bytes per splice call, and the pipe's size when the kernel allows it.
_PIPE_SIZE = 1024 * 1024
_FLAGS = getattr(os, "SPLICE_F_MOVE", 0) | getattr(os, "SPLICE_F_NONBLOCK", 0)

AVAILABLE = hasattr(os, "splice") and hasattr(fcntl, "F_SETPIPE_SZ")


class BodyCutShort(Exception):
    """The app closed its connection before the whole body was sent."""


async def ready(fd: int, write: bool) -> None:
    """Wait until the loop sees `fd` readable (or writable): one wake-up, no handler left."""
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not waiter.done():
            waiter.set_result(None)

    if write:
        loop.add_writer(fd, wake)
    else:
        loop.add_reader(fd, wake)
    try:
        await waiter
    finally:
        if write:
            loop.remove_writer(fd)
        else:
            loop.remove_reader(fd)


async def splice_body(
    source: int, target: int, length: int, progress: Callable[[int], None]
) -> None:
    """Move exactly `length` bytes from socket `source` to socket `target`.

    Both descriptors are the caller's own (dups, registered with no event loop handler).
    Raises BodyCutShort if the source ends early, OSError if the target goes away.
    """
    read_end, write_end = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        with contextlib.suppress(OSError):  # a smaller pipe is slower, not wrong
            fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, _PIPE_SIZE)
        remaining = length
        while remaining > 0:
            try:
                moved = os.splice(source, write_end, min(remaining, _PIPE_SIZE), flags=_FLAGS)
            except BlockingIOError:
                await ready(source, write=False)
                continue
            if moved == 0:
                raise BodyCutShort(f"{remaining} of {length} bytes never came")
            while moved > 0:
                try:
                    sent = os.splice(read_end, target, moved, flags=_FLAGS)
                except BlockingIOError:
                    await ready(target, write=True)
                    continue
                moved -= sent
                remaining -= sent
                progress(sent)
    finally:
        os.close(read_end)
        os.close(write_end)
