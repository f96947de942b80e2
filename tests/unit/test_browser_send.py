"""Fast unit tier for the browser leg's straight send (`browser.send_now`), on top of
tests/test_relay.py, which relays through it to a real browser socket."""

from __future__ import annotations

import asyncio
import socket

from tornado.iostream import IOStream

from jupyter_popebot_code.terminal.browser import send_now


def test_a_small_frame_goes_straight_to_the_socket_when_nothing_waits() -> None:
    async def scenario() -> None:
        ours, browser = socket.socketpair()
        stream = IOStream(ours)
        try:
            assert send_now(stream, memoryview(b"\x82\x020x")) == 4
            assert browser.recv(16) == b"\x82\x020x"
        finally:
            stream.close()
            browser.close()

    asyncio.run(scenario())


def test_nothing_is_sent_past_what_tornado_still_holds() -> None:
    async def scenario() -> None:
        ours, browser = socket.socketpair()
        ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        stream = IOStream(ours)
        try:
            # Fill the socket until tornado keeps the rest in its own buffer.
            while not stream.writing():
                stream.write(b"a" * 65536)
            assert send_now(stream, memoryview(b"late")) == 0
        finally:
            stream.close()
            browser.close()

    asyncio.run(scenario())


def test_a_closed_stream_is_left_to_tornado() -> None:
    async def scenario() -> None:
        ours, browser = socket.socketpair()
        stream = IOStream(ours)
        stream.close()
        browser.close()
        assert send_now(stream, memoryview(b"x")) == 0

    asyncio.run(scenario())
