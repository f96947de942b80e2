"""What the preview proxy allows and rewrites, as pure functions (no I/O, no tornado handler).

- the preview key: an HMAC of the server's cookie secret over owner and workspace id;
- who may load a page and who may fetch a subresource (`page_load`);
- which request headers reach the app and which response headers reach the browser;
- where an app's redirect (`Location`) should point once it passes through the proxy.

Why a key and a sandbox: a page of the app runs under the Jupyter server's origin. The response
header `Content-Security-Policy: sandbox` (never allow-same-origin) gives it an opaque origin, so
it can neither read the server's cookies or XSRF token nor call its API with them; in exchange its
own requests carry no cookies either (Chromium sends them with Sec-Fetch-Site: cross-site, scripts
and fetch with `Origin: null`). The key in the URL authorizes those requests instead.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Collection, Iterable
from urllib.parse import urlsplit

from jupyter_server.utils import url_path_join

PREVIEW_PATH = "code/preview"
PREVIEW_ABSOLUTE_PATH = "code/preview-absolute"

KEY_LENGTH = 26  # base32 characters: 130 bits
_KEY_CONTEXT = b"jupyter-popebot-code preview key\0"

# The sandbox every proxied page runs in: scripts and forms, but never the server's origin
# (allow-same-origin) nor navigating the JupyterLab page around it (allow-top-navigation).
SANDBOX_CSP = (
    "sandbox allow-scripts allow-forms allow-popups allow-modals allow-downloads "
    "allow-pointer-lock allow-presentation; frame-ancestors 'self'"
)

# RFC 9110 §7.6.1 connection-specific headers, plus the deprecated Proxy-Connection.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
# The browser's credentials for the Jupyter server: the app must never see them.
CREDENTIAL_HEADERS = frozenset({"cookie", "authorization", "x-xsrftoken", "x-csrftoken"})
# Set by the proxy itself (a browser's own values would lie to the app).
FORWARDED_HEADERS = frozenset(
    {"forwarded", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "x-forwarded-prefix"}
)
# tornado's WebSocket client writes its own handshake headers.
WEBSOCKET_HANDSHAKE = frozenset(
    {
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-extensions",
        "sec-websocket-protocol",
    }
)
# Response headers that act on the whole origin, which in sandbox mode is the Jupyter server's:
# cookies (tossing) and wiping them, HSTS, reporting, client hints, alternative services, login
# status, speculation, service workers. Never passed in sandbox mode, whatever is configured.
ORIGIN_WIDE = frozenset(
    {
        "set-cookie",
        "set-cookie2",
        "clear-site-data",
        "strict-transport-security",
        "expect-ct",
        "public-key-pins",
        "public-key-pins-report-only",
        "nel",
        "report-to",
        "reporting-endpoints",
        "accept-ch",
        "accept-ch-lifetime",
        "critical-ch",
        "alt-svc",
        "set-login",
        "origin-agent-cluster",
        "speculation-rules",
        "supports-loading-mode",
        "service-worker-allowed",
        "observe-browsing-topics",
        "www-authenticate",  # a login prompt on the Jupyter origin, its answer cached there
    }
)
# Sandbox mode: the app's response headers the browser gets, everything a page, its subresources
# and its fetches need. Each acts on this one response (or document) only.
SANDBOX_RESPONSE_HEADERS = frozenset(
    {
        # the representation
        "content-type",
        "content-length",
        "content-encoding",
        "content-language",
        "content-disposition",
        "content-range",
        "accept-ranges",
        # caching and validators
        "cache-control",
        "expires",
        "pragma",
        "age",
        "etag",
        "last-modified",
        "vary",
        # where to go, what is allowed, when to come back
        "location",  # rewritten by the caller
        "allow",
        "retry-after",
        "link",  # preload hints, as <link> in the page could say
        # CORS (the proxy adds its own for the opaque origin when the app sends none)
        "access-control-allow-origin",
        "access-control-allow-credentials",
        "access-control-allow-methods",
        "access-control-allow-headers",
        "access-control-expose-headers",
        "access-control-max-age",
        "timing-allow-origin",
        # policies of this document (the proxy's sandbox CSP is added on top)
        "content-security-policy",
        "content-security-policy-report-only",
        "permissions-policy",  # can only take features away from the frame
        "referrer-policy",
        "cross-origin-opener-policy",
        "cross-origin-embedder-policy",
        "cross-origin-resource-policy",
        # dev tools and proxies in front of Jupyter (nginx buffering an event stream)
        "server-timing",
        "sourcemap",
        "x-sourcemap",
        "x-accel-buffering",
    }
)
# Addresses under which an app names itself in redirects (besides the container's own address).
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "0.0.0.0", "::1", "::"})  # noqa: S104
_DEFAULT_PORTS = {"http": 80, "ws": 80, "https": 443, "wss": 443}


def preview_key(secret: bytes | str, owner: str, workspace_id: str) -> str:
    """The preview key of one owner's workspace: stable while the cookie secret is."""
    if isinstance(secret, str):
        secret = secret.encode()
    message = _KEY_CONTEXT + owner.encode() + b"\0" + workspace_id.encode()
    digest = hmac.new(secret, message, hashlib.sha256).digest()
    return base64.b32encode(digest).decode("ascii").lower()[:KEY_LENGTH]


def preview_url(base_url: str, key: str, workspace_id: str, port: int | str) -> str:
    """The path of a port's preview (prefix stripped), ending with a slash."""
    return url_path_join(base_url, PREVIEW_PATH, workspace_id, key, str(port)) + "/"


def key_matches(secret: bytes | str, owner: str, workspace_id: str, key: str) -> bool:
    """Whether `key` is the preview key of this owner and workspace (constant-time compare)."""
    expected = preview_key(secret, owner, workspace_id)
    return hmac.compare_digest(expected.encode(), key.encode("utf-8", "replace"))


def page_load(
    method: str,
    sec_fetch_mode: str | None,
    sec_fetch_dest: str | None = None,
    *,
    websocket: bool = False,
    origin: str | None = None,
) -> bool:
    """Whether a request must carry the user's identity: a top-level page load, or no browser.

    A sandboxed page's own subresources (scripts, images, fetch, WebSocket) come without
    cookies and with a Sec-Fetch-Mode other than `navigate`; a request without Sec-Fetch-Mode is
    not from a current browser, and must authenticate (a token) like any API client. A link
    followed inside a preview frame (Sec-Fetch-Dest: iframe) is cross-site and cookieless too:
    the key authorizes it, and `frame-ancestors 'self'` keeps other sites from framing the
    answer, so only a top-level load (a bookmark, a link someone was sent) needs the login.
    """
    if websocket:
        # Chromium sends no Sec-Fetch-* headers on a WebSocket handshake; the sandboxed page's
        # socket is told by its opaque origin (Origin: null). Any other needs the login.
        return origin_kind(origin) != "null"
    if method not in ("GET", "HEAD"):
        return False
    if sec_fetch_mode is None:
        return True
    return sec_fetch_mode == "navigate" and sec_fetch_dest not in ("iframe", "frame")


def origin_kind(origin: str | None) -> str:
    """'none' (no Origin header), 'null' (an opaque origin: the sandboxed page) or 'other'."""
    if origin is None:
        return "none"
    return "null" if origin.strip() == "null" else "other"


def _connection_tokens(headers: Iterable[tuple[str, str]]) -> set[str]:
    """Header names listed in Connection: hop-by-hop for this message only."""
    tokens: set[str] = set()
    for name, value in headers:
        if name.lower() == "connection":
            tokens.update(token.strip().lower() for token in value.split(","))
    return tokens


def upstream_request_headers(
    headers: Iterable[tuple[str, str]],
    *,
    port: int,
    forwarded_host: str,
    forwarded_proto: str,
    forwarded_for: str,
    prefix: str | None,
    websocket: bool = False,
    keep_credentials: bool = False,
) -> list[tuple[str, str]]:
    """The browser's request headers as the app receives them.

    Without credentials, hop-by-hop headers or forged forwarding headers; `Host` and a
    (checked) `Origin` become the app's own, `localhost:<port>`, as when it runs on one's
    laptop: dev servers refuse unknown hosts and cross-origin WebSockets. `keep_credentials`
    (host mode): the app's own origin, whose cookies and Authorization are the app's.
    """
    pairs = list(headers)
    drop = HOP_BY_HOP | FORWARDED_HEADERS | {"host", "expect"}
    if not keep_credentials:
        drop |= CREDENTIAL_HEADERS
    drop |= _connection_tokens(pairs)
    if websocket:
        drop |= WEBSOCKET_HANDSHAKE
    app_origin = f"http://localhost:{port}"
    out: list[tuple[str, str]] = [("Host", f"localhost:{port}")]
    for name, value in pairs:
        lower = name.lower()
        if lower in drop:
            continue
        if lower == "origin":
            value = app_origin
        out.append((name, value))
    out += [
        ("X-Forwarded-Host", forwarded_host),
        ("X-Forwarded-Proto", forwarded_proto),
        ("X-Forwarded-For", forwarded_for),
    ]
    if prefix is not None:
        out.append(("X-Forwarded-Prefix", prefix))
    return out


def response_header_allowed(name: str, extra: Collection[str] = ()) -> bool:
    """Sandbox mode: whether an app's response header may reach the browser.

    The allow-list, any `X-` header (an app's own, which its scripts read; no browser acts on
    one beyond its response) and the operator's `extra` names (lower case; `hx-*` is a prefix).
    Origin-wide and hop-by-hop headers never pass.
    """
    lower = name.lower()
    if lower in ORIGIN_WIDE or lower in HOP_BY_HOP:
        return False
    if lower in SANDBOX_RESPONSE_HEADERS or lower.startswith("x-"):
        return True
    return any(
        lower.startswith(entry[:-1]) if entry.endswith("*") else lower == entry for entry in extra
    )


def browser_response_headers(
    headers: Iterable[tuple[str, str]],
    own_cookie: str | None = None,
    extra: Collection[str] = (),
) -> list[tuple[str, str]]:
    """The app's response headers as the browser receives them.

    Sandbox mode (`own_cookie` None): only the allowed ones (`response_header_allowed`). Host
    mode (the app's own origin): all but hop-by-hop ones and a Set-Cookie of the proxy's own
    cookie, and cookies stay on the preview host (`host_only_cookie`). One Content-Length
    either way (`response_framing` checked they agree). Location is rewritten by the caller.
    """
    pairs = list(headers)
    drop = HOP_BY_HOP | _connection_tokens(pairs)
    kept: list[tuple[str, str]] = []
    length_sent = False
    for name, value in pairs:
        lower = name.lower()
        if lower in drop:
            continue
        if own_cookie is None:
            if not response_header_allowed(name, extra):
                continue
        elif lower == "set-cookie":
            if value.split("=", 1)[0].strip() == own_cookie:
                continue
            value = host_only_cookie(value)
        if lower == "content-length":
            if length_sent:
                continue
            length_sent = True
            value = value.split(",", 1)[0].strip()
        kept.append((name, value))
    return kept


def host_only_cookie(set_cookie: str) -> str:
    """A Set-Cookie value without Domain attributes, so the cookie stays on the host that set it.

    Host mode: `Domain=preview.example.com` would reach every other preview host (other users'
    workspaces, which would receive it in their Cookie header), `Domain=example.com` the Jupyter
    server too. Without Domain, a browser keeps a cookie for the exact host only.
    """
    pair, *attributes = set_cookie.split(";")
    kept = [a for a in attributes if a.split("=", 1)[0].strip().lower() != "domain"]
    return ";".join([pair, *kept])


def response_framing(code: int, headers: Iterable[tuple[str, str]]) -> str | None:
    """Why the app's response head cannot be relayed (the browser gets a 502), or None.

    As strict as tornado, which reads the body after the head has gone to the browser: the
    length must be clear before then (RFC 9112 §6.3), or the browser waits for bytes that never
    come, or takes a cut-off body for a whole one.
    """
    lengths: set[str] = set()
    encodings: list[str] = []
    for name, value in headers:
        lower = name.lower()
        if lower == "content-length":
            for piece in value.split(","):
                piece = piece.strip()
                # Beyond 18 digits tornado refuses it (over sys.maxsize), after the head went out.
                if not piece.isascii() or not piece.isdigit() or len(piece) > 18:
                    return f"an invalid Content-Length ({value!r})"
                lengths.add(str(int(piece)))
        elif lower == "transfer-encoding":
            encodings += [t.strip().lower() for t in value.split(",")]
    if len(lengths) > 1:
        return f"conflicting Content-Length headers ({', '.join(sorted(lengths, key=int))})"
    if encodings and encodings != ["chunked"]:
        return f"an unsupported Transfer-Encoding ({', '.join(encodings)})"
    if encodings and lengths:
        return "both Transfer-Encoding and Content-Length"
    if code == 204 and (encodings or lengths - {"0"}):
        return "a body with 204 No Content"
    return None


def without_cookie(headers: Iterable[tuple[str, str]], name: str) -> list[tuple[str, str]]:
    """Request headers with one cookie taken out of every Cookie header (the proxy's own)."""
    out: list[tuple[str, str]] = []
    for header, value in headers:
        if header.lower() == "cookie":
            parts = [p for p in value.split(";") if p.split("=", 1)[0].strip() != name]
            value = ";".join(parts).strip()
            if not value:
                continue
        out.append((header, value))
    return out


def cors_for_sandbox(
    request_origin: str | None, response_headers: Collection[tuple[str, str]]
) -> list[tuple[str, str]]:
    """Headers that let the sandboxed page use the response; the least that makes apps work.

    Module scripts (Vite) and fetch from an opaque origin are CORS requests with `Origin: null`
    and no credentials: without `Access-Control-Allow-Origin` the browser discards the answer.
    `null` (not `*`) is allowed, without credentials; an app's own CORS answer is kept.
    """
    if origin_kind(request_origin) != "null":
        return []
    if any(name.lower() == "access-control-allow-origin" for name, _ in response_headers):
        return []
    return [("Access-Control-Allow-Origin", "null"), ("Vary", "Origin")]


def preflight_answer(request_method: str, request_headers: str | None) -> list[tuple[str, str]]:
    """The proxy's own answer to a sandboxed page's CORS preflight (the app may not know CORS)."""
    answer = [
        ("Access-Control-Allow-Origin", "null"),
        ("Access-Control-Allow-Methods", request_method),
        ("Access-Control-Max-Age", "600"),
        ("Vary", "Origin"),
    ]
    if request_headers:
        answer.append(("Access-Control-Allow-Headers", request_headers))
    return answer


def rewrite_location(
    location: str,
    *,
    port: int,
    prefix: str,
    strip_prefix: bool,
    app_hosts: Collection[str] = LOCAL_HOSTS,
) -> str:
    """Where a redirect of the app should send the browser.

    - to the app itself by a full URL (localhost, 127.0.0.1, 0.0.0.0, the container's address,
      with the app's port): to the same path through the proxy;
    - to a path outside the preview (`/login`) in strip mode: under the prefix, since the app
      sees its paths without it; a path already under the prefix (a prefix-aware app) is kept;
    - relative references and other sites are kept.
    """
    parts = urlsplit(location)
    if parts.scheme or location.startswith("//"):
        scheme = parts.scheme.lower() or "http"
        try:
            target_port = parts.port or _DEFAULT_PORTS.get(scheme)
        except ValueError:
            return location
        if parts.hostname is None or parts.hostname.lower() not in app_hosts:
            return location
        if target_port != port:
            return location
        location = parts.path or "/"
        if parts.query:
            location += "?" + parts.query
        if parts.fragment:
            location += "#" + parts.fragment
        if not strip_prefix:
            return location  # the app's paths are the public ones (preview-absolute)
    elif not location.startswith("/"):
        return location  # relative: resolved by the browser against the proxied URL
    if not strip_prefix or location == prefix or location.startswith(prefix + "/"):
        return location
    if location.startswith(prefix + "?") or location.startswith(prefix + "#"):
        return location
    return prefix + location
