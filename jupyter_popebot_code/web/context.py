"""What the handlers need of the extension app, as a Protocol, so the web layer never imports it.

`CodeWorkspacesApp` (app.py) wires the handlers in; the handlers reach the app's parts through
this interface only, so the import graph runs one way: app -> handlers -> this.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..core.profiles import ProfileCatalog
    from ..core.secrets import PersonalSecrets
    from ..core.service import WorkspaceService
    from ..core.validation import WorkspaceValidator
    from ..terminal.relay import TerminalRelay


class PreviewURLs(Protocol):
    """What the REST API needs of the preview proxy (the proxy's own handlers use the rest)."""

    def url_template(self, base_url: str, key: str, workspace_id: str, scheme: str) -> str: ...

    def close_workspace(self, workspace_id: str) -> None:
        """The workspace stops or is deleted: its kept connections to apps close."""


class WorkspacesApp(Protocol):
    """The parts of CodeWorkspacesApp that the handlers use."""

    @property
    def service(self) -> WorkspaceService: ...

    @property
    def validator(self) -> WorkspaceValidator: ...

    @property
    def terminal_relay(self) -> TerminalRelay: ...

    @property
    def preview_proxy(self) -> PreviewURLs: ...

    @property
    def personal_secrets(self) -> PersonalSecrets: ...

    @property
    def profile_catalog(self) -> ProfileCatalog: ...

    @property
    def owner_source(self) -> str: ...

    @property
    def owner_name(self) -> str: ...

    @property
    def admin_users(self) -> Collection[str]: ...
