"""What every handler of this extension reaches: the app, its service and the caller's identity."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from jupyter_server.extension.handler import ExtensionHandlerMixin

from ..auth.owner import AUTH_RESOURCE, resolve_owner

if TYPE_CHECKING:
    from ..core.service import WorkspaceService
    from ..core.validation import WorkspaceValidator
    from .context import WorkspacesApp


class CodeWorkspacesMixin(ExtensionHandlerMixin):
    """Typed access to the extension's parts, as jupyter_server_terminals' TerminalsMixin."""

    auth_resource = AUTH_RESOURCE

    @property
    def code_app(self) -> WorkspacesApp:
        """The extension app, as far as handlers may know it (`context.WorkspacesApp`)."""
        return cast("WorkspacesApp", self.extensionapp)

    @property
    def service(self) -> WorkspaceService:
        return self.code_app.service

    @property
    def validator(self) -> WorkspaceValidator:
        return self.code_app.validator

    @property
    def owner(self) -> str:
        """The owner of the workspaces this request sees; NoIdentity (403) when there is none."""
        app = self.code_app
        return resolve_owner(
            self.current_user,  # type: ignore[attr-defined]
            self.identity_provider,  # type: ignore[attr-defined]
            app.owner_source,
            app.owner_name,
        )
