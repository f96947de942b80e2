"""The preview proxy's pure rules and the ports listing, without a Docker engine (fast tier)."""

from __future__ import annotations

from typing import Any

import pytest

from jupyter_popebot_code.backends.docker.ports import ListeningPort, parse_listening, parse_listing
from jupyter_popebot_code.errors import ListingUnreadable
from jupyter_popebot_code.preview.host import (
    HostPattern,
    TicketBook,
    mint_ticket,
    read_ticket,
    safe_next,
)
from jupyter_popebot_code.preview.rules import (
    KEY_LENGTH,
    ORIGIN_WIDE,
    SANDBOX_CSP,
    SANDBOX_RESPONSE_HEADERS,
    browser_response_headers,
    cors_for_sandbox,
    host_only_cookie,
    key_matches,
    origin_kind,
    page_load,
    preflight_answer,
    preview_key,
    preview_url,
    response_framing,
    response_header_allowed,
    rewrite_location,
    upstream_request_headers,
    without_cookie,
)

from ..conftest import Api, HeaderIdentityProvider
from ..memory_containers import InMemoryContainerManager

# Real lines of a workspace container (little-endian x86-64), trimmed after the inode column.
PROC_NET_TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:1E01 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1
   1: 0100007F:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 2
   2: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 3
   3: 0B00007F:B35F 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4
   4: 020012AC:1F90 010012AC:D2F0 01 00000000:00000000 00:00000000 00000000  1000        0 5
   5: 020012AC:0BB8 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 6
"""
PROC_NET_TCP6 = """\
  sl  local_address                         remote_address                        st tx_queue
   0: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 00000000
   1: 00000000000000000000000001000000:1388 00000000000000000000000000000000:0000 0A 00000000
   2: 0000000000000000FFFF00000100007F:1770 00000000000000000000000000000000:0000 0A 00000000
   3: 00000000000000000000000000000000:2328 00000000000000000000000000000000:0000 0A 00000000
"""


def test_listening_ports_are_read_from_proc_net_tcp() -> None:
    ports = parse_listening(
        PROC_NET_TCP + PROC_NET_TCP6, exclude=(7681,), hidden_addresses=("127.0.0.11",)
    )
    assert ports == [
        ListeningPort(3000, "172.18.0.2"),  # one address of the container: reachable
        ListeningPort(5000, "::1"),
        ListeningPort(6000, "127.0.0.1"),  # ::ffff:127.0.0.1, v4-mapped
        ListeningPort(8080, "0.0.0.0"),  # 0.0.0.0 and ::, listed once
        ListeningPort(8081, "127.0.0.1"),
        ListeningPort(9000, "::"),
    ]
    reachable = {p.port: p.reachable for p in ports}
    assert reachable == {3000: True, 5000: False, 6000: False, 8080: True, 8081: False, 9000: True}
    # 7681 is ttyd's (excluded), 0x1F90 -> 8080 established (state 01) is not a listener, and
    # Docker's DNS on 127.0.0.11 is hidden.
    assert parse_listening("garbage\n  0: zz:zz 0 0A\n") == []
    assert [p.port for p in parse_listening(PROC_NET_TCP)] == [3000, 7681, 8080, 8081, 45919]


def listing_output(tcp: str, tcp6: str = "") -> str:
    """What `listing_command` prints: each file, a newline, its end line."""
    return f"{tcp}\n@@popebot-end /proc/net/tcp\n{tcp6}\n@@popebot-end /proc/net/tcp6\n"


def test_a_listing_whose_output_was_lost_is_an_error_never_an_empty_list() -> None:
    read = parse_listing(listing_output(PROC_NET_TCP), max_bytes=10**6, max_ports=100)
    assert [p.port for p in read.ports] == [3000, 7681, 8080, 8081, 45919]
    assert not read.truncated
    cut_short = listing_output(PROC_NET_TCP, PROC_NET_TCP6).rsplit("@@", 1)[0]
    for lost in ("", "OCI runtime exec failed\n", cut_short, listing_output("")):
        with pytest.raises(ListingUnreadable):
            parse_listing(lost, max_bytes=10**6, max_ports=100)


def test_a_listing_says_when_a_cap_left_ports_out() -> None:
    both = listing_output(PROC_NET_TCP, PROC_NET_TCP6)
    capped = parse_listing(both, max_bytes=10**6, max_ports=2)
    assert ([p.port for p in capped.ports], capped.truncated) == ([3000, 5000], True)
    # Cut in a listener's line (line 2): listeners may be missing.
    cut = parse_listing(listing_output(PROC_NET_TCP[:300]), max_bytes=300, max_ports=100)
    assert ([p.port for p in cut.ports], cut.truncated) == ([7681, 8081], True)
    # Cut after a connected socket's line: the kernel lists listeners first, none was lost.
    after = PROC_NET_TCP.index("   5:") + 10
    cut = parse_listing(listing_output(PROC_NET_TCP[:after]), max_bytes=after, max_ports=100)
    assert ([p.port for p in cut.ports], cut.truncated) == ([7681, 8080, 8081, 45919], False)


def test_the_preview_key_is_stable_and_different_per_owner_and_workspace() -> None:
    key = preview_key(b"secret", "alice", "abcdefghijklmnop")
    assert len(key) == KEY_LENGTH
    assert key.isalnum()
    assert key == key.lower()
    assert key == preview_key("secret", "alice", "abcdefghijklmnop")
    others = {
        preview_key(b"secret", "bob", "abcdefghijklmnop"),
        preview_key(b"secret", "alice", "bcdefghijklmnopq"),
        preview_key(b"other secret", "alice", "abcdefghijklmnop"),
        # The separator keeps ("a", "bc") and ("ab", "c") apart.
        preview_key(b"secret", "alice\0abcdefghijklmno", "p"),
    }
    assert key not in others
    assert len(others) == 4
    assert key_matches(b"secret", "alice", "abcdefghijklmnop", key)
    assert not key_matches(b"secret", "bob", "abcdefghijklmnop", key)
    assert not key_matches(b"secret", "alice", "abcdefghijklmnop", key[:-1])
    assert not key_matches(b"secret", "alice", "abcdefghijklmnop", "é" * KEY_LENGTH)
    assert preview_url("/base/", key, "ws", 8080) == f"/base/code/preview/ws/{key}/8080/"


@pytest.mark.parametrize(
    ("location", "strip", "expected"),
    [
        ("http://localhost:5173/login?next=%2F#top", True, "/P/login?next=%2F#top"),
        ("http://127.0.0.1:5173/", True, "/P/"),
        ("http://0.0.0.0:5173", True, "/P/"),
        ("http://[::1]:5173/x", True, "/P/x"),
        ("http://10.1.2.3:5173/x", True, "/P/x"),  # the container's own address
        ("//localhost:5173/x", True, "/P/x"),
        ("http://localhost:9999/x", True, "http://localhost:9999/x"),  # another port
        ("https://example.com/x", True, "https://example.com/x"),
        ("/login", True, "/P/login"),
        ("/P/login", True, "/P/login"),  # a prefix-aware app
        ("/P", True, "/P"),
        ("/Pother", True, "/P/Pother"),
        ("login", True, "login"),
        ("../up", True, "../up"),
        ("?page=2", True, "?page=2"),
        ("/login", False, "/login"),
        ("http://localhost:5173/A/login", False, "/A/login"),
        ("http://localhost:5173:x/", True, "http://localhost:5173:x/"),  # unparsable port
    ],
)
def test_redirects_are_rewritten_into_the_preview(
    location: str, strip: bool, expected: str
) -> None:
    hosts = {"localhost", "127.0.0.1", "0.0.0.0", "::1", "10.1.2.3"}
    rewritten = rewrite_location(
        location, port=5173, prefix="/P", strip_prefix=strip, app_hosts=hosts
    )
    assert rewritten == expected


def test_the_app_never_receives_credentials_or_hop_by_hop_headers() -> None:
    browser = [
        ("Host", "jupyter.example.com"),
        ("Cookie", "session=1"),
        ("Authorization", "token t"),
        ("X-XSRFToken", "x"),
        ("Connection", "keep-alive, X-Secret-Hop"),
        ("X-Secret-Hop", "1"),
        ("Keep-Alive", "timeout=5"),
        ("Transfer-Encoding", "chunked"),
        ("Proxy-Authorization", "Basic x"),
        ("X-Forwarded-For", "6.6.6.6"),
        ("Origin", "null"),
        ("Accept", "text/html"),
        ("Accept", "application/json"),
        ("Sec-WebSocket-Key", "k"),
        ("Expect", "100-continue"),
    ]
    sent = upstream_request_headers(
        browser,
        port=5173,
        forwarded_host="jupyter.example.com",
        forwarded_proto="https",
        forwarded_for="10.0.0.5",
        prefix="/P",
        websocket=True,
    )
    assert sent == [
        ("Host", "localhost:5173"),
        ("Origin", "http://localhost:5173"),
        ("Accept", "text/html"),
        ("Accept", "application/json"),
        ("X-Forwarded-Host", "jupyter.example.com"),
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-For", "10.0.0.5"),
        ("X-Forwarded-Prefix", "/P"),
    ]
    plain = upstream_request_headers(
        [("Sec-WebSocket-Key", "k")],
        port=1,
        forwarded_host="h",
        forwarded_proto="http",
        forwarded_for="",
        prefix=None,
    )
    assert ("Sec-WebSocket-Key", "k") in plain
    assert not [name for name, _ in plain if name == "X-Forwarded-Prefix"]


def test_responses_lose_what_would_act_on_the_jupyter_origin() -> None:
    app = [
        ("Content-Type", "text/html"),
        ("Set-Cookie", "a=1"),
        ("Set-Cookie", "b=2"),
        ("Clear-Site-Data", '"cookies"'),
        ("Strict-Transport-Security", "max-age=1; includeSubDomains"),
        ("Connection", "close, X-Hop"),
        ("X-Hop", "1"),
        ("Transfer-Encoding", "chunked"),
        ("Content-Security-Policy", "default-src 'self'"),
        ("Location", "/x"),
    ]
    assert browser_response_headers(app) == [
        ("Content-Type", "text/html"),
        ("Content-Security-Policy", "default-src 'self'"),
        ("Location", "/x"),
    ]
    assert "allow-same-origin" not in SANDBOX_CSP
    assert "allow-top-navigation" not in SANDBOX_CSP


def test_sandboxed_responses_pass_only_an_allow_list() -> None:
    origin_wide = [
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
        "Clear-Site-Data",
        "Strict-Transport-Security",
        "Set-Cookie",
        "WWW-Authenticate",
    ]
    for name in origin_wide:
        assert not response_header_allowed(name), name
        # An operator cannot let one through.
        assert not response_header_allowed(name, extra={name.lower(), "*"}), name
    for name in ("Server", "Date", "Keep-Alive", "Upgrade", "Refresh", "Some-Future-Header"):
        assert not response_header_allowed(name), name
    needed = [
        "Content-Type",
        "content-length",
        "Content-Encoding",
        "Content-Disposition",
        "Content-Range",
        "Accept-Ranges",
        "Cache-Control",
        "ETag",
        "Last-Modified",
        "Vary",
        "Location",
        "Access-Control-Allow-Origin",
        "Access-Control-Expose-Headers",
        "Content-Security-Policy",
        "X-Total-Count",  # an app's own, read by its scripts
        "X-Accel-Buffering",
    ]
    for name in needed:
        assert response_header_allowed(name), name
    assert not ORIGIN_WIDE & SANDBOX_RESPONSE_HEADERS
    assert response_header_allowed("HX-Trigger", extra={"hx-trigger"})
    assert response_header_allowed("HX-Redirect", extra={"hx-*"})
    assert not response_header_allowed("HX-Redirect", extra={"hx-trigger"})
    app = [
        ("Content-Type", "text/plain"),
        ("Alt-Svc", 'h3=":443"'),
        ("Server", "app"),
        ("X-Custom", "1"),
        ("HX-Trigger", "go"),
    ]
    assert browser_response_headers(app) == [("Content-Type", "text/plain"), ("X-Custom", "1")]
    assert browser_response_headers(app, extra={"hx-*"})[-1] == ("HX-Trigger", "go")
    # Host mode: the app's own origin, all but hop-by-hop headers.
    assert browser_response_headers(app, own_cookie="popebot-preview") == app


def test_one_content_length_reaches_the_browser() -> None:
    assert browser_response_headers([("Content-Length", "5"), ("Content-Length", "5")]) == [
        ("Content-Length", "5")
    ]
    assert browser_response_headers([("Content-Length", "5, 5")]) == [("Content-Length", "5")]


def test_response_heads_whose_length_is_unclear_are_refused() -> None:
    def framing(*headers: tuple[str, str], code: int = 200) -> str | None:
        return response_framing(code, headers)

    assert framing() is None  # read until the app closes
    assert framing(("Content-Length", "5")) is None
    assert framing(("Content-Length", "5"), ("content-length", "05")) is None
    assert framing(("Content-Length", "5, 5")) is None
    assert framing(("Transfer-Encoding", "chunked")) is None
    assert framing(("Transfer-Encoding", "Chunked")) is None
    assert framing(("Content-Length", "0"), code=204) is None
    assert framing(("Content-Length", "5"), code=304) is None  # the representation's length
    conflicting = "conflicting Content-Length headers (5, 6)"
    assert framing(("Content-Length", "5"), ("Content-Length", "6")) == conflicting
    assert framing(("Content-Length", "6, 5")) == conflicting
    assert framing(("Content-Length", "9" * 18)) is None
    for bad in ("five", "-5", "+5", "5.0", "", "0x10", "\u0665", "9" * 19):
        assert (framing(("Content-Length", bad)) or "").startswith("an invalid Content-Length"), bad
    assert framing(("Content-Length", "5"), ("Transfer-Encoding", "chunked")) == (
        "both Transfer-Encoding and Content-Length"
    )
    for encoding in ("gzip", "gzip, chunked", "chunked, chunked", "identity"):
        assert (framing(("Transfer-Encoding", encoding)) or "").startswith(
            "an unsupported Transfer-Encoding"
        ), encoding
    assert framing(("Content-Length", "5"), code=204) == "a body with 204 No Content"
    assert framing(("Transfer-Encoding", "chunked"), code=204) == "a body with 204 No Content"


def test_who_needs_an_identity_and_which_origins_pass() -> None:
    assert page_load("GET", "navigate")
    assert page_load("GET", "navigate", "document")
    # A link followed inside the preview's frame: cookieless, the key authorizes it.
    assert not page_load("GET", "navigate", "iframe")
    assert not page_load("GET", "navigate", "frame")
    assert page_load("HEAD", None)  # not a browser: authenticate
    assert page_load("GET", None)
    for mode in ("no-cors", "cors", "websocket", "same-origin"):
        assert not page_load("GET", mode)
    assert not page_load("POST", None)
    # WebSocket handshakes carry no Sec-Fetch-Mode in Chromium: the opaque origin tells the
    # sandboxed page's socket; without it (a script, a same-origin page) the login is needed.
    assert not page_load("GET", None, websocket=True, origin="null")
    assert page_load("GET", None, websocket=True, origin=None)
    assert page_load("GET", "websocket", websocket=True, origin="http://localhost:8888")
    assert origin_kind(None) == "none"
    assert origin_kind("null") == "null"
    assert origin_kind("http://evil.example.com") == "other"
    assert cors_for_sandbox("null", [("Content-Type", "text/javascript")]) == [
        ("Access-Control-Allow-Origin", "null"),
        ("Vary", "Origin"),
    ]
    assert cors_for_sandbox("null", [("access-control-allow-origin", "*")]) == []
    assert cors_for_sandbox("http://localhost:8888", []) == []
    assert cors_for_sandbox(None, []) == []
    assert dict(preflight_answer("PUT", "content-type")) == {
        "Access-Control-Allow-Origin": "null",
        "Access-Control-Allow-Methods": "PUT",
        "Access-Control-Allow-Headers": "content-type",
        "Access-Control-Max-Age": "600",
        "Vary": "Origin",
    }


# -- the REST listing over the in-memory manager -------------------------------------------------


@pytest.mark.parametrize(
    "server_settings", [{"ServerApp": {"identity_provider_class": HeaderIdentityProvider}}]
)
async def test_ports_listing_over_the_in_memory_manager(
    api: Api, containers: InMemoryContainerManager, jp_serverapp: Any
) -> None:
    alice = api.as_user("alice")
    workspace = await alice.create("ports")
    container = containers.containers[workspace["container_name"]]
    container.listening = [ListeningPort(8080, "0.0.0.0"), ListeningPort(5173, "127.0.0.1")]
    code, body = await alice.call("GET", f"{workspace['id']}/ports")
    assert code == 200
    key = preview_key(jp_serverapp.web_app.settings["cookie_secret"], "alice", workspace["id"])
    template = f"/a%40b/code/preview/{workspace['id']}/{key}/{{port}}/"
    assert body == {
        "status": "running",
        "url_template": template,
        "truncated": False,
        "ports": [
            {
                "port": 5173,
                "address": "127.0.0.1",
                "reachable": False,
                "url": template.replace("{port}", "5173"),
            },
            {
                "port": 8080,
                "address": "0.0.0.0",
                "reachable": True,
                "url": template.replace("{port}", "8080"),
            },
        ],
    }
    assert (await api.as_user("bob").call("GET", f"{workspace['id']}/ports"))[0] == 404
    starts = containers.calls["start"]
    containers.set_status(workspace["container_name"], "exited")
    code, body = await alice.call("GET", f"{workspace['id']}/ports")
    assert (code, body["status"], body["ports"]) == (200, "exited", [])
    assert containers.calls["start"] == starts  # listing never starts anything
    containers.engine_down = True
    assert (await alice.call("GET", f"{workspace['id']}/ports"))[0] == 503


# -- host mode ------------------------------------------------------------------------------------


def test_host_patterns_build_and_read_preview_hosts() -> None:
    pattern = HostPattern("{port}-{workspace}.preview.example.com:8443")
    assert (
        pattern.host(5173, "abcdefghijklmnop") == "5173-abcdefghijklmnop.preview.example.com:8443"
    )
    assert pattern.parse("5173-abcdefghijklmnop.preview.example.com") == (5173, "abcdefghijklmnop")
    assert pattern.parse("5173-ABCDEFGHIJKLMNOP.Preview.Example.com") == (5173, "abcdefghijklmnop")
    for name in (
        "5173-abcdefghijklmnop.preview.example.com.evil.com",
        "5173-abcdefghijklmnop-preview.example.com",  # the dots are not wildcards
        "99999-abcdefghijklmnop.preview.example.com",
        "5173-abc.preview.example.com",
        "x.5173-abcdefghijklmnop.preview.example.com",
    ):
        assert pattern.parse(name) is None, name
    with pytest.raises(ValueError, match="port"):
        HostPattern("{workspace}.preview.example.com")


def test_tickets_are_signed_short_lived_and_used_once() -> None:
    ticket = mint_ticket(b"secret", "alice", "abcdefghijklmnop", 8080)
    content = read_ticket(b"secret", ticket)
    assert content is not None
    assert (content["o"], content["w"], content["p"]) == ("alice", "abcdefghijklmnop", 8080)
    assert read_ticket(b"other secret", ticket) is None
    assert read_ticket(b"secret", ticket[:-2] + "00") is None
    book = TicketBook()
    assert book.use(content["n"])
    assert not book.use(content["n"])
    assert safe_next("/app?x=1") == "/app?x=1"
    for bad in ("//evil.com/", "/\\evil.com", "https://evil.com/", "", None, "app"):
        assert safe_next(bad) == "/"


def test_host_mode_keeps_the_apps_cookies_but_not_the_proxys() -> None:
    assert without_cookie(
        [("Cookie", "popebot-preview=s; app=1"), ("Accept", "*/*")], "popebot-preview"
    ) == [
        ("Cookie", "app=1"),
        ("Accept", "*/*"),
    ]
    assert without_cookie([("Cookie", "popebot-preview=s")], "popebot-preview") == []
    answer = [
        ("Set-Cookie", "app=1"),
        ("Set-Cookie", "popebot-preview=forged"),
        ("Connection", "close"),
    ]
    assert browser_response_headers(answer, own_cookie="popebot-preview") == [
        ("Set-Cookie", "app=1")
    ]


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("a=1; Domain=preview.example.com; Path=/", "a=1; Path=/"),
        ("a=1; path=/x; domain=.example.com; HttpOnly", "a=1; path=/x; HttpOnly"),
        ("a=1;DOMAIN=example.com", "a=1"),
        ("a=1; Expires=Wed, 21 Oct 2037 07:28:00 GMT; Secure", None),
        ("domain=x; Path=/", None),  # a cookie named domain keeps its value
    ],
)
def test_host_mode_cookies_stay_on_their_host(sent: str, kept: str | None) -> None:
    assert host_only_cookie(sent) == (sent if kept is None else kept)
    answer = [("Set-Cookie", sent)]
    assert browser_response_headers(answer, own_cookie="popebot-preview") == [
        ("Set-Cookie", sent if kept is None else kept)
    ]
