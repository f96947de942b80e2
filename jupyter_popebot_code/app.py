"""The jupyter-server extension: options, wiring and lifetime of the workspace service."""

from __future__ import annotations

import getpass
import os
from pathlib import Path
from typing import Any

from jupyter_core.paths import jupyter_data_dir
from jupyter_server.extension.application import ExtensionApp
from tornado.ioloop import IOLoop
from traitlets import Bool, Enum, Float, Int, List, Type, Unicode, default

from .authorizer import WorkspaceAuthorizer, choose_authorizer
from .containers import ContainerManager
from .handlers import workspace_handlers
from .relay import close_all_relays, relay_handlers
from .service import WorkspaceService
from .store import WorkspaceStore
from .validation import WorkspaceValidator


class CodeWorkspacesApp(ExtensionApp):
    """Docker code workspaces with a ttyd terminal, served by jupyter-server."""

    name = "jupyter_popebot_code"
    load_other_extensions = True

    enabled = Bool(
        True,
        help=(
            "Serve code workspaces. When False the extension registers no handlers and says so "
            "in the log (the Pope Bot's BETA switch)."
        ),
    ).tag(config=True)

    db_path = Unicode(
        help=(
            "Path of the SQLite file that records workspaces. Defaults to "
            "<jupyter data dir>/popebot_code/workspaces.sqlite."
        ),
    ).tag(config=True)

    @default("db_path")
    def _default_db_path(self) -> str:
        return str(Path(jupyter_data_dir()) / "popebot_code" / "workspaces.sqlite")

    owner_source = Enum(
        ["auto", "server", "identity"],
        default_value="auto",
        help=(
            "Who owns the workspaces a request sees. 'identity': the authenticated user's "
            "username (JupyterHub, Auth.js). 'server': always `owner_name`, for a single-user "
            "server whose token logins have no stable identity. 'auto': 'server' with "
            "jupyter-server's own token/password identity providers, 'identity' otherwise."
        ),
    ).tag(config=True)

    owner_name = Unicode(
        help="Owner of every workspace when owner_source is 'server'. Defaults to the OS user.",
    ).tag(config=True)

    @default("owner_name")
    def _default_owner_name(self) -> str:
        return getpass.getuser()

    repo_url_template = Unicode(
        "https://github.com/{repo}.git",
        help="Clone URL for a repository given as 'owner/name'; {repo} is replaced by it.",
    ).tag(config=True)

    allowed_repo_schemes = List(
        Unicode(),
        default_value=["https", "ssh", "git"],
        help=(
            "URL schemes a repository URL may use. Also given to git in the container as "
            "GIT_ALLOW_PROTOCOL, so no other transport (ext::, fd::, file) is ever used."
        ),
    ).tag(config=True)

    terminal_ready_timeout = Float(
        30.0,
        help="Seconds the relay waits for ttyd to accept connections after ensuring a container.",
    ).tag(config=True)

    relay_ping_interval = Float(
        20.0,
        help="Seconds between WebSocket keepalive pings on both legs of the relay (0 disables).",
    ).tag(config=True)

    relay_max_message_size = Int(
        8 * 1024 * 1024,
        help="Largest WebSocket message, in bytes, the relay accepts on either leg.",
    ).tag(config=True)

    relay_client_buffer_limit = Int(
        4 * 1024 * 1024,
        help=(
            "Bytes of terminal output the relay may hold for a slow browser before it stops "
            "reading from ttyd until the browser catches up (backpressure)."
        ),
    ).tag(config=True)

    container_manager_class = Type(
        default_value=ContainerManager,
        klass=ContainerManager,
        help=(
            "The class that runs workspace containers (a ContainerManager subclass), so a "
            "deployment can swap how and where containers run."
        ),
    ).tag(config=True)

    admin_users = List(
        Unicode(),
        help=(
            "People who may use everything the server offers (kernels, terminals, files, "
            "extension management) when WorkspaceAuthorizer is in force: names as the identity "
            "gives them, i.e. the Auth.js `sub` or the session's email, or the JupyterHub user "
            "name (JupyterHub admins and the server's owner are admins anyway). Everyone else "
            "gets code workspaces and a read-only JupyterLab."
        ),
    ).tag(config=True)

    restrict_users = Enum(
        ["auto", "always", "never"],
        default_value="auto",
        help=(
            "Whether to install WorkspaceAuthorizer (least privilege for non-admins). 'auto': "
            "when the identity provider is not one of jupyter-server's own token/password "
            "providers (Auth.js, JupyterHub, any other) and no other authorizer is configured; "
            "a configured one is kept, with a warning. 'always': also with jupyter-server's own "
            "login, replacing a configured authorizer. 'never': leave the server's authorizer "
            "alone (every signed-in user can then do everything)."
        ),
    ).tag(config=True)

    classes = [ContainerManager]

    def _link_jupyter_server_extension(self, serverapp: Any) -> None:
        super()._link_jupyter_server_extension(serverapp)
        # Before ServerApp.init_configurables makes the authorizer, so the choice takes effect.
        choose_authorizer(serverapp, self.restrict_users, list(self.admin_users), self.log)

    def initialize_settings(self) -> None:
        authorizer = self.serverapp.authorizer
        if isinstance(authorizer, WorkspaceAuthorizer):
            authorizer.guard_handlers(self.serverapp.web_app)
        if not self.enabled:
            self.log.info("Code workspaces are disabled (CodeWorkspacesApp.enabled = False).")
            return
        os.makedirs(os.path.dirname(os.path.abspath(self.db_path)), exist_ok=True)
        self.store = WorkspaceStore(self.db_path)
        self.container_manager = self.container_manager_class(parent=self, log=self.log)
        self.validator = WorkspaceValidator(
            repo_url_template=self.repo_url_template,
            allowed_schemes=tuple(self.allowed_repo_schemes),
        )
        self.service = WorkspaceService(
            store=self.store,
            containers=self.container_manager,
            validator=self.validator,
            log=self.log,
        )
        # A crash between creating a container and recording it leaves an orphan: sweep once.
        IOLoop.current().add_callback(self.service.remove_orphans)
        self.settings.update(
            {
                "popebot_code_app": self,
                "popebot_code_service": self.service,
                "popebot_code_validator": self.validator,
            }
        )
        self.log.info(
            "Code workspaces: store %s, image %s", self.db_path, self.container_manager.image
        )

    def initialize_handlers(self) -> None:
        if not self.enabled:
            return
        self.handlers.extend(workspace_handlers())
        self.handlers.extend(relay_handlers())

    async def stop_extension(self) -> None:
        if self.enabled and hasattr(self, "service"):
            # Terminals get a clean close; their containers and tmux sessions keep running.
            await close_all_relays()
            await self.service.close()
