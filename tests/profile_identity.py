"""A test identity with JupyterHub groups, for workspace profiles restricted to groups."""

from __future__ import annotations

from typing import Any

from jupyter_server.auth.identity import User

from .conftest import HeaderIdentityProvider

GROUPS_HEADER = "X-Test-Groups"


class GroupsIdentityProvider(HeaderIdentityProvider):
    """The header's user, with JupyterHub's user model carrying the groups of a second header."""

    def get_user(self, handler: Any) -> User | None:  # type: ignore[override]
        user = super().get_user(handler)
        groups = handler.request.headers.get(GROUPS_HEADER)
        if user is not None and groups is not None:
            # As jupyterhub-singleuser's JupyterHubUser: the hub's model, groups included.
            user.hub_user = {"name": user.username, "groups": groups.split(",")}  # type: ignore[attr-defined]
        return user
