"""Who owns the workspaces a request sees: decided here and nowhere else."""

from __future__ import annotations

from typing import TYPE_CHECKING

from jupyter_server.auth.identity import (
    IdentityProvider,
    LegacyIdentityProvider,
    PasswordIdentityProvider,
)

if TYPE_CHECKING:
    from jupyter_server.base.handlers import JupyterHandler

# The authorizer resource of everything this extension serves: the REST API and the relay alike.
AUTH_RESOURCE = "code_workspaces"

# jupyter-server's own providers give a token login a fresh random "anonymous" user each time,
# which would hide a user's workspaces from themselves; with them the server's owner_name is used.
_ANONYMOUS_IDENTITY_PROVIDERS = (IdentityProvider, PasswordIdentityProvider, LegacyIdentityProvider)


def owner_for(handler: JupyterHandler) -> str:
    """The workspace owner for an authenticated request (JupyterHub user, Auth.js sub, ...)."""
    app = handler.settings["popebot_code_app"]
    source = app.owner_source
    if source == "auto":
        provider = handler.identity_provider
        source = "server" if type(provider) in _ANONYMOUS_IDENTITY_PROVIDERS else "identity"
    if source == "server":
        return str(app.owner_name)
    user = handler.current_user
    if user is None or not getattr(user, "username", None):
        raise PermissionError("The request has no authenticated user.")
    return str(user.username)
