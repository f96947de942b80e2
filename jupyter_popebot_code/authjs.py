"""Auth.js (next-auth v5) session cookies as jupyter-server identities.

A Jupyter server behind a Pope Bot app accepts the app's login: the session cookie is decoded
exactly as @auth/core 0.41.3 decodes it, and the session's `sub` becomes the user.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hmac
import json
import os
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from jupyter_server.auth.decorator import allow_unauthenticated
from jupyter_server.auth.identity import IdentityProvider, User
from jupyter_server.base.handlers import JupyterHandler
from jwcrypto.common import JWException
from jwcrypto.jwe import JWE
from jwcrypto.jwk import JWK
from tornado import web
from tornado.httputil import url_concat
from traitlets import Bool, List, TraitError, Unicode, default, validate

SESSION_COOKIE_NAME = "authjs.session-token"
SECURE_SESSION_COOKIE_NAME = f"__Secure-{SESSION_COOKIE_NAME}"
# Precedence: a __Secure- cookie can only have been set over https, a plain one by anyone who
# can talk plain http to the host (cookie injection), so the __Secure- one is the stronger claim.
DEFAULT_COOKIE_NAMES = (SECURE_SESSION_COOKIE_NAME, SESSION_COOKIE_NAME)

CLOCK_TOLERANCE_SECONDS = 15
# Key length and thumbprint hash per content encryption, as @auth/core derives them.
_KEY_SPECS: dict[str, tuple[int, hashes.HashAlgorithm]] = {
    "A256CBC-HS512": (64, hashes.SHA512()),
    "A256GCM": (32, hashes.SHA256()),
}
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")
_CHUNK_INDEX = re.compile(r"0|[1-9][0-9]{0,3}")


class SessionTokenError(Exception):
    """A session token that must not be trusted; the message is a fixed reason, never a secret."""


class AuthJSConfigError(RuntimeError):
    """The Auth.js identity provider is configured so that nobody could (safely) sign in."""


def _b64url_decode(part: str) -> bytes:
    if not _BASE64URL.fullmatch(part):
        raise SessionTokenError("token is not base64url")
    try:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError):
        raise SessionTokenError("token is not base64url") from None


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """JSON object hook refusing duplicate names, so no two parsers can read different headers."""
    result: dict[str, Any] = {}
    for name, value in pairs:
        if name in result:
            raise SessionTokenError("duplicate name in token header")
        result[name] = value
    return result


def _protected_header(encoded: str) -> dict[str, Any]:
    try:
        header = json.loads(_b64url_decode(encoded), object_pairs_hook=_unique_keys)
    except (UnicodeDecodeError, ValueError):
        raise SessionTokenError("token header is not JSON") from None
    if not isinstance(header, dict):
        raise SessionTokenError("token header is not a JSON object")
    return header


@functools.lru_cache(maxsize=64)
def _derived_key(secret: str, cookie_name: str, enc: str) -> tuple[JWK, str]:
    """Auth.js's encryption key for one secret and cookie name, with its `kid` thumbprint."""
    length, thumbprint_hash = _KEY_SPECS[enc]
    raw = HKDF(
        algorithm=hashes.SHA256(),
        length=length,
        salt=cookie_name.encode(),
        info=f"Auth.js Generated Encryption Key ({cookie_name})".encode(),
    ).derive(secret.encode())
    key = JWK(kty="oct", k=base64.urlsafe_b64encode(raw).rstrip(b"=").decode())
    return key, key.thumbprint(thumbprint_hash)


def _select_key(secrets: Sequence[str], cookie_name: str, enc: str, kid: str | None) -> JWK:
    """The key to decrypt with: the secret whose thumbprint is `kid`, or the first without one."""
    if kid is None:
        return _derived_key(secrets[0], cookie_name, enc)[0]
    for secret in secrets:
        key, thumbprint = _derived_key(secret, cookie_name, enc)
        if hmac.compare_digest(thumbprint.encode(), kid.encode()):
            return key
    raise SessionTokenError("no configured secret matches the token's kid")


def _check_times(claims: Mapping[str, Any], now: float) -> None:
    exp = claims.get("exp")
    # @auth/core always sets exp; a token without one would never expire.
    if not isinstance(exp, (int, float)) or isinstance(exp, bool):
        raise SessionTokenError("token has no numeric exp claim")
    if exp <= now - CLOCK_TOLERANCE_SECONDS:
        raise SessionTokenError("token has expired")
    nbf = claims.get("nbf")
    if nbf is not None:
        if not isinstance(nbf, (int, float)) or isinstance(nbf, bool):
            raise SessionTokenError("token nbf claim is not a number")
        if nbf > now + CLOCK_TOLERANCE_SECONDS:
            raise SessionTokenError("token is not valid yet")
    iat = claims.get("iat")
    if iat is not None and (not isinstance(iat, (int, float)) or isinstance(iat, bool)):
        raise SessionTokenError("token iat claim is not a number")


def decode_session_token(
    token: str,
    secrets: str | Sequence[str],
    cookie_name: str,
    now: float | None = None,
) -> dict[str, Any]:
    """Decrypt and check an Auth.js session token; return its claims or raise SessionTokenError."""
    secret_list = [secrets] if isinstance(secrets, str) else [s for s in secrets if s]
    if not secret_list or not all(isinstance(s, str) for s in secret_list):
        raise SessionTokenError("no secret configured")
    parts = token.split(".")
    if len(parts) != 5:
        raise SessionTokenError("token is not a compact JWE")
    header = _protected_header(parts[0])
    # Checked here, before any key exists, so no other algorithm can ever be reached.
    if header.get("alg") != "dir":
        raise SessionTokenError("token alg is not 'dir'")
    enc = header.get("enc")
    if not isinstance(enc, str) or enc not in _KEY_SPECS:
        raise SessionTokenError("token enc is not A256CBC-HS512 or A256GCM")
    if "zip" in header or "crit" in header:
        raise SessionTokenError("token uses a header Auth.js never sets (zip/crit)")
    if parts[1]:
        raise SessionTokenError("token carries an encrypted key, which 'dir' forbids")
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise SessionTokenError("token kid is not a string")
    key = _select_key(secret_list, cookie_name, enc, kid)
    jwe = JWE(algs=["dir", enc])
    try:
        # The AEAD tag check inside decryption is what rejects a wrong secret or salt.
        jwe.deserialize(token, key=key)
        plaintext = jwe.payload
    except (JWException, ValueError, TypeError):
        raise SessionTokenError("token does not decrypt with the configured secret") from None
    try:
        claims = json.loads(plaintext)
    except (UnicodeDecodeError, ValueError):
        raise SessionTokenError("token payload is not JSON") from None
    if not isinstance(claims, dict):
        raise SessionTokenError("token payload is not a JSON object")
    _check_times(claims, time.time() if now is None else now)
    return claims


def session_cookie_values(cookies: Mapping[str, str], cookie_name: str) -> list[str]:
    """Tokens under one cookie name: the whole cookie, then its chunks `<name>.0`, `.1`, ...
    joined in numeric order (as @auth/core's SessionStore writes them); a browser may hold both."""
    candidates = []
    whole = cookies.get(cookie_name)
    if whole:
        candidates.append(whole)
    prefix = f"{cookie_name}."
    chunks: dict[int, str] = {}
    for name, value in cookies.items():
        if name.startswith(prefix) and _CHUNK_INDEX.fullmatch(name[len(prefix) :]) and value:
            chunks[int(name[len(prefix) :])] = value
    # A missing chunk means a truncated token: not a candidate at all.
    if chunks and sorted(chunks) == list(range(len(chunks))):
        candidates.append("".join(chunks[index] for index in range(len(chunks))))
    return candidates


def read_session_cookie(
    cookies: Mapping[str, str],
    cookie_names: Sequence[str] = DEFAULT_COOKIE_NAMES,
) -> tuple[str, str] | None:
    """(cookie name, token) of the session cookie a request carries, or None.

    The first name in `cookie_names` the request carries at all wins (by default
    `__Secure-authjs.session-token` over `authjs.session-token`); chunked cookies are joined.
    """
    for cookie_name in cookie_names:
        values = session_cookie_values(cookies, cookie_name)
        if values:
            return cookie_name, values[0]
    return None


def _secrets_from_environment(environ: Mapping[str, str]) -> list[str]:
    """AUTH_SECRET and its rotation siblings, in the order @auth/core's setEnvDefaults uses."""
    secrets = [environ.get("AUTH_SECRET", "")]
    for index in (1, 2, 3):
        secrets.insert(0, environ.get(f"AUTH_SECRET_{index}", ""))
    return [secret for secret in secrets if secret]


def _initials(name: str) -> str | None:
    letters = [word[0] for word in name.split() if word[:1].isalnum()]
    return "".join(letters[:2]).upper() or None


class AuthJSUser(User):
    """A session's user; `email` is no dataclass field, so api/me does not show it."""

    email: str | None = None


def user_from_claims(claims: Mapping[str, Any]) -> User:
    """The jupyter-server user of a session: username is `sub`, the workspace owner."""
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise SessionTokenError("token has no sub claim")
    name = claims.get("name") if isinstance(claims.get("name"), str) else None
    email = claims.get("email") if isinstance(claims.get("email"), str) else None
    picture = claims.get("picture") if isinstance(claims.get("picture"), str) else None
    shown = name or email or sub
    user = AuthJSUser(
        username=sub,
        name=shown,
        display_name=shown,
        initials=_initials(shown),
        avatar_url=picture or None,
    )
    user.email = email  # CodeWorkspacesApp.admin_users may name people by email
    return user


def _local_path(url: str, fallback: str) -> str:
    """`url` if it is a path on this host, else `fallback`: no open redirects through `next`."""
    parts = urlsplit(url)
    if parts.scheme or parts.netloc or not url.startswith("/") or url.startswith("//"):
        return fallback
    if "\\" in url or any(ord(char) < 0x20 for char in url):
        return fallback
    return url


class AuthJSLoginHandler(JupyterHandler):
    """Sends a browser without a session to the Pope Bot app's sign-in page."""

    @allow_unauthenticated
    def get(self) -> None:
        """Redirect to `next` when signed in, else to the configured login URL."""
        provider = self.identity_provider
        assert isinstance(provider, AuthJSIdentityProvider)
        next_url = _local_path(self.get_argument("next", self.base_url), self.base_url)
        if self.current_user:
            self.redirect(next_url)
            return
        if not provider.login_url:
            raise web.HTTPError(401, "Sign in to the Pope Bot app, then reload this page.")
        target = provider.login_url
        if provider.login_callback_param:
            target = url_concat(target, {provider.login_callback_param: next_url})
        self.redirect(target)


class AuthJSLogoutHandler(JupyterHandler):
    """Signing out happens in the Pope Bot app, which owns the session cookie."""

    @allow_unauthenticated
    def get(self) -> None:
        """Redirect to the app's sign-out page."""
        provider = self.identity_provider
        assert isinstance(provider, AuthJSIdentityProvider)
        self.redirect(provider.logout_url)


class AuthJSIdentityProvider(IdentityProvider):
    """Authenticates requests by the Auth.js session cookie of a Pope Bot app on the same host."""

    secret = List(
        Unicode(),
        help=(
            "Auth.js secrets (the app's AUTH_SECRET) that may have encrypted a session cookie. "
            "Defaults to the environment like @auth/core reads it: AUTH_SECRET_3, AUTH_SECRET_2, "
            "AUTH_SECRET_1, AUTH_SECRET (rotation). A token's kid picks the secret; a token "
            "without kid is tried with the first only. Never logged; prefer the environment "
            "over config files and command lines. The server refuses to start without one."
        ),
    ).tag(config=True)

    @default("secret")
    def _secret_default(self) -> list[str]:
        return _secrets_from_environment(os.environ)

    session_cookie_names = List(
        Unicode(),
        default_value=list(DEFAULT_COOKIE_NAMES),
        help=(
            "Names of the Auth.js session cookie, in order of precedence. Each name is also the "
            "salt of its own key. The first name a request carries decides: a bad cookie under "
            "it is not rescued by another name (so a plain cookie injected over http cannot "
            "override a __Secure- one). Set to ['__Secure-authjs.session-token'] to accept "
            "https-only cookies."
        ),
    ).tag(config=True)

    login_url = Unicode(
        "",
        help=(
            "Where to send a browser that has no valid session, e.g. the Pope Bot app's "
            "'/login' or 'https://bot.example.com/login'. Empty: the login page answers 401 "
            "with a hint to sign in to the app."
        ),
    ).tag(config=True)

    login_callback_param = Unicode(
        "callbackUrl",
        help=(
            "Query parameter carrying the Jupyter page to return to after signing in "
            "(Auth.js uses 'callbackUrl'). Empty: do not pass one."
        ),
    ).tag(config=True)

    logout_url = Unicode(
        "",
        help=(
            "The Pope Bot app's sign-out page. When set, Jupyter's /logout redirects there; "
            "when empty, Jupyter offers no logout (it cannot end an Auth.js session)."
        ),
    ).tag(config=True)

    allow_token_auth = Bool(
        False,
        help=(
            "Also accept Jupyter's own token (IdentityProvider.token, JUPYTER_TOKEN) as a "
            "credential, for scripts. Off by default because JupyterLab puts the token into "
            "every page it serves, so every signed-in user would learn it. Token requests "
            "without a session act as `token_username`; token requests skip the XSRF and "
            "Origin checks, as in stock jupyter-server."
        ),
    ).tag(config=True)

    token_username = Unicode(
        "jupyter-token",
        help=(
            "Username (workspace owner) of a request authenticated only by Jupyter's token, "
            "when allow_token_auth is True."
        ),
    ).tag(config=True)

    @default("token")
    def _token_default(self) -> str:
        if not self.allow_token_auth:
            return ""
        return str(IdentityProvider._token_default(self))

    @validate("token")
    def _validate_token(self, proposal: dict[str, Any]) -> str:
        value = str(proposal["value"])
        if value and not self.allow_token_auth:
            # Empty, so JupyterLab's page config never carries a token to the browser.
            self._token_ignored = True
            return ""
        return value

    @validate("session_cookie_names")
    def _validate_cookie_names(self, proposal: dict[str, Any]) -> list[str]:
        names = list(proposal["value"])
        if not names or not all(names):
            raise TraitError("session_cookie_names needs at least one non-empty name")
        return names

    @default("login_handler_class")
    def _login_handler_default(self) -> type[web.RequestHandler]:
        return AuthJSLoginHandler

    @default("logout_handler_class")
    def _logout_handler_default(self) -> type[web.RequestHandler]:
        return AuthJSLogoutHandler

    @default("updatable_fields")
    def _updatable_fields_default(self) -> list[str]:
        # The identity comes from the app's session on every request; nothing here persists.
        return []

    _token_ignored = False

    @property
    def logout_available(self) -> bool:
        """Only when there is an app sign-out page to send the browser to."""
        return bool(self.logout_url)

    def get_user(self, handler: web.RequestHandler) -> User | None:
        """The session's user, or the token user when allowed; None means 401/403/login."""
        user = self.get_session_user(handler)
        if self.allow_token_auth and self.token and self._token_matches(handler):
            handler._token_authenticated = True  # type: ignore[attr-defined]
            if user is None:
                user = User(username=self.token_username)
        return user

    def get_session_user(self, handler: web.RequestHandler) -> User | None:
        """The user of the request's Auth.js session cookie, if it is valid."""
        cookies = {name: morsel.value for name, morsel in handler.request.cookies.items()}
        for cookie_name in self.session_cookie_names:
            candidates = session_cookie_values(cookies, cookie_name)
            if not candidates:
                continue
            for token in candidates:
                try:
                    claims = decode_session_token(token, self.secret, cookie_name)
                    return user_from_claims(claims)
                except SessionTokenError as e:
                    self.log.debug("Rejected Auth.js session cookie %s: %s", cookie_name, e)
            # The first name present decides; see session_cookie_names.
            return None
        return None

    def _token_matches(self, handler: web.RequestHandler) -> bool:
        given = self.get_token(handler) or ""
        return hmac.compare_digest(given.encode(), self.token.encode())

    def validate_security(self, app: Any, ssl_options: dict[str, Any] | None = None) -> None:
        """Refuse to start without a secret; say what happened to a configured token."""
        super().validate_security(app, ssl_options)
        if not [secret for secret in self.secret if secret]:
            message = (
                "AuthJSIdentityProvider needs the Auth.js secret of the Pope Bot app: set "
                "AUTH_SECRET in the environment or c.AuthJSIdentityProvider.secret."
            )
            self.log.critical(message)
            raise AuthJSConfigError(message)
        if self._token_ignored or (
            not self.allow_token_auth
            and (os.environ.get("JUPYTER_TOKEN") or os.environ.get("JUPYTER_TOKEN_FILE"))
        ):
            self.log.warning(
                "Ignoring Jupyter's token: AuthJSIdentityProvider accepts only Auth.js sessions "
                "unless allow_token_auth is True."
            )
        self.log.info(
            "Authenticating with Auth.js session cookies %s (%d secret(s))",
            ", ".join(self.session_cookie_names),
            len(self.secret),
        )
