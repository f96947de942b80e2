"""Who a request acts for: the authorizer resource and the owner of the workspaces it sees."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, Protocol

from jupyter_server.auth.identity import (
    IdentityProvider,
    LegacyIdentityProvider,
    PasswordIdentityProvider,
)

from ..errors import NoIdentity

# The authorizer resource of everything this extension serves: the REST API and the relay alike.
AUTH_RESOURCE = "code_workspaces"

# jupyter-server's own providers give a token login a fresh random "anonymous" user each time,
# which would hide a user's workspaces from themselves; with them the server's owner_name is used.
ANONYMOUS_IDENTITY_PROVIDERS = (IdentityProvider, PasswordIdentityProvider, LegacyIdentityProvider)


def resolve_owner(
    user: Any, identity_provider: IdentityProvider, owner_source: str, owner_name: str
) -> str:
    """The workspace owner for an authenticated request (JupyterHub user, Auth.js sub, ...).

    `owner_source` is CodeWorkspacesApp.owner_source: 'server', 'identity' or 'auto'.
    """
    source = owner_source
    if source == "auto":
        anonymous = type(identity_provider) in ANONYMOUS_IDENTITY_PROVIDERS
        source = "server" if anonymous else "identity"
    if source == "server":
        return owner_name
    username = getattr(user, "username", None)
    if not isinstance(username, str) or not username:
        raise NoIdentity("The request has no authenticated user who could own workspaces.")
    return username


class HasAdminUsers(Protocol):
    """What is_admin needs of the app: CodeWorkspacesApp.admin_users."""

    @property
    def admin_users(self) -> Collection[str]: ...


def is_admin(handler_or_user: Any, app: HasAdminUsers) -> bool:
    """Whether the caller may see and manage every owner's workspaces (see `is_listed_admin`)."""
    user = getattr(handler_or_user, "current_user", handler_or_user)
    return is_listed_admin(user, app.admin_users)


def is_listed_admin(user: Any, admin_users: Collection[str]) -> bool:
    """Whether `user` is named in `admin_users` by username or email, or is a JupyterHub admin.

    The one rule for "admin", used for the workspace admin view and by WorkspaceAuthorizer.
    Emails match without regard to case, as mail systems do (Auth.js identities carry one).
    Under jupyterhub-singleuser the identity is a JupyterHubUser whose `hub_user` is the hub's
    model of the user, with `admin` (the hub includes it with the `read:users:name` scope every
    OAuth and API token carries for its own user).
    """
    username = getattr(user, "username", None)
    if not isinstance(username, str) or not username:
        return False
    if username in admin_users:
        return True
    email = getattr(user, "email", None)
    if isinstance(email, str) and email:
        admin_emails = {name.casefold() for name in admin_users if "@" in name}
        if email.casefold() in admin_emails:
            return True
    hub_user = getattr(user, "hub_user", None)
    return isinstance(hub_user, dict) and hub_user.get("admin") is True


def identity_groups(user: Any) -> list[str]:
    """The user's groups: under JupyterHub its user model has them (identify scopes include them).

    Other identities have none, unless their provider gives the user a `groups` attribute.
    """
    hub_user = getattr(user, "hub_user", None)
    groups = hub_user.get("groups") if isinstance(hub_user, dict) else None
    if groups is None:
        groups = getattr(user, "groups", None)
    if not isinstance(groups, (list, tuple, set, frozenset)):
        return []
    return [group for group in groups if isinstance(group, str)]
