"""Least privilege on a multi-user server: non-admins get their code workspaces and nothing more.

A server whose identities are not its owner's own (Auth.js sessions, JupyterHub users, any other
identity provider) must not hand every signed-in person a kernel, a terminal or the file system:
those run as the server's OS user, next to its secrets. `WorkspaceAuthorizer` lets a person who
is not an admin use this extension's resource and read what JupyterLab needs to start; everything
else answers 403.
"""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import Callable
from typing import Any

from jupyter_server.auth.authorizer import AllowAllAuthorizer, Authorizer
from jupyter_server.auth.identity import (
    IdentityProvider,
    LegacyIdentityProvider,
    PasswordIdentityProvider,
    User,
)
from jupyter_server.auth.login import LoginFormHandler
from jupyter_server.auth.logout import LogoutHandler
from jupyter_server.auth.utils import HTTP_METHOD_TO_AUTH_ACTION
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.utils import ensure_async
from tornado import web
from traitlets import Unicode
from traitlets.config import Config

from ..config_traits import List
from .owner import AUTH_RESOURCE, is_listed_admin

ALL_ACTIONS = frozenset({"read", "write", "execute"})
READ = frozenset({"read"})

# What a person who is not an admin may do: this extension's resource, and reading what
# JupyterLab needs to show its page and the Code Workspaces panel. Not kernels, terminals,
# contents, sessions, kernelspecs, config, events, nbconvert, server, extension management,
# nor any write to the server-wide JupyterLab settings and layouts.
NON_ADMIN_PERMISSIONS: dict[str, frozenset[str]] = {
    AUTH_RESOURCE: ALL_ACTIONS,
    "api": READ,  # api/me (who am I), api/status, api/spec.yaml
    "lab": READ,  # the JupyterLab page
    "static": READ,  # federated extensions' files
    "lab_settings": READ,
    "lab_themes": READ,
    "lab_translations": READ,
    "lab_listings": READ,
    "lab_licenses": READ,
}

# Handlers whose declared resource is broader than what they give away: api/resolvePath says
# "api" but tells which files (hidden ones too) exist under the server's root and which kernel
# ids exist.
RESOURCE_OVERRIDES: dict[str, str] = {
    "jupyter_server.services.api.handlers.PathResolverHandler": "api_resolve_path",
}

# Resources of handlers that never call the authorizer themselves (JupyterLab's own APIs and
# pages declare no `auth_resource`); unlisted ones are named after their class.
HANDLER_RESOURCES: dict[str, str] = {
    "jupyterlab_server.handlers.LabHandler": "lab",
    "jupyterlab_server.handlers.NotFoundHandler": "lab",
    "jupyter_server.base.handlers.MainHandler": "lab",
    "jupyter_server.base.handlers.Template404": "lab",
    "jupyter_server.base.handlers.FileFindHandler": "static",
    "jupyter_server.base.handlers.APIVersionHandler": "api",
    "jupyter_server.services.api.handlers.IdentityHandler": "api",
    "jupyter_server.services.contents.handlers.TrustNotebooksHandler": "contents",
    "jupyter_server.services.contents.handlers.NotebooksRedirectHandler": "contents",
    "jupyter_server.base.handlers.FilesRedirectHandler": "contents",
    "jupyter_server.base.handlers.PrometheusMetricsHandler": "server",
    "jupyterlab_server.settings_handler.SettingsHandler": "lab_settings",
    "jupyterlab_server.themes_handler.ThemesHandler": "lab_themes",
    "jupyterlab_server.translations_handler.TranslationsHandler": "lab_translations",
    "jupyterlab_server.listings_handler.ListingsHandler": "lab_listings",
    "jupyterlab_server.licenses_handler.LicensesHandler": "lab_licenses",
    "jupyterlab_server.workspaces_handler.WorkspacesHandler": "lab_workspaces",
    "jupyterlab.handlers.extension_manager_handler.ExtensionHandler": "lab_extensions",
    "jupyterlab.handlers.plugin_manager_handler.PluginHandler": "lab_plugins",
    "jupyterlab.handlers.build_handler.BuildHandler": "lab_build",
    "jupyterlab.handlers.announcements.CheckForUpdateHandler": "lab_announcements",
    "jupyterlab.handlers.announcements.NewsHandler": "lab_announcements",
}


def _no_saved_layouts(handler: JupyterHandler) -> dict[str, Any]:
    """JupyterLab's answer when no layout was ever saved: the list empty, each layout blank."""
    name = handler.path_kwargs.get("space_name")
    if not name:
        return {"workspaces": {"ids": [], "values": []}}
    return {"data": {}, "metadata": {"id": name if name.startswith("/") else f"/{name}"}}


# Reads refused to non-admins that answer as if there were nothing to read, rather than 403: the
# saved JupyterLab layouts ("workspaces", not ours) are one server-wide store that only admins
# can write, so a non-admin has none of their own, and JupyterLab starts cleanly from a blank one
# (a 403 would show in the console at every page load).
BLANK_WHEN_REFUSED: dict[str, Callable[[JupyterHandler], dict[str, Any]]] = {
    "lab_workspaces": _no_saved_layouts,
}

# With these the server has one person (its owner) behind every login: nothing to restrict.
OWNER_IDENTITY_PROVIDERS = (IdentityProvider, PasswordIdentityProvider, LegacyIdentityProvider)


class WorkspaceAuthorizer(Authorizer):
    """Admins may do everything; everyone else only code workspaces and a read-only JupyterLab."""

    admin_users = List(
        Unicode(),
        help=(
            "Names of the people who may do everything (kernels, terminals, files, ...): the "
            "identity's username (the Auth.js `sub`) or its email. "
            "CodeWorkspacesApp.admin_users, the documented place, is added to it."
        ),
    ).tag(config=True)

    def is_admin(self, user: User) -> bool:
        """True for a listed username or email, a JupyterHub admin and the hub server's owner."""
        if is_listed_admin(user, self.admin_users):
            return True
        hub_user = getattr(user, "hub_user", None)
        # A JupyterHub server belongs to JUPYTERHUB_USER; others reach it only by sharing.
        owner = os.environ.get("JUPYTERHUB_USER")
        return bool(owner) and isinstance(hub_user, dict) and hub_user.get("name") == owner

    def is_authorized(
        self, handler: JupyterHandler, user: User, action: str, resource: str
    ) -> bool:
        """Admins: everything. Others: NON_ADMIN_PERMISSIONS, nothing else."""
        if self.is_admin(user):
            return True
        allowed = action in NON_ADMIN_PERMISSIONS.get(resource, frozenset())
        if not allowed:
            # Debug: JupyterLab polls kernels and sessions, and jupyter-server logs each 403.
            self.log.debug(
                "Refused %s on %s to %s (not in CodeWorkspacesApp.admin_users)",
                action,
                resource,
                user.username,
            )
        return allowed

    def guard_handlers(self, web_app: web.Application) -> None:
        """Make every request, also to handlers that never ask the authorizer, ask it first.

        jupyter-server calls the authorizer only from `@authorized`; JupyterLab's own handlers
        (its page, settings, extension manager, build) have none. The application's dispatch is
        wrapped once, so handlers that other extensions add later are guarded too.

        No public hook does this. jupyter-server has none before a handler's verb beyond
        `@authorized` on the handler's own methods; tornado's OutputTransform sees only the
        request and acts on the first chunk of output, after the verb ran; its routers are a
        private class (`_ApplicationRouter`), and jupyter-server makes the Application itself,
        so it cannot be a subclass of ours. Every route does end in the Application's public,
        documented `get_handler_delegate`, so that method of this one instance is wrapped;
        tests/unit/test_framework_hooks.py fails, saying so, if tornado stops dispatching
        through it.
        """
        if getattr(web_app, "_popebot_guarded", False):
            return
        dispatch = web_app.get_handler_delegate
        guarded: dict[type, type] = {}

        def get_handler_delegate(
            request: Any, target_class: type, *args: Any, **kwargs: Any
        ) -> Any:
            if target_class not in guarded:
                guarded[target_class] = guarded_handler_class(target_class)
            return dispatch(request, guarded[target_class], *args, **kwargs)

        web_app.get_handler_delegate = get_handler_delegate  # type: ignore[method-assign]
        web_app._popebot_guarded = True  # type: ignore[attr-defined]


def handler_resource(handler_class: type) -> str:
    """A handler class's authorizer resource: an override, its `auth_resource`, a known name."""
    path = f"{handler_class.__module__}.{handler_class.__qualname__}"
    if path in RESOURCE_OVERRIDES:
        return RESOURCE_OVERRIDES[path]
    declared = getattr(handler_class, "auth_resource", None)
    if isinstance(declared, str) and declared:
        return declared
    return HANDLER_RESOURCES.get(path, path)


def guarded_handler_class(handler_class: type) -> type:
    """`handler_class`, made to ask the authorizer after authentication, before any verb runs."""
    if not (inspect.isclass(handler_class) and issubclass(handler_class, JupyterHandler)):
        return handler_class  # static files, redirects: no user, nothing to authorize
    if issubclass(handler_class, (LoginFormHandler, LogoutHandler)):
        return handler_class  # signing in and out is for everyone
    resource = handler_resource(handler_class)
    subclass: type[JupyterHandler]

    async def prepare(self: JupyterHandler, *args: Any, **kwargs: Any) -> Any:
        # JupyterHandler.prepare is a coroutine function; others' may be plain (typed as None).
        result: Any = super(subclass, self).prepare(*args, **kwargs)
        if inspect.isawaitable(result):
            result = await result
        user = self.current_user
        if self._finished or not user:
            # Refused or redirected already, or a verb open to anyone (CORS preflight, the
            # metrics when unauthenticated): a signed-in person is still asked about it.
            return result
        action = HTTP_METHOD_TO_AUTH_ACTION.get(self.request.method or "", "write")
        if not await ensure_async(self.authorizer.is_authorized(self, user, action, resource)):
            blank = BLANK_WHEN_REFUSED.get(resource)
            if blank is not None and action == "read":
                self.set_header("Content-Type", "application/json")
                self.finish(json.dumps(blank(self)))
                return result  # finished: tornado runs no verb
            raise web.HTTPError(403, f"User is not authorized to {action} on resource: {resource}.")
        return result

    subclass = type(
        handler_class.__name__,
        (handler_class,),
        {
            "prepare": prepare,
            "__module__": handler_class.__module__,
            "__doc__": handler_class.__doc__,
        },
    )
    subclass.__qualname__ = handler_class.__qualname__
    return subclass


def choose_authorizer(
    serverapp: Any,
    mode: str,
    admin_users: list[str],
    log: Any,
) -> None:
    """At link time, before the server makes its authorizer: install ours where it is needed.

    'auto': when the identities are not the server owner's own and no other authorizer is
    configured; 'always': in any case; 'never': leave the server's choice alone.
    """
    configured = serverapp.config.get("WorkspaceAuthorizer", {}).get("admin_users", [])
    merged = [*configured, *(name for name in admin_users if name not in configured)]
    serverapp.update_config(Config({"WorkspaceAuthorizer": {"admin_users": merged}}))
    _decide(serverapp, mode, len(merged), log)
    if mode == "auto":
        # Extensions linked after this one may still set the identity provider (JupyterHub's
        # singleuser extension does) or an authorizer: decide again when they do.
        serverapp.observe(
            lambda _change: _decide(serverapp, mode, len(merged), log),
            names=["identity_provider_class", "authorizer_class"],
        )


def _decide(serverapp: Any, mode: str, admin_count: int, log: Any) -> None:
    current: type = serverapp.authorizer_class
    if mode == "never" or issubclass(current, WorkspaceAuthorizer):
        return
    provider: type = serverapp.identity_provider_class
    if mode == "auto":
        if provider in OWNER_IDENTITY_PROVIDERS:
            return
        if current is not AllowAllAuthorizer:
            log.warning(
                "Keeping the configured authorizer %s: people signed in through %s who are not "
                "admins get only what it allows (CodeWorkspacesApp.restrict_users = 'always' "
                "puts WorkspaceAuthorizer in its place).",
                _name(current),
                _name(provider),
            )
            return
    elif current is not AllowAllAuthorizer:
        log.warning(
            "Replacing the configured authorizer %s (restrict_users = 'always')", _name(current)
        )
    serverapp.authorizer_class = WorkspaceAuthorizer
    log.info(
        "Least privilege: people signed in through %s who are not in "
        "CodeWorkspacesApp.admin_users (%d listed) get code workspaces only.",
        _name(provider),
        admin_count,
    )


def _name(cls: type | Callable[..., Any]) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"
