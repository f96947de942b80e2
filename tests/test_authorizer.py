"""Least privilege: with Auth.js sessions a non-admin gets code workspaces and a read-only lab."""

from __future__ import annotations

import json
import secrets
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from jupyter_server.auth.authorizer import AllowAllAuthorizer, Authorizer
from jupyter_server.auth.identity import IdentityProvider, User
from jupyter_server.base.handlers import APIHandler, JupyterHandler
from jupyter_server.utils import JupyterServerAuthWarning
from tornado import web
from tornado.httpclient import HTTPClientError, HTTPResponse

from jupyter_popebot_code.auth.authorizer import WorkspaceAuthorizer

from .test_authjs import ALICE, BOB, PLAIN, PROVIDER, SECRET, Minter, _encode
from .test_authjs import minter as minter  # the session fixture that runs @auth/core

CAROL = {"sub": "5c7e0d2a-carol", "email": "carol@example.com"}
# Carol is an admin by her sub, Bob by his email (listed in another case); Alice is not one.
ADMINS = [CAROL["sub"], "Bob@Example.COM"]


@pytest.fixture(scope="module")
def sessions(minter: Minter) -> dict[str, str]:
    """Session cookies minted by @auth/core for alice (no admin), bob and carol (admins)."""
    users = {"alice": ALICE, "bob": BOB, "carol": CAROL}
    tokens = minter.run([_encode(claims, SECRET, PLAIN) for claims in users.values()])
    return {label: minted["token"] for label, minted in zip(users, tokens, strict=True)}


@pytest.fixture
def server_settings() -> dict[str, Any]:
    """conftest's server with Auth.js sessions, JupyterLab, terminals and nothing else."""
    return {
        "ServerApp": {
            "identity_provider_class": PROVIDER,
            "jpserver_extensions": {
                "jupyter_popebot_code": True,
                "jupyterlab": True,
                "jupyter_server_terminals": True,
            },
        },
        "AuthJSIdentityProvider": {"secret": [SECRET]},
        "CodeWorkspacesApp": {"admin_users": ADMINS},
    }


XSRF = secrets.token_hex(16)


def _as(token: str) -> dict[str, str]:
    return {"Cookie": f"{PLAIN}={token}; _xsrf={XSRF}", "X-XSRFToken": XSRF}


async def _call(
    jp_fetch: Callable[..., Any], token: str, method: str, path: str, body: Any = None
) -> tuple[int, Any]:
    path, _, query = path.partition("?")
    response: HTTPResponse = await jp_fetch(
        *path.split("/"),
        params=dict(pair.split("=", 1) for pair in query.split("&")) if query else None,
        method=method,
        headers=_as(token),
        body=None if method in ("GET", "DELETE") else json.dumps(body or {}),
        raise_error=False,
        follow_redirects=False,
    )
    try:
        return response.code, json.loads(response.body) if response.body else None
    except ValueError:
        return response.code, response.body


# What a shell, a kernel or the files would give away: refused to non-admins before any runs.
REFUSED = [
    ("GET", "api/terminals"),
    ("POST", "api/terminals"),
    ("GET", "api/kernels"),
    ("POST", "api/kernels"),
    ("GET", "api/contents"),
    ("POST", "api/contents"),
    ("GET", "api/sessions"),
    ("GET", "api/kernelspecs"),
    ("GET", "api/config/notebook"),
    ("GET", "api/resolvePath"),
    ("POST", "api/shutdown"),
    ("GET", "lab/api/extensions"),
    ("POST", "lab/api/extensions"),
    ("GET", "lab/api/plugins"),
    ("GET", "lab/api/build"),
    ("POST", "lab/api/build"),
    ("PUT", "lab/api/settings/@jupyterlab/apputils-extension:themes"),
    ("PUT", "lab/api/workspaces/default"),
    ("GET", "metrics"),
    ("GET", "files/anything.txt"),
]


@pytest.mark.parametrize(("method", "path"), REFUSED)
async def test_non_admin_is_refused_everything_else(
    jp_fetch: Callable[..., Any], sessions: dict[str, str], method: str, path: str
) -> None:
    code, body = await _call(jp_fetch, sessions["alice"], method, path)
    assert code == 403, body
    # The authorizer's refusal, not the XSRF check's (the request carries a valid token).
    message = body["message"] if isinstance(body, dict) else body.decode()
    assert "not authorized" in message, body


async def test_non_admin_has_code_workspaces_and_a_read_only_lab(
    jp_fetch: Callable[..., Any], sessions: dict[str, str], service: Any
) -> None:
    alice = sessions["alice"]
    for path in (
        "lab",
        "api/me",
        "api/status",
        "lab/api/settings",
        "lab/api/translations",
        "lab/api/workspaces/default",
        "api/code/workspaces",
    ):
        code, body = await _call(jp_fetch, alice, "GET", path)
        assert code == 200, (path, body)
    code, created = await _call(
        jp_fetch, alice, "POST", "api/code/workspaces", {"name": "alice-ws", "repo": ""}
    )
    assert code == 201, created
    code, ensured = await _call(
        jp_fetch, alice, "POST", f"api/code/workspaces/{created['id']}/ensure"
    )
    assert (code, ensured["status"]) == (200, "running"), ensured
    code, _ = await _call(jp_fetch, alice, "DELETE", f"api/code/workspaces/{created['id']}")
    assert code == 204


async def test_non_admin_terminal_websocket_is_refused_before_the_upgrade(
    jp_fetch: Callable[..., Any],
    jp_ws_fetch: Callable[..., Any],
    sessions: dict[str, str],
) -> None:
    # The admin opens a terminal; the non-admin may not attach to it (nor to any).
    code, term = await _call(jp_fetch, sessions["carol"], "POST", "api/terminals")
    assert code == 200, term
    try:
        for path in (("terminals", "websocket", term["name"]), ("api", "events", "subscribe")):
            with pytest.raises(HTTPClientError) as refused:
                await jp_ws_fetch(*path, headers={"Cookie": f"{PLAIN}={sessions['alice']}"})
            assert refused.value.code == 403
        ws = await jp_ws_fetch(
            "terminals",
            "websocket",
            term["name"],
            headers={"Cookie": f"{PLAIN}={sessions['carol']}"},
        )
        ws.close()
    finally:
        code, _ = await _call(
            jp_fetch, sessions["carol"], "DELETE", f"api/terminals/{term['name']}"
        )
        assert code == 204


@pytest.mark.parametrize("admin", ["carol", "bob"], ids=["by_sub", "by_email"])
async def test_admins_get_everything(
    jp_fetch: Callable[..., Any], sessions: dict[str, str], admin: str
) -> None:
    token = sessions[admin]
    for path in ("api/terminals", "api/kernels", "api/contents", "api/sessions", "api/kernelspecs"):
        code, body = await _call(jp_fetch, token, "GET", path)
        assert code == 200, (path, body)
    code, created = await _call(jp_fetch, token, "POST", "api/contents", {"type": "file"})
    assert code == 201, created
    code, _ = await _call(jp_fetch, token, "DELETE", f"api/contents/{created['path']}")
    assert code == 204
    code, term = await _call(jp_fetch, token, "POST", "api/terminals")
    assert code == 200, term
    code, _ = await _call(jp_fetch, token, "DELETE", f"api/terminals/{term['name']}")
    assert code == 204


async def test_only_admins_learn_which_files_exist_under_the_root(
    jp_fetch: Callable[..., Any], jp_root_dir: Path, sessions: dict[str, str]
) -> None:
    (jp_root_dir / ".secret-notes").write_text("")

    async def resolve(user: str) -> tuple[int, Any]:
        response = await jp_fetch(
            "api",
            "resolvePath",
            params={"path": ".secret-notes", "kernel": "no-such-kernel"},
            headers=_as(sessions[user]),
            raise_error=False,
        )
        return response.code, json.loads(response.body)

    code, body = await resolve("carol")
    assert code == 200, body
    assert body["resolved"] == [{"scope": "server", "path": ".secret-notes"}], body
    code, body = await resolve("alice")
    assert code == 403, body
    assert "not authorized" in body["message"], body


async def test_non_admins_see_no_saved_jupyterlab_layouts(
    jp_fetch: Callable[..., Any], sessions: dict[str, str]
) -> None:
    layout = {
        "data": {"layout-restorer:data": {"main": {"current": "notebook:carol-private.ipynb"}}},
        "metadata": {"id": "/carol-layout"},
    }
    code, body = await _call(
        jp_fetch, sessions["carol"], "PUT", "lab/api/workspaces/carol-layout", layout
    )
    assert code == 204, body
    code, listed = await _call(jp_fetch, sessions["carol"], "GET", "lab/api/workspaces")
    assert code == 200, listed
    assert "/carol-layout" in listed["workspaces"]["ids"], listed
    # The non-admin's JupyterLab loads as on a server where no layout was ever saved.
    code, listed = await _call(jp_fetch, sessions["alice"], "GET", "lab/api/workspaces")
    assert (code, listed) == (200, {"workspaces": {"ids": [], "values": []}})
    code, one = await _call(jp_fetch, sessions["alice"], "GET", "lab/api/workspaces/carol-layout")
    assert (code, one) == (200, {"data": {}, "metadata": {"id": "/carol-layout"}})
    code, _ = await _call(jp_fetch, sessions["alice"], "DELETE", "lab/api/workspaces/carol-layout")
    assert code == 403
    code, one = await _call(jp_fetch, sessions["carol"], "GET", "lab/api/workspaces/carol-layout")
    assert (code, one["data"]) == (200, layout["data"]), one


async def test_admins_by_sub_and_by_email_get_the_workspace_admin_view(
    jp_fetch: Callable[..., Any], sessions: dict[str, str], service: Any
) -> None:
    code, created = await _call(
        jp_fetch, sessions["alice"], "POST", "api/code/workspaces", {"name": "alice-ws"}
    )
    assert code == 201, created
    alices = f"api/code/workspaces/{created['id']}"
    try:
        for admin in ("carol", "bob"):  # bob is listed by his email, in another case
            code, body = await _call(
                jp_fetch, sessions[admin], "GET", "api/code/workspaces?all=true"
            )
            assert code == 200, (admin, body)
            assert [ws["owner"] for ws in body["workspaces"]] == [ALICE["sub"]], body
            code, body = await _call(jp_fetch, sessions[admin], "GET", f"{alices}/ports")
            assert (code, body["ports"]) == (200, []), (admin, body)
        code, body = await _call(jp_fetch, sessions["alice"], "GET", "api/code/workspaces?all=true")
        assert code == 403, body
    finally:
        code, _ = await _call(jp_fetch, sessions["alice"], "DELETE", alices)
        assert code == 204


class _ThirdPartyHandler(APIHandler):
    """An extension's handler that only authenticates (no auth_resource, no @authorized)."""

    @web.authenticated
    def get(self) -> None:
        self.finish({"ran": True})


async def test_a_handler_added_later_without_authorization_is_refused_to_non_admins(
    jp_fetch: Callable[..., Any], jp_serverapp: Any, sessions: dict[str, str]
) -> None:
    jp_serverapp.web_app.add_handlers(
        ".*$", [(jp_serverapp.base_url + "third-party", _ThirdPartyHandler)]
    )
    code, body = await _call(jp_fetch, sessions["alice"], "GET", "third-party")
    assert code == 403, body
    assert "_ThirdPartyHandler" in body["message"]
    code, body = await _call(jp_fetch, sessions["carol"], "GET", "third-party")
    assert (code, body) == (200, {"ran": True})


async def test_the_authjs_server_runs_the_workspace_authorizer(jp_serverapp: Any) -> None:
    authorizer = jp_serverapp.authorizer
    assert type(authorizer) is WorkspaceAuthorizer
    assert authorizer.admin_users == ADMINS


# --- the choice of authorizer ---------------------------------------------------------------


class TestTokenLogin:
    """jupyter-server's own token login: one person, today's behaviour (everything)."""

    @pytest.fixture
    def server_settings(self) -> dict[str, Any]:
        return {
            "ServerApp": {
                "jpserver_extensions": {
                    "jupyter_popebot_code": True,
                    "jupyter_server_terminals": True,
                }
            }
        }

    async def test_token_user_keeps_full_access(
        self, jp_fetch: Callable[..., Any], jp_serverapp: Any
    ) -> None:
        assert type(jp_serverapp.authorizer) is AllowAllAuthorizer
        for path in ("api/terminals", "api/kernels", "api/contents", "api/sessions"):
            response: HTTPResponse = await jp_fetch(*path.split("/"))
            assert response.code == 200, path


class _OperatorAuthorizer(AllowAllAuthorizer):
    """An authorizer the operator chose."""


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"CodeWorkspacesApp": {"restrict_users": "always"}}, WorkspaceAuthorizer),
        (
            {
                "ServerApp": {"identity_provider_class": PROVIDER},
                "CodeWorkspacesApp": {"restrict_users": "never"},
            },
            AllowAllAuthorizer,
        ),
        (
            {
                "ServerApp": {
                    "identity_provider_class": PROVIDER,
                    "authorizer_class": _OperatorAuthorizer,
                }
            },
            _OperatorAuthorizer,
        ),
        (
            {
                "ServerApp": {
                    "authorizer_class": "jupyter_popebot_code.auth.authorizer.WorkspaceAuthorizer"
                },
                "CodeWorkspacesApp": {"admin_users": ["someone"]},
            },
            WorkspaceAuthorizer,
        ),
    ],
    ids=["always_with_token_login", "never_with_authjs", "operator_authorizer_kept", "configured"],
)
async def test_authorizer_choice(
    jp_configurable_serverapp: Callable[..., Any],
    tmp_path: Path,
    settings: dict[str, Any],
    expected: type[Authorizer],
) -> None:
    config: dict[str, Any] = {
        "ServerApp": {"jpserver_extensions": {"jupyter_popebot_code": True}},
        "AuthJSIdentityProvider": {"secret": [SECRET]},
        # No store, no Docker: only the choice made at link time matters here.
        "CodeWorkspacesApp": {"db_path": str(tmp_path / "w.sqlite"), "enabled": False},
    }
    for section, values in settings.items():
        config.setdefault(section, {}).update(values)
    app = jp_configurable_serverapp(config=config)
    assert type(app.authorizer) is expected
    if expected is WorkspaceAuthorizer:
        assert app.authorizer.admin_users == config["CodeWorkspacesApp"].get("admin_users", [])


# --- who is an admin (fast tier: identities as their providers build them) -------------------


class _HubUser(User):
    """Like jupyterhub.singleuser's JupyterHubUser: the hub's user model in `hub_user`."""

    hub_user: dict[str, Any]


def _hub_user(name: str, admin: bool) -> User:
    user = _HubUser(username=name)
    user.hub_user = {"name": name, "admin": admin, "kind": "user"}
    return user


def test_admins_by_name_email_and_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    from jupyter_popebot_code.auth.authjs import user_from_identity
    from jupyter_popebot_code.auth.authjs_session import session_identity

    def user_from_claims(claims: dict[str, Any]) -> User:
        return user_from_identity(session_identity(claims))

    monkeypatch.setenv("JUPYTERHUB_USER", "owner")
    authorizer = WorkspaceAuthorizer(admin_users=ADMINS)
    assert authorizer.is_admin(user_from_claims(CAROL))
    assert authorizer.is_admin(user_from_claims(BOB))  # email, any case
    assert not authorizer.is_admin(user_from_claims(ALICE))
    assert authorizer.is_admin(_hub_user("hub-admin", admin=True))
    assert authorizer.is_admin(_hub_user("owner", admin=False))
    assert not authorizer.is_admin(_hub_user("shared-with", admin=False))
    # Only the session's email counts, never a username that looks like a listed email.
    assert not WorkspaceAuthorizer(admin_users=["Bob@Example.COM"]).is_admin(
        User("bob@example.com")
    )


# --- the extension-template's check: no endpoint without an authentication decorator ---------


def test_every_endpoint_requires_authentication(
    jp_configurable_serverapp: Callable[..., Any], tmp_path: Path
) -> None:
    """As the template's check_auth.py: with unauthenticated access off, jupyter-server warns
    (JupyterServerAuthWarning, an error in this suite) about any handler without a decorator."""

    class Undecorated(JupyterHandler):
        def get(self) -> None:
            self.finish("open")

    config = {
        "ServerApp": {
            "allow_unauthenticated_access": False,
            "jpserver_extensions": {"jupyter_popebot_code": True},
        },
        "CodeWorkspacesApp": {"db_path": str(tmp_path / "w.sqlite")},
    }
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always")
        app = jp_configurable_serverapp(config=config)
        ours = [
            record for record in records if issubclass(record.category, JupyterServerAuthWarning)
        ]
        assert ours == [], [str(record.message) for record in ours]
        # The check can fail: an undecorated handler is reported.
        app.web_app.add_handlers(".*$", [("/undecorated", Undecorated)])
    assert any(
        issubclass(record.category, JupyterServerAuthWarning)
        and "undecorated" in str(record.message)
        for record in records
    )


def test_an_identity_provider_set_after_linking_still_counts() -> None:
    """JupyterHub's singleuser extension sets its identity provider when it is linked, which
    may be after this extension: the choice follows, as long as the authorizer is not made."""
    from jupyter_server.serverapp import ServerApp
    from traitlets.config import Config

    from jupyter_popebot_code.auth.authjs import AuthJSIdentityProvider
    from jupyter_popebot_code.auth.authorizer import choose_authorizer

    app = ServerApp()
    choose_authorizer(app, "auto", ["admin"], app.log)
    assert app.authorizer_class is AllowAllAuthorizer
    app.update_config(Config({"ServerApp": {"identity_provider_class": AuthJSIdentityProvider}}))
    assert app.authorizer_class is WorkspaceAuthorizer
    # An authorizer configured later still wins in 'auto'.
    app.update_config(Config({"ServerApp": {"authorizer_class": _OperatorAuthorizer}}))
    assert app.authorizer_class is _OperatorAuthorizer


class HubLikeIdentityProvider(IdentityProvider):
    """Users as JupyterHub's singleuser extension makes them (a `hub_user` model), by header."""

    def get_user(self, handler: Any) -> User | None:  # type: ignore[override]
        name = handler.request.headers.get("X-Hub-User")
        if not name:
            return None
        return _hub_user(name, admin=name == "hub-admin")


class TestJupyterHubLikeIdentities:
    """No hub here: its user model as jupyterhub.singleuser gives it, through a real server."""

    @pytest.fixture
    def server_settings(self, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
        monkeypatch.setenv("JUPYTERHUB_USER", "owner")
        return {
            "ServerApp": {
                "identity_provider_class": HubLikeIdentityProvider,
                "jpserver_extensions": {
                    "jupyter_popebot_code": True,
                    "jupyter_server_terminals": True,
                },
            }
        }

    async def test_owner_and_hub_admins_get_everything_shared_users_do_not(
        self, jp_fetch: Callable[..., Any], jp_serverapp: Any
    ) -> None:
        assert type(jp_serverapp.authorizer) is WorkspaceAuthorizer
        for name, expected in (("owner", 200), ("hub-admin", 200), ("shared-with", 403)):
            for path in ("api/terminals", "api/kernels", "api/contents"):
                response: HTTPResponse = await jp_fetch(
                    *path.split("/"), headers={"X-Hub-User": name}, raise_error=False
                )
                assert response.code == expected, (name, path)
            response = await jp_fetch(
                "api", "code", "workspaces", headers={"X-Hub-User": name}, raise_error=False
            )
            assert response.code == 200, name
