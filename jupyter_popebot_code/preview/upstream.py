"""The TCP connection to an app in a workspace, and how much of a response head it will wait for.

tornado's HTTP1Connection reads a response head with one `read_until_regex` on its stream and
waits as long as bytes keep it unfinished, or none come: an app that speaks something else (an
SSH banner) or trickles headers would hold the request forever. `AppStream` bounds that read: the
wait for the first byte is free (a long poll answers late on purpose), the rest of the head must
follow within `header_timeout` and fit `max_header_size` (tornado's own limit, an
UnsatisfiableReadError).

Connections are opened here rather than through TCPClient: an address needs no resolver (which
runs getaddrinfo in a thread per connection), and the stream is of our class.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

from tornado import gen
from tornado.iostream import IOStream, StreamClosedError

# Bytes read from the app's socket per system call (tornado's default is 64 KiB).
_READ_CHUNK = 256 * 1024
# Blank lines tolerated before a response head (a previous answer's stray CRLF).
_LEADING_BLANKS = 4


class HeadTimeout(Exception):
    """The app began a response head and did not end it within the time allowed."""


class AppStream(IOStream):
    """An IOStream to an app, whose response heads are read within a size and a time."""

    def __init__(self, sock: socket.socket, header_timeout: float) -> None:
        super().__init__(sock, read_chunk_size=_READ_CHUNK)
        self.header_timeout = header_timeout
        # Whether any byte of the current answer arrived: a kept connection that fails before
        # that was closed by the app while idle, and the request may go again on a new one.
        self.answered = False

    def read_until_regex(self, regex: bytes, max_bytes: int | None = None) -> asyncio.Future[bytes]:
        # Only HTTP1Connection's head read calls this (bodies use read_bytes and read_until).
        return asyncio.ensure_future(self._read_head(regex, max_bytes))

    async def _read_head(self, regex: bytes, max_bytes: int | None) -> bytes:
        first = await self.read_bytes(1, partial=True)
        self.answered = True
        for _ in range(_LEADING_BLANKS):
            if first not in (b"\r", b"\n"):
                break
            first = await self.read_bytes(1, partial=True)
        rest = super().read_until_regex(regex, None if max_bytes is None else max_bytes - 1)
        if self.header_timeout <= 0:
            return first + await rest
        try:
            head: bytes = await gen.with_timeout(
                self.io_loop.time() + self.header_timeout,
                rest,
                quiet_exceptions=StreamClosedError,
            )
        except TimeoutError as exc:
            self.close()
            raise HeadTimeout() from exc
        return first + head


async def open_app_stream(
    host: str, port: int, *, connect_timeout: float, header_timeout: float
) -> AppStream:
    """A connected, TCP_NODELAY stream to host:port (an address, or a name on the network)."""
    loop = asyncio.get_running_loop()
    try:
        address = ipaddress.ip_address(host)
        family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
        target: tuple[str, int] = (host, port)
    except ValueError:  # a container name (connect_via = name): resolved by the network's DNS
        found = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        if not found:
            raise OSError(f"{host} does not resolve") from None
        family, _, _, _, sockaddr = found[0]
        target = (str(sockaddr[0]), int(sockaddr[1]))
    sock = socket.socket(family, socket.SOCK_STREAM)
    stream = AppStream(sock, header_timeout)
    try:
        await asyncio.wait_for(stream.connect(target), connect_timeout)
    except BaseException:
        stream.close()
        raise
    stream.set_nodelay(True)
    return stream
