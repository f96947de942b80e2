"""Auth.js (next-auth v5) session cookies as jupyter-server identities.

A Jupyter server behind a Pope Bot app accepts the app's login: the session's `sub` becomes the
user. Decoding the cookie is `authjs_session.py`'s job; this module is the Jupyter side.
"""

from __future__ import annotations

import hmac
import os
from typing import Any
from urllib.parse import urlsplit

from jupyter_server.auth.decorator import allow_unauthenticated
from jupyter_server.auth.identity import IdentityProvider, User
from jupyter_server.base.handlers import JupyterHandler
from tornado import web
from tornado.httputil import url_concat
from traitlets import Bool, TraitError, Unicode, default, validate

from ..config_traits import List
from ..errors import AuthJSConfigError
from .authjs_session import (
    DEFAULT_COOKIE_NAMES,
    NoSessionCookie,
    SessionIdentity,
    SessionTokenError,
    decode_session_cookie,
    secrets_from_environment,
    session_identity,
)


class AuthJSUser(User):
    """A session's user; `email` is no dataclass field, so api/me does not show it."""

    email: str | None = None


def user_from_identity(identity: SessionIdentity) -> AuthJSUser:
    """The jupyter-server user of a session: username is `sub`, the workspace owner."""
    user = AuthJSUser(
        username=identity.username,
        name=identity.name,
        display_name=identity.name,
        initials=identity.initials,
        avatar_url=identity.avatar_url,
    )
    user.email = identity.email  # CodeWorkspacesApp.admin_users may name people by email
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
        return secrets_from_environment(os.environ)

    session_cookie_names = List(
        Unicode(),
        default_value=list(DEFAULT_COOKIE_NAMES),
        help=(
            "Names of the Auth.js session cookie, in order of precedence. Each name is also the "
            "salt of its own key. The first name a request carries decides: a bad cookie under "
            "it is not rescued by another name (so a plain cookie injected over http cannot "
            "override a __Secure- one). Chunked cookies (<name>.0, .1, ...) are joined. Set to "
            "['__Secure-authjs.session-token'] to accept https-only cookies."
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
        try:
            claims = decode_session_cookie(cookies, self.secret, self.session_cookie_names)
            identity = session_identity(claims)
        except NoSessionCookie:
            return None
        except SessionTokenError as e:
            self.log.debug("Rejected the Auth.js session cookie (%s)", e)
            return None
        return user_from_identity(identity)

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
