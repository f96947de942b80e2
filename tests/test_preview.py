"""Previews through the Jupyter server, to a real app (node) in a real workspace container."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

import docker
import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest, HTTPResponse
from tornado.websocket import WebSocketClientConnection, websocket_connect

from jupyter_popebot_code.preview.proxy import PreviewProxy

from .conftest import USER_HEADER, Api, HeaderIdentityProvider, wait_for
from .preview_client import RAW_APP_SOURCE, start_app

APP_PORT = 8080
LOOPBACK_PORT = 8081
RAW_PORT = 8082  # tests/preview_app/raw.js: malformed answers
SETTINGS = {
    "ServerApp": {"identity_provider_class": HeaderIdentityProvider},
    "CodeWorkspacesApp": {"admin_users": ["boss"]},
    "PreviewProxy": {"ready_timeout": 1.0},
}
CROSS_SITE = "http://evil.example.com"


@pytest.fixture
def server_settings() -> dict[str, Any]:
    return {section: dict(values) for section, values in SETTINGS.items()}


class Preview:
    """One workspace with the app on APP_PORT (0.0.0.0) and LOOPBACK_PORT (127.0.0.1)."""

    def __init__(self, api: Api, port: int, workspace: dict[str, Any], ports: dict[str, Any]):
        self.api = api
        self.http_port = port
        self.workspace = workspace
        self.ports = ports
        self.url = next(p["url"] for p in ports["ports"] if p["port"] == APP_PORT)

    @property
    def id(self) -> str:
        return str(self.workspace["id"])

    def absolute_url(self) -> str:
        return self.url.replace("/code/preview/", "/code/preview-absolute/")

    async def fetch(
        self,
        path: str = "",
        *,
        user: str | None = "alice",
        url: str | None = None,
        headers: dict[str, str] | None = None,
        method: str = "GET",
        body: bytes | None = None,
        mode: str | None = "navigate",
    ) -> HTTPResponse:
        """A request as a browser sends it: a page load (Sec-Fetch-Mode) unless told otherwise."""
        sent = dict(headers or {})
        if user:
            sent[USER_HEADER] = user
        if mode:
            sent.setdefault("Sec-Fetch-Mode", mode)
        if body is None and method in ("POST", "PUT", "PATCH"):
            body = b""
        target = f"http://localhost:{self.http_port}{url or self.url}{path}"
        return await AsyncHTTPClient().fetch(
            target,
            method=method,
            headers=sent,
            body=body,
            raise_error=False,
            follow_redirects=False,
            allow_nonstandard_methods=True,
            request_timeout=60,
        )

    def websocket(
        self,
        path: str = "ws",
        *,
        user: str | None = "alice",
        headers: dict[str, str] | None = None,
        subprotocols: list[str] | None = None,
    ) -> Awaitable[WebSocketClientConnection]:
        sent = dict(headers or {})
        if user:
            sent[USER_HEADER] = user
        request = HTTPRequest(
            f"ws://localhost:{self.http_port}{self.url}{path}", headers=sent, connect_timeout=60
        )
        return websocket_connect(request, subprotocols=subprotocols)


def json_of(response: HTTPResponse) -> Any:
    return json.loads(response.body)


async def ports_of(api: Api, workspace_id: str) -> dict[str, Any]:
    code, body = await api.call("GET", f"{workspace_id}/ports")
    assert code == 200, body
    return body  # type: ignore[no-any-return]


NewPreview = Callable[[], Awaitable[Preview]]


@pytest.fixture
def new_preview(api: Api, jp_http_port: int, docker_client: docker.DockerClient) -> NewPreview:
    """Alice's workspace with the app running (a factory: the test's loop runs it)."""

    async def make() -> Preview:
        alice = api.as_user("alice")
        workspace = await alice.create("preview")
        name = workspace["container_name"]
        await asyncio.to_thread(start_app, docker_client, name, APP_PORT)
        await asyncio.to_thread(start_app, docker_client, name, LOOPBACK_PORT, "127.0.0.1")
        ports = await ports_of(alice, workspace["id"])
        return Preview(alice, jp_http_port, workspace, ports)

    return make


def relay_of(jp_serverapp: Any) -> PreviewProxy:
    return jp_serverapp.web_app.settings["jupyter_popebot_code"].preview_proxy  # type: ignore[no-any-return]


# -- the ports listing --------------------------------------------------------------------------


async def test_ports_list_what_listens_and_nothing_once_stopped(new_preview: NewPreview) -> None:
    preview = await new_preview()
    ports = preview.ports
    assert ports["status"] == "running"
    listed = {p["port"]: p for p in ports["ports"]}
    assert set(listed) == {APP_PORT, LOOPBACK_PORT}  # ttyd's 7681 is left out
    assert listed[APP_PORT]["reachable"] is True
    assert listed[APP_PORT]["address"] in ("0.0.0.0", "::")
    assert listed[LOOPBACK_PORT] == {**listed[LOOPBACK_PORT], "address": "127.0.0.1"}
    assert listed[LOOPBACK_PORT]["reachable"] is False
    template = ports["url_template"]
    assert template.endswith("/{port}/")
    assert listed[APP_PORT]["url"] == template.replace("{port}", str(APP_PORT))
    assert template.startswith("/a%40b/code/preview/" + preview.id + "/")
    # What the listing says is what the proxy does.
    assert (await preview.fetch()).code == 200
    loopback = await preview.fetch(url=listed[LOOPBACK_PORT]["url"])
    assert loopback.code == 502
    assert "0.0.0.0" in json_of(loopback)["message"]

    code, _ = await preview.api.as_user("bob").call("GET", f"{preview.id}/ports")
    assert code == 404
    code, body = await preview.api.as_user("boss").call("GET", f"{preview.id}/ports")
    assert code == 200
    assert body["url_template"] == template  # the owner's key, also when an admin asks

    code, _ = await preview.api.call("POST", f"{preview.id}/stop")
    assert code == 200
    stopped = await ports_of(preview.api, preview.id)
    assert stopped["status"] == "exited"
    assert stopped["ports"] == []
    assert stopped["url_template"] == template


# -- HTTP ----------------------------------------------------------------------------------------


async def test_a_page_is_served_sandboxed_without_the_apps_cookies(new_preview: NewPreview) -> None:
    preview = await new_preview()
    page = await preview.fetch()
    assert page.code == 200
    assert b"preview works" in page.body
    assert page.headers["Content-Type"] == "text/html"
    csp = page.headers.get_list("Content-Security-Policy")
    assert csp == [
        "sandbox allow-scripts allow-forms allow-popups allow-modals allow-downloads "
        "allow-pointer-lock allow-presentation; frame-ancestors 'self'"
    ]
    assert "allow-same-origin" not in csp[0]
    assert "allow-top-navigation" not in csp[0]
    assert "Set-Cookie" not in page.headers
    # No trailing slash: sent to the page's folder, so its relative links resolve.
    bare = await preview.fetch(url=preview.url.rstrip("/") + "?q=1")
    assert bare.code == 302
    assert bare.headers["Location"] == preview.url + "?q=1"


async def test_the_app_sees_its_own_paths_and_never_the_users_credentials(
    new_preview: NewPreview,
) -> None:
    preview = await new_preview()
    secrets = {
        "Cookie": "authjs.session-token=secret-session; _xsrf=secret-xsrf",
        "Authorization": "token secret-token",
        "X-XSRFToken": "secret-xsrf",
        "X-Forwarded-Host": "forged.example.com",
    }
    seen = json_of(await preview.fetch("headers?a=b%2Fc", headers=secrets))
    assert seen["url"] == "/headers?a=b%2Fc"
    headers = seen["headers"]
    for name in ("cookie", "authorization", "x-xsrftoken"):
        assert name not in headers
    assert "secret" not in json.dumps(headers)
    assert headers["host"] == f"localhost:{APP_PORT}"
    assert headers["x-forwarded-prefix"] == preview.url.rstrip("/")
    assert headers["x-forwarded-host"] == f"localhost:{preview.http_port}"
    assert headers["x-forwarded-proto"] == "http"
    # preview-absolute: the whole path, for apps started with that base path.
    absolute = preview.absolute_url()
    seen = json_of(await preview.fetch("headers", url=absolute))
    assert seen["url"] == absolute + "headers"
    assert "x-forwarded-prefix" not in seen["headers"]


async def test_redirects_stay_in_the_preview(new_preview: NewPreview) -> None:
    preview = await new_preview()
    prefix = preview.url.rstrip("/")
    expected = {
        "redirect-absolute": f"{prefix}/target?x=1",
        "redirect-path": f"{prefix}/target",
        "redirect-relative": "target",
        "redirect-away": "https://example.com/",
    }
    for path, location in expected.items():
        response = await preview.fetch(path)
        assert response.code == 302, path
        assert response.headers["Location"] == location, path
    # With preview-absolute the app's paths are the public ones already.
    absolute = preview.absolute_url()
    response = await preview.fetch("redirect-path", url=absolute)
    assert response.headers["Location"] == "/target"
    response = await preview.fetch("redirect-absolute", url=absolute)
    assert response.headers["Location"] == "/target?x=1"


async def test_bodies_stream_both_ways_with_every_method(new_preview: NewPreview) -> None:
    preview = await new_preview()
    body = os.urandom(5 * 1024 * 1024 + 7)
    for method in ("POST", "PUT", "PATCH"):
        echoed = json_of(await preview.fetch("echo", method=method, body=body, mode="cors"))
        assert echoed == {
            "size": len(body),
            "sha256": hashlib.sha256(body).hexdigest(),
            "method": method,
        }
    deleted = json_of(await preview.fetch("echo", method="DELETE", mode="cors"))
    assert deleted["method"] == "DELETE"
    head = await preview.fetch("big?mb=1", method="HEAD")
    assert head.code == 200
    assert head.headers["Content-Length"] == str(1024 * 1024)
    assert head.body == b""
    assert (await preview.fetch("empty")).code == 204
    missing = await preview.fetch("nowhere")
    assert missing.code == 404
    assert missing.body == b"not found: /nowhere"
    download = await preview.fetch("big?mb=3")
    assert len(download.body) == 3 * 1024 * 1024
    # An app that dies mid-body: the browser sees a broken answer, never a complete one.
    for path in ("truncated", "truncated-chunked"):
        with pytest.raises(HTTPClientError) as broken:
            await preview.fetch(path)
        assert broken.value.code == 599, path  # the connection broke off
    assert (await preview.fetch("headers")).code == 200


async def test_a_large_body_arrives_whole_or_visibly_cut(
    new_preview: NewPreview, caplog: pytest.LogCaptureFixture
) -> None:
    """Bodies from 1 MiB on are spliced in the kernel: cut short by the app, the browser sees it."""
    preview = await new_preview()
    whole = await preview.fetch("big?mb=3")
    assert whole.code == 200
    assert len(whole.body) == 3 * 1024 * 1024
    with pytest.raises(HTTPClientError) as broken:
        await preview.fetch("big?mb=4&cut=1")
    assert broken.value.code == 599  # the connection broke off, never a whole-looking body
    assert "body broke off" in caplog.text  # in the kernel copy, past what tornado had read
    assert (await preview.fetch("headers")).code == 200


# -- what the app may send ------------------------------------------------------------------------


async def raw_preview(new_preview: NewPreview, docker_client: docker.DockerClient) -> Preview:
    """A preview whose url is the raw app's (RAW_PORT) rather than app.js's."""
    preview = await new_preview()
    name = preview.workspace["container_name"]
    await asyncio.to_thread(start_app, docker_client, name, RAW_PORT, source=RAW_APP_SOURCE)
    preview.url = preview.url.replace(f"/{APP_PORT}/", f"/{RAW_PORT}/")
    return preview


def no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    """Nothing went wrong in the server: a 502 is logged as a request line, nothing more."""
    failed = [r for r in caplog.records if r.exc_info or "Uncaught exception" in r.getMessage()]
    assert not failed, [r.getMessage() for r in failed]
    assert "Traceback" not in caplog.text


ORIGIN_WIDE_SENT = (
    "Set-Cookie",
    "Set-Cookie2",
    "Clear-Site-Data",
    "Strict-Transport-Security",
    "Alt-Svc",
    "Accept-CH",
    "Critical-CH",
    "Set-Login",
    "Reporting-Endpoints",
    "Report-To",
    "NEL",
    "Origin-Agent-Cluster",
    "Supports-Loading-Mode",
    "Speculation-Rules",
    "Service-Worker-Allowed",
    "WWW-Authenticate",
    "Keep-Alive",
    "Unknown-Header",
)


@pytest.mark.parametrize(
    "server_settings", [{**SETTINGS, "PreviewProxy": {"allow_response_headers": ["hx-*"]}}]
)
async def test_only_the_headers_a_page_needs_reach_the_browser(
    new_preview: NewPreview, docker_client: docker.DockerClient, caplog: pytest.LogCaptureFixture
) -> None:
    preview = await raw_preview(new_preview, docker_client)
    answer = await preview.fetch("headers")
    assert answer.code == 200
    assert answer.body == b"ok"
    for name in ORIGIN_WIDE_SENT:
        assert name not in answer.headers, name
    assert answer.headers["Server"] != "raw-app"  # the Jupyter server's own
    expected = {
        "Content-Type": "text/plain",
        "Content-Length": "2",
        "Cache-Control": "no-cache",
        "Etag": '"v1"',
        "Last-Modified": "Tue, 01 Dec 2026 00:00:00 GMT",
        "Content-Disposition": 'inline; filename="a.txt"',
        "Accept-Ranges": "bytes",
        "Content-Language": "en",
        "Link": "</main.js>; rel=preload; as=script",
        "Referrer-Policy": "no-referrer",
        "Permissions-Policy": "camera=()",
        "X-Total-Count": "42",
        "X-Accel-Buffering": "no",
        "Hx-Trigger": "refreshed",  # allowed by PreviewProxy.allow_response_headers
    }
    for name, value in expected.items():
        assert answer.headers.get_list(name) == [value], name
    assert answer.headers.get_list("Vary") == ["Accept-Encoding"]
    # The sandbox and the opaque origin's CORS are the proxy's, on top.
    assert "sandbox" in answer.headers["Content-Security-Policy"]
    cors = await preview.fetch("headers", user=None, mode="cors", headers={"Origin": "null"})
    assert cors.headers["Access-Control-Allow-Origin"] == "null"
    assert "Set-Cookie" not in cors.headers
    no_traceback(caplog)


MALFORMED = {
    "two-lengths": "conflicting Content-Length headers (5, 6)",
    "length-list": "conflicting Content-Length headers (5, 6)",
    "bad-length": "an invalid Content-Length",
    "negative-length": "an invalid Content-Length",
    "huge-length": "an invalid Content-Length",
    "length-and-chunked": "both Transfer-Encoding and Content-Length",
    "gzip-encoded": "an unsupported Transfer-Encoding (gzip)",
    "no-content-body": "a body with 204 No Content",
    "huge-headers": "response headers over 64 KiB",
    "not-http": "a malformed answer",
    "bad-status": "a malformed answer",
    "http2": "a malformed answer",
    "bad-header-line": "a malformed answer",
    "mid-headers": "closed the connection before its response head",
}


async def test_a_malformed_answer_is_a_502_at_once(
    new_preview: NewPreview, docker_client: docker.DockerClient, caplog: pytest.LogCaptureFixture
) -> None:
    preview = await raw_preview(new_preview, docker_client)
    # Several of these keep their socket open: the answer comes now, not when the app gives up.
    for path, message in MALFORMED.items():
        answer = await preview.fetch(path)
        assert answer.code == 502, path
        body = json_of(answer)
        assert body["message"].startswith(f"The app on port {RAW_PORT} "), path
        assert message in body["message"], (path, body["message"])
        assert "Content-Length" not in answer.headers or answer.headers["Content-Length"] == str(
            len(answer.body)
        )
    # Agreeing duplicates are one length.
    same = await preview.fetch("equal-lengths")
    assert same.code == 200
    assert same.body == b"hello"
    assert same.headers.get_list("Content-Length") == ["5"]
    # Bad chunks after the head went out: the connection is cut, never a whole-looking body.
    for path in ("bad-chunk", "bad-chunk-end"):
        with pytest.raises(HTTPClientError) as broken:
            await preview.fetch(path)
        assert broken.value.code == 599, path
    assert (await preview.fetch("headers")).code == 200
    no_traceback(caplog)


@pytest.mark.parametrize("server_settings", [{**SETTINGS, "PreviewProxy": {"header_timeout": 1.0}}])
async def test_an_answer_that_never_ends_its_head_is_a_502(
    new_preview: NewPreview, docker_client: docker.DockerClient, caplog: pytest.LogCaptureFixture
) -> None:
    """Something that is not HTTP (an SSH banner) or a head that trickles on: bounded in time."""
    preview = await raw_preview(new_preview, docker_client)
    for path in ("ssh-banner", "slow-head"):
        answer = await preview.fetch(path)
        assert answer.code == 502, path
        message = json_of(answer)["message"]
        assert message.startswith(f"The app on port {RAW_PORT} did not finish its response head"), (
            message
        )
        assert "within 1 s" in message
    assert (await preview.fetch("headers")).code == 200
    no_traceback(caplog)


async def test_an_apps_cookies_never_reach_the_jupyter_origin(new_preview: NewPreview) -> None:
    """Path mode: whatever their Domain or Path, the app's cookies are the Jupyter origin's."""
    preview = await new_preview()
    answer = await preview.fetch("cookies")
    assert answer.code == 200
    assert answer.body == b"cookies"
    assert answer.headers.get_list("Set-Cookie") == []


# -- connections to the app -----------------------------------------------------------------------


async def peer_of(preview: Preview, query: str = "") -> dict[str, int]:
    """The app's view of the connection that carried a request: its port, its request count."""
    answer = await preview.fetch("peer" + query, mode="cors", headers={"Origin": "null"})
    assert answer.code == 200, answer.body
    return json_of(answer)  # type: ignore[no-any-return]


KEEP = {**SETTINGS, "PreviewProxy": {"ready_timeout": 1.0, "pool_idle_timeout": 60.0}}


@pytest.mark.parametrize("server_settings", [KEEP])
async def test_a_connection_to_the_app_carries_the_next_requests(
    new_preview: NewPreview, jp_serverapp: Any
) -> None:
    preview = await new_preview()
    first = await peer_of(preview)
    second = await peer_of(preview)
    third = await peer_of(preview)
    assert second["port"] == first["port"] == third["port"]
    assert (first["requests"], second["requests"], third["requests"]) == (1, 2, 3)
    assert relay_of(jp_serverapp).pool.idle(preview.id) == 1
    # A body goes on a new connection (it could not be sent again), which is kept after.
    posted = await preview.fetch("echo", method="POST", body=b"x" * 10, mode="cors")
    assert posted.code == 200
    assert relay_of(jp_serverapp).pool.idle(preview.id) == 2
    # The app closes a kept connection while it is idle: the next request takes a new one.
    closing = await peer_of(preview, "?close=1")
    await asyncio.sleep(0.5)
    after = await peer_of(preview)
    assert after["port"] != closing["port"]


@pytest.mark.parametrize("server_settings", [KEEP])
async def test_kept_connections_belong_to_one_workspace_and_close_when_it_stops(
    new_preview: NewPreview, jp_serverapp: Any
) -> None:
    first = await new_preview()
    second = await new_preview()
    seen = await peer_of(first)
    assert (await peer_of(first))["requests"] == seen["requests"] + 1
    # Another workspace of the same owner, same port: its own connection, never the first's.
    assert (await peer_of(second))["requests"] == 1
    assert (await peer_of(second))["requests"] == 2
    pool = relay_of(jp_serverapp).pool
    assert pool.idle(first.id) == 1
    assert pool.idle(second.id) == 1
    code, _ = await first.api.call("POST", f"{first.id}/stop")
    assert code == 200
    assert pool.idle(first.id) == 0
    assert pool.idle(second.id) == 1
    code, _ = await second.api.call("DELETE", second.id)
    assert code == 204
    assert pool.idle(second.id) == 0


# -- who may use it -------------------------------------------------------------------------------


async def test_only_the_owner_and_admins_open_it(new_preview: NewPreview) -> None:
    preview = await new_preview()
    assert (await preview.fetch(user="boss")).code == 200
    other = await preview.fetch(user="bob")
    assert other.code == 403
    wrong_key = preview.url.replace(preview.url.split("/")[-3], "a" * 26)
    assert (await preview.fetch(url=wrong_key)).code == 403
    unknown = preview.url.replace(preview.id, "a" * 16)
    refused = await preview.fetch(url=unknown, user="bob")
    # Someone else's workspace and an unknown one look alike.
    assert refused.code == 403
    assert json_of(refused)["message"] == json_of(other)["message"]
    # Bob's own key for Alice's workspace is no key at all.
    bobs = await preview.api.as_user("bob").create("bob's")
    bobs_key = (await ports_of(preview.api.as_user("bob"), bobs["id"]))["url_template"]
    key = bobs_key.split("/")[-3]
    assert (
        await preview.fetch(url=preview.url.replace(preview.url.split("/")[-3], key))
    ).code == 403


async def test_without_identity_only_the_sandboxed_pages_own_requests_pass(
    new_preview: NewPreview,
) -> None:
    preview = await new_preview()
    # A page load (a bookmark in a signed-out browser, or a link someone was sent): refused.
    page = await preview.fetch(user=None)
    assert page.code == 401
    assert "Sign in" in json_of(page)["message"]
    # A link followed inside the preview's frame comes cookieless: the key authorizes it, and
    # frame-ancestors keeps any other site from framing what it gets.
    followed = await preview.fetch(
        user=None, headers={"Sec-Fetch-Dest": "iframe", "Sec-Fetch-Site": "cross-site"}
    )
    assert followed.code == 200
    assert "frame-ancestors 'self'" in followed.headers["Content-Security-Policy"]
    top_level = await preview.fetch(user=None, headers={"Sec-Fetch-Dest": "document"})
    assert top_level.code == 401
    # No Sec-Fetch-Mode: not a browser, which must authenticate like any API client.
    assert (await preview.fetch("headers", user=None, mode=None)).code == 401
    # The sandboxed page's subresources carry no cookies: the key authorizes them.
    image = await preview.fetch("headers", user=None, mode="no-cors")
    assert image.code == 200
    module = await preview.fetch(
        "headers",
        user=None,
        mode="cors",
        headers={"Origin": "null", "Sec-Fetch-Site": "cross-site"},
    )
    assert module.code == 200
    assert module.headers["Access-Control-Allow-Origin"] == "null"
    assert "Access-Control-Allow-Credentials" not in module.headers
    # Its origin is opaque: the app sees its own origin, never "null" or the server's.
    assert json_of(module)["headers"]["origin"] == f"http://localhost:{APP_PORT}"
    posted = await preview.fetch(
        "echo", user=None, mode="cors", method="POST", body=b"x", headers={"Origin": "null"}
    )
    assert json_of(posted)["size"] == 1
    preflight = await preview.fetch(
        "echo",
        user=None,
        mode="cors",
        method="OPTIONS",
        headers={
            "Origin": "null",
            "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert preflight.code == 204
    assert preflight.headers["Access-Control-Allow-Methods"] == "PUT"
    assert preflight.headers["Access-Control-Allow-Headers"] == "content-type"
    # A wrong key is refused whoever asks.
    wrong_key = preview.url.replace(preview.url.split("/")[-3], "b" * 26)
    assert (await preview.fetch(url=wrong_key, user=None, mode="no-cors")).code == 403


async def test_cross_site_requests_are_refused(new_preview: NewPreview) -> None:
    preview = await new_preview()
    for user in ("alice", None):
        refused = await preview.fetch(
            "echo", user=user, mode="cors", method="POST", body=b"x", headers={"Origin": CROSS_SITE}
        )
        assert refused.code == 403
        assert "Cross-origin" in json_of(refused)["message"]
    same_site = await preview.fetch(
        "headers", headers={"Origin": f"http://localhost:{preview.http_port}"}, mode="cors"
    )
    assert same_site.code == 200


# -- WebSockets ----------------------------------------------------------------------------------


async def test_websockets_echo_both_ways_with_the_apps_subprotocol(new_preview: NewPreview) -> None:
    preview = await new_preview()
    ws = await preview.websocket(
        "ws?hot=1",
        headers={"Cookie": "authjs.session-token=secret", "Authorization": "token secret"},
        subprotocols=["echo-v1", "other"],
    )
    assert ws.selected_subprotocol == "echo-v1"
    hello = json.loads(await ws.read_message())  # type: ignore[arg-type]
    assert hello["url"] == "/ws?hot=1"
    assert "cookie" not in hello["headers"]
    assert "authorization" not in hello["headers"]
    assert hello["headers"]["host"] == f"localhost:{APP_PORT}"
    await ws.write_message("ping text")
    assert await ws.read_message() == "ping text"
    payload = os.urandom(200_000)
    await ws.write_message(payload, binary=True)
    assert await ws.read_message() == payload
    # The app's close code and reason reach the browser.
    await ws.write_message("close-me")
    assert await ws.read_message() is None
    assert ws.close_code == 4000
    assert ws.close_reason == "bye"
    ws.close()


async def test_websockets_are_authorized_like_requests(new_preview: NewPreview) -> None:
    preview = await new_preview()

    async def refused(connecting: Awaitable[WebSocketClientConnection]) -> int:
        try:
            ws = await connecting
        except HTTPClientError as err:
            return err.code
        ws.close()
        raise AssertionError("the upgrade was accepted")

    assert await refused(preview.websocket(headers={"Origin": CROSS_SITE})) == 403
    assert await refused(preview.websocket(user="bob")) == 403
    assert await refused(preview.websocket(user=None)) == 401  # no Origin: not the sandbox
    # The sandboxed page's hot-reload socket: no cookies, Origin null, a valid key, and (as
    # Chromium sends it) no Sec-Fetch-Mode.
    ws = await preview.websocket(user=None, headers={"Origin": "null"})
    hello = json.loads(await ws.read_message())  # type: ignore[arg-type]
    assert hello["headers"]["origin"] == f"http://localhost:{APP_PORT}"
    await ws.write_message("hmr")
    assert await ws.read_message() == "hmr"
    ws.close()


@pytest.mark.parametrize(
    "server_settings", [{**SETTINGS, "PreviewProxy": {"max_connections_per_workspace": 1}}]
)
async def test_connections_per_workspace_are_limited(
    new_preview: NewPreview, jp_serverapp: Any
) -> None:
    preview = await new_preview()
    ws = await preview.websocket()
    await ws.read_message()
    refused = await preview.fetch("headers")
    assert refused.code == 503
    assert "limit 1" in json_of(refused)["message"]
    second = await preview.websocket()
    assert await second.read_message() is None
    assert second.close_code == 1008
    second.close()
    ws.close()
    await wait_for(lambda: relay_of(jp_serverapp).open_connections(preview.id) == 0, 10)
    assert (await preview.fetch("headers")).code == 200


# -- the workspace's life -----------------------------------------------------------------------


async def test_opening_a_preview_starts_a_stopped_workspace_and_counts_as_use(
    new_preview: NewPreview, docker_client: docker.DockerClient, service: Any
) -> None:
    preview = await new_preview()
    before = service.last_activity.get(preview.id, 0.0)
    await asyncio.sleep(1.1)  # activity is recorded at most once a second
    assert (await preview.fetch("headers")).code == 200
    assert service.last_activity[preview.id] > before
    code, workspace = await preview.api.call("GET", preview.id)
    assert workspace["last_used_at"] is not None

    code, _ = await preview.api.call("POST", f"{preview.id}/stop")
    assert code == 200
    container = docker_client.containers.get(preview.workspace["container_name"])
    container.reload()
    assert container.status == "exited"
    # The app's process ended with the container: the workspace starts, the port stays closed.
    started = await preview.fetch()
    assert started.code == 502
    assert f"port {APP_PORT}" in json_of(started)["message"]
    container.reload()
    assert container.status == "running"
    await asyncio.to_thread(start_app, docker_client, container.name, APP_PORT)
    assert (await preview.fetch()).code == 200


async def test_a_workspace_stopped_behind_the_servers_back_a_moment_ago_is_started(
    new_preview: NewPreview, docker_client: docker.DockerClient, jp_serverapp: Any
) -> None:
    preview = await new_preview()
    name = preview.workspace["container_name"]
    states = jp_serverapp.web_app.settings["jupyter_popebot_code"].container_manager.states
    believed = states.get(name)
    assert believed is not None
    assert believed.status == "running"
    container = docker_client.containers.get(name)
    await asyncio.to_thread(container.stop, timeout=1)

    def stream_saw_the_stop() -> bool:
        state = states.get(name)
        return state is not None and state.status == "exited"

    await wait_for(stream_saw_the_stop, timeout=10, interval=0.02)
    # Back to the moment before Docker's event stream told the server: it believes the
    # container runs (no event follows to correct it; only asking Docker does).
    states.observe(name, believed, time.monotonic())
    answer = await preview.fetch()
    # The dial failed, Docker was asked, and the workspace started; its app died with it.
    assert answer.code == 502
    assert f"port {APP_PORT}" in json_of(answer)["message"]
    container.reload()
    assert container.status == "running"
