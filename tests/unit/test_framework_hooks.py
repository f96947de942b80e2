"""The framework hooks this package relies on, checked so that an upgrade fails here, loudly.

Where tornado or jupyter-server offer no public hook for what the package needs, the code uses
the nearest documented attribute; each test names what broke and which feature it breaks.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
from collections.abc import AsyncIterator
from typing import Any

import pytest
from tornado import web
from tornado.http1connection import HTTP1Connection, HTTP1ConnectionParameters
from tornado.httpclient import AsyncHTTPClient
from tornado.httpserver import HTTPServer
from tornado.httputil import HTTPHeaders, HTTPMessageDelegate, RequestStartLine
from tornado.netutil import bind_sockets
from tornado.routing import RuleRouter

from jupyter_popebot_code.preview.host import HostPattern, install_host_routes
from jupyter_popebot_code.preview.upstream import HeadTimeout, open_app_stream
from jupyter_popebot_code.terminal.frames import mask_payload


def naive_mask(mask: bytes, payload: bytes) -> bytes:
    return bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))


def test_mask_payload_matches_rfc_6455_example() -> None:
    # RFC 6455 §5.7: "Hello" masked with 37 fa 21 3d.
    assert mask_payload(bytes.fromhex("37fa213d"), b"Hello") == bytes.fromhex("7f9f4d5158")


def test_mask_payload_of_every_length_round_trips() -> None:
    for size in [0, 1, 2, 3, 4, 5, 7, 8, 125, 126, 65535, 65536, 100_003]:
        mask, payload = os.urandom(4), os.urandom(size)
        masked = mask_payload(mask, payload)
        assert masked == naive_mask(mask, payload), size
        assert mask_payload(mask, masked) == payload, size


def test_tornado_default_router_is_a_rule_router_with_a_rules_list() -> None:
    app = web.Application([])
    broken = (
        "tornado changed Application.default_router: preview host mode "
        "(preview_host.install_host_routes) can no longer route its hosts first"
    )
    assert isinstance(app.default_router, RuleRouter), broken
    assert isinstance(app.default_router.rules, list), broken


def test_tornado_get_handler_delegate_keeps_its_signature() -> None:
    parameters = list(inspect.signature(web.Application.get_handler_delegate).parameters)
    assert parameters[:3] == ["self", "request", "target_class"], (
        "tornado changed Application.get_handler_delegate: the authorizer's guard "
        "(authorizer.guard_handlers) and preview host routes dispatch through it"
    )


class Answer(web.RequestHandler):
    def initialize(self, text: str) -> None:
        self.text = text

    def get(self) -> None:
        self.write(self.text)


async def fetch_paths(app: web.Application, paths: list[str]) -> list[bytes]:
    sockets = bind_sockets(0, "127.0.0.1")
    server = HTTPServer(app)
    server.add_sockets(sockets)
    port = sockets[0].getsockname()[1]
    client = AsyncHTTPClient()
    try:
        return [
            (await asyncio.wait_for(client.fetch(f"http://127.0.0.1:{port}{path}"), 10)).body
            for path in paths
        ]
    finally:
        server.stop()


async def test_tornado_dispatches_every_route_through_the_instances_get_handler_delegate() -> None:
    """Routes given at creation and added later both go through the instance's method."""
    app = web.Application([(r"/early", Answer, {"text": "early"})])
    dispatched: list[str] = []
    dispatch = app.get_handler_delegate

    def spy(request: Any, target_class: type, *args: Any, **kwargs: Any) -> Any:
        dispatched.append(request.path)
        return dispatch(request, target_class, *args, **kwargs)

    app.get_handler_delegate = spy  # type: ignore[method-assign]
    app.add_handlers(".*$", [(r"/late", Answer, {"text": "late"})])
    bodies = await fetch_paths(app, ["/early", "/late"])
    assert bodies == [b"early", b"late"]
    assert dispatched == ["/early", "/late"], (
        "tornado no longer dispatches every route through Application.get_handler_delegate: "
        "WorkspaceAuthorizer.guard_handlers (auth/authorizer.py) would no longer ask the "
        "authorizer before JupyterLab's own handlers run, so non-admins could reach them"
    )


async def test_preview_host_routes_come_before_the_applications_own() -> None:
    """On a preview host the app's `/api/x` wins over the server's; elsewhere the server's."""
    app = web.Application([(r"/api/x", Answer, {"text": "jupyter"})])
    pattern = HostPattern("{port}-{workspace}.preview.test")
    install_host_routes(app, pattern, [(r"/api/x", Answer, {"text": "preview"})])
    sockets = bind_sockets(0, "127.0.0.1")
    server = HTTPServer(app)
    server.add_sockets(sockets)
    port = sockets[0].getsockname()[1]
    client = AsyncHTTPClient()
    try:
        preview_host = pattern.host(3000, "a" * 16)
        on_preview = await asyncio.wait_for(
            client.fetch(f"http://127.0.0.1:{port}/api/x", headers={"Host": preview_host}), 10
        )
        elsewhere = await asyncio.wait_for(client.fetch(f"http://127.0.0.1:{port}/api/x"), 10)
    finally:
        server.stop()
    assert on_preview.body == b"preview"
    assert elsewhere.body == b"jupyter"


@contextlib.asynccontextmanager
async def answering(script: bytes) -> AsyncIterator[int]:
    """A loopback server (its port) writing `script` on each connection once a request came."""
    done = asyncio.Event()
    writers: list[asyncio.StreamWriter] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        await reader.readuntil(b"\r\n\r\n")
        writer.write(script)
        await writer.drain()
        await done.wait()  # keeps the connection open: the reader must not wait for its end

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        done.set()
        for writer in writers:
            writer.close()
            await writer.wait_closed()
        server.close()
        await server.wait_closed()


async def read_answer(port: int, header_timeout: float) -> tuple[bool, list[bytes]]:
    stream = await open_app_stream(
        "127.0.0.1", port, connect_timeout=5, header_timeout=header_timeout
    )
    body: list[bytes] = []

    class Delegate(HTTPMessageDelegate):
        def data_received(self, chunk: bytes) -> None:
            body.append(chunk)

    connection = HTTP1Connection(stream, True, HTTP1ConnectionParameters(max_header_size=1024))
    try:
        await connection.write_headers(
            RequestStartLine("GET", "/", "HTTP/1.1"), HTTPHeaders({"Host": "x"})
        )
        connection.finish()
        whole = await asyncio.wait_for(connection.read_response(Delegate()), 10)
    finally:
        connection.close()
    return whole, body


async def test_tornado_reads_a_response_head_through_read_until_regex() -> None:
    """preview.upstream.AppStream bounds the head read by overriding `read_until_regex`."""
    broken = (
        "tornado's HTTP1Connection no longer reads a response head with "
        "IOStream.read_until_regex: PreviewProxy.header_timeout has no effect any more "
        "(preview/upstream.py)"
    )
    async with answering(b"HTTP/1.1 200 OK\r\nX-Trickle: never ends") as port:
        try:
            with pytest.raises(HeadTimeout):
                await read_answer(port, header_timeout=0.2)
        except asyncio.TimeoutError:
            raise AssertionError(broken) from None
    async with answering(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok") as port:
        assert await read_answer(port, header_timeout=0.2) == (True, [b"ok"]), broken
