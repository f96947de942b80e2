"""Host mode of previews: a host per port, with a cookie handed over from the Jupyter origin."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlsplit

import docker
import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest, HTTPResponse
from tornado.websocket import websocket_connect

from .conftest import USER_HEADER, Api, HeaderIdentityProvider
from .preview_client import start_app

APP_PORT = 8080


@pytest.fixture
def server_settings(jp_http_port: int, jp_base_url: str) -> dict[str, Any]:
    return {
        "ServerApp": {"identity_provider_class": HeaderIdentityProvider},
        "CodeWorkspacesApp": {"admin_users": ["boss"]},
        "PreviewProxy": {
            "mode": "host",
            "host_pattern": f"{{port}}-{{workspace}}.preview.localhost:{jp_http_port}",
            "jupyter_url": f"http://localhost:{jp_http_port}{jp_base_url}",
        },
    }


async def fetch(
    port: int, url: str, *, user: str | None = None, headers: dict[str, str] | None = None
) -> HTTPResponse:
    """GET a full URL (any host name) from the test server, as a browser would send it."""
    parts = urlsplit(url)
    sent = {"Host": parts.netloc, "Sec-Fetch-Mode": "navigate", **(headers or {})}
    if user:
        sent[USER_HEADER] = user
    target = f"http://127.0.0.1:{port}{parts.path}" + (f"?{parts.query}" if parts.query else "")
    return await AsyncHTTPClient().fetch(
        target, headers=sent, raise_error=False, follow_redirects=False, request_timeout=60
    )


def cookie_of(response: HTTPResponse) -> str:
    (cookie,) = response.headers.get_list("Set-Cookie")
    return cookie.split(";", 1)[0]


async def test_a_preview_host_hands_its_cookie_over_from_the_jupyter_login(
    api: Api, jp_http_port: int, docker_client: docker.DockerClient
) -> None:
    alice = api.as_user("alice")
    workspace = await alice.create("host mode")
    await asyncio.to_thread(start_app, docker_client, workspace["container_name"], APP_PORT)
    code, ports = await alice.call("GET", f"{workspace['id']}/ports")
    assert code == 200
    host = f"{APP_PORT}-{workspace['id']}.preview.localhost:{jp_http_port}"
    assert (
        ports["url_template"]
        == f"http://{{port}}-{workspace['id']}.preview.localhost:{jp_http_port}/"
    )
    (listed,) = ports["ports"]
    assert listed["url"] == f"http://{host}/"

    # 1. No cookie on the preview host: off to the Jupyter origin, where the login is.
    first = await fetch(jp_http_port, f"http://{host}/headers?x=1")
    assert first.code == 302
    login = first.headers["Location"]
    assert login == (
        f"http://localhost:{jp_http_port}/a%40b/code/preview-login/{workspace['id']}/{APP_PORT}"
        "?next=%2Fheaders%3Fx%3D1"
    )
    # 2. Someone else's login gets nothing; the owner's gets a ticket for that host.
    assert (await fetch(jp_http_port, login, user="bob")).code == 403
    handoff = await fetch(jp_http_port, login, user="alice")
    assert handoff.code == 302
    auth = handoff.headers["Location"]
    assert auth.startswith(f"http://{host}/_popebot_preview/auth?ticket=")
    # 3. The ticket becomes the proxy's cookie on the preview host, once.
    landed = await fetch(jp_http_port, auth)
    assert landed.code == 302
    assert landed.headers["Location"] == "/headers?x=1"
    cookie = cookie_of(landed)
    set_cookie = landed.headers["Set-Cookie"].lower()
    assert "httponly" in set_cookie
    assert "samesite=lax" in set_cookie
    assert (await fetch(jp_http_port, auth)).code == 403  # used already
    # Another port's host does not take it.
    other = await fetch(jp_http_port, auth.replace(f"{APP_PORT}-", "8081-", 1))
    assert other.code == 403

    # The app on its own origin: whole paths, its cookies both ways, no sandbox.
    with_cookie = {"Cookie": f"{cookie}; app=1"}
    seen = await fetch(jp_http_port, f"http://{host}/headers?x=1", headers=with_cookie)
    assert seen.code == 200
    body = json.loads(seen.body)
    assert body["url"] == "/headers?x=1"
    assert body["headers"]["cookie"] == "app=1"  # the proxy's own cookie stays with the proxy
    assert body["headers"]["host"] == f"localhost:{APP_PORT}"
    page = await fetch(jp_http_port, f"http://{host}/", headers=with_cookie)
    assert page.code == 200
    assert page.headers.get_list("Set-Cookie") == ["app=1; Path=/"]
    assert "sandbox" not in page.headers.get("Content-Security-Policy", "")
    # The Jupyter server's own paths are the app's on a preview host.
    shadow = await fetch(jp_http_port, f"http://{host}/a%40b/api/contents", headers=with_cookie)
    assert shadow.body == b"not found: /a%40b/api/contents"
    # Its redirects to itself stay on the host.
    moved = await fetch(jp_http_port, f"http://{host}/redirect-absolute", headers=with_cookie)
    assert moved.headers["Location"] == "/target?x=1"

    # Cross-origin requests are refused; so is a cookie from the wrong host.
    evil = await fetch(
        jp_http_port, f"http://{host}/headers", headers={**with_cookie, "Origin": "http://evil.com"}
    )
    assert evil.code == 403
    moved_cookie = await fetch(
        jp_http_port,
        f"http://8081-{workspace['id']}.preview.localhost:{jp_http_port}/",
        headers=with_cookie,
    )
    assert moved_cookie.code == 302  # back through the hand-off

    # WebSockets with the cookie and the host's own Origin.
    request = HTTPRequest(
        f"ws://127.0.0.1:{jp_http_port}/ws",
        headers={"Host": host, "Origin": f"http://{host}", **with_cookie},
    )
    ws = await websocket_connect(request)
    hello = json.loads(await ws.read_message())  # type: ignore[arg-type]
    assert hello["headers"]["cookie"] == "app=1"
    await ws.write_message("hmr")
    assert await ws.read_message() == "hmr"
    ws.close()
    for headers in ({"Origin": "http://evil.com", **with_cookie}, {"Origin": f"http://{host}"}):
        with pytest.raises(HTTPClientError) as refused:
            await websocket_connect(
                HTTPRequest(f"ws://127.0.0.1:{jp_http_port}/ws", headers={"Host": host, **headers})
            )
        assert refused.value.code in (401, 403)


async def handed_over(
    api: Api, port: int, docker_client: docker.DockerClient
) -> tuple[str, dict[str, str]]:
    """Alice's preview host of APP_PORT, and the Cookie header its hand-off left her with."""
    alice = api.as_user("alice")
    workspace = await alice.create("host mode")
    await asyncio.to_thread(start_app, docker_client, workspace["container_name"], APP_PORT)
    host = f"{APP_PORT}-{workspace['id']}.preview.localhost:{port}"
    login = (await fetch(port, f"http://{host}/")).headers["Location"]
    auth = (await fetch(port, login, user="alice")).headers["Location"]
    landed = await fetch(port, auth)
    return host, {"Cookie": cookie_of(landed)}


async def test_an_apps_cookies_stay_on_its_own_preview_host(
    api: Api, jp_http_port: int, docker_client: docker.DockerClient
) -> None:
    """A Domain attribute would hand the cookie to every sibling preview host (other users')."""
    host, cookie = await handed_over(api, jp_http_port, docker_client)
    answer = await fetch(jp_http_port, f"http://{host}/cookies", headers=cookie)
    assert answer.code == 200
    assert answer.headers.get_list("Set-Cookie") == [
        "shared=1; Path=/",
        "parent=1; Path=/; HttpOnly",
        "own=1; Path=/app; SameSite=Lax",
    ]
