"""The jupyter-server extension: options, wiring and lifetime of the workspace service."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from jupyter_server.extension.application import ExtensionApp
from tornado.ioloop import IOLoop
from traitlets import TraitError, default

from . import metrics
from .app_options import MULTI_USER_IDLE_TIMEOUT, CodeWorkspacesOptions
from .auth.authorizer import WorkspaceAuthorizer, choose_authorizer
from .auth.owner import ANONYMOUS_IDENTITY_PROVIDERS
from .backends.base import WorkspaceBackend, WorkspaceNetworkPolicy
from .backends.docker.manager import ContainerManager
from .backends.docker.networks import WorkspaceNetworks
from .backends.swarm.manager import SwarmContainerManager
from .core.capacity import RunningCap
from .core.idle import IdleStopper
from .core.profiles import ProfileCatalog, parse_profiles
from .core.secret_delivery import SecretDelivery, open_personal_secrets
from .core.secrets import PersonalSecrets
from .core.service import Quota, WorkspaceService
from .core.store import WorkspaceStore
from .core.validation import WorkspaceValidator
from .errors import ContainerError, DockerUnavailable
from .hub.sync import HubSync
from .network.policy import NetworkPolicy
from .network.swarm_policy import SwarmNetworkPolicy
from .preview.host import AUTH_PATH, PreviewAuthHandler, install_host_routes, login_handlers
from .preview.proxy import HostPreviewHandler, PreviewProxy, preview_handlers
from .terminal.handler import relay_handlers
from .terminal.relay import TerminalRelay
from .web.handlers import workspace_handlers
from .web.profiles import profile_handlers
from .web.secrets import secret_handlers

if TYPE_CHECKING:
    from .web.context import WorkspacesApp

# Options that moved from CodeWorkspacesApp to TerminalRelay while 0.1.0 was developed, and are
# to be removed in 0.2: old name -> new name.
RENAMED_RELAY_OPTIONS = {
    "terminal_ready_timeout": "ready_timeout",
    "relay_ping_interval": "ping_interval",
    "relay_max_message_size": "max_message_size",
    "relay_client_buffer_limit": "buffer_limit",
}


class CodeWorkspacesApp(CodeWorkspacesOptions, ExtensionApp):
    """Docker code workspaces with a ttyd terminal, served by jupyter-server."""

    name = "jupyter_popebot_code"
    load_other_extensions = True

    # Made by initialize_settings; handlers reach them through CodeWorkspacesMixin.
    store: WorkspaceStore
    container_manager: WorkspaceBackend
    network_policy: WorkspaceNetworkPolicy
    terminal_relay: TerminalRelay
    preview_proxy: PreviewProxy
    validator: WorkspaceValidator
    service: WorkspaceService
    idle_stopper: IdleStopper
    hub_sync: HubSync
    running_cap: RunningCap
    profile_catalog: ProfileCatalog
    personal_secrets: PersonalSecrets
    secret_delivery: SecretDelivery | None

    @default("idle_timeout")
    def _default_idle_timeout(self) -> float:
        return MULTI_USER_IDLE_TIMEOUT if self.multi_user else 0.0

    classes = [
        ContainerManager,
        WorkspaceNetworks,
        SwarmContainerManager,
        NetworkPolicy,
        SwarmNetworkPolicy,
        TerminalRelay,
        PreviewProxy,
        HubSync,
        PersonalSecrets,
    ]

    def _link_jupyter_server_extension(self, serverapp: Any) -> None:
        try:
            super()._link_jupyter_server_extension(serverapp)
        except TraitError as exc:
            # jupyter-server would only log this and run on without the extension, and so
            # without WorkspaceAuthorizer: every signed-in person would get kernels and files.
            self.log.critical("Not starting: %s", exc)
            raise SystemExit(1) from exc
        # Before ServerApp.init_configurables makes the authorizer, so the choice takes effect.
        choose_authorizer(serverapp, self.restrict_users, list(self.admin_users), self.log)

    def initialize_settings(self) -> None:
        assert self.serverapp is not None
        if isinstance(self.serverapp.authorizer, WorkspaceAuthorizer):
            self.serverapp.authorizer.guard_handlers(self.serverapp.web_app)
        if not self.enabled:
            self.log.info("Code workspaces are disabled (CodeWorkspacesApp.enabled = False).")
            return
        if self.service_url:
            # The page talks to the shared service; this server holds no Docker access.
            page_config = self.serverapp.web_app.settings.setdefault("page_config_data", {})
            page_config["codeWorkspacesServiceUrl"] = self.service_url
            self.log.info("Code workspaces are served by %s (client mode)", self.service_url)
            return
        self._apply_renamed_options()
        self.store = WorkspaceStore(self.db_path)
        # A Type trait of an abstract class: mypy cannot tell it holds a concrete one.
        backend_class: Any = self.container_manager_class
        self.container_manager = backend_class(parent=self, log=self.log)
        self.container_manager.apply_server_defaults(
            single_user=self.single_user, multi_user=self.multi_user
        )
        self.network_policy = self.container_manager.network_policy(parent=self, log=self.log)
        self.terminal_relay = TerminalRelay(parent=self, log=self.log)
        self.preview_proxy = PreviewProxy(parent=self, log=self.log)
        self.validator = WorkspaceValidator(
            repo_url_template=self.repo_url_template,
            allowed_schemes=tuple(self.allowed_repo_schemes),
        )
        self.running_cap = RunningCap(
            self.max_running_workspaces,
            self.container_manager.host_resources,
            self.container_manager.limits,
            cpu_overcommit=self.cpu_overcommit,
            memory_overcommit=self.memory_overcommit,
            log=self.log,
        )
        self.profile_catalog = ProfileCatalog(parse_profiles(self.profiles))
        self.service = WorkspaceService(
            store=self.store,
            containers=self.container_manager,
            validator=self.validator,
            log=self.log,
            quota=Quota(
                max_workspaces=self.max_workspaces_per_user,
                max_running=self.max_running_workspaces_per_user,
            ),
            network_policy=self.network_policy,
            running_cap=self.running_cap,
            profiles=self.profile_catalog,
        )
        self.personal_secrets, self.secret_delivery = open_personal_secrets(
            self, self.db_path, self.service, self.log
        )
        self.container_manager.watch(self.store.store_id)
        IOLoop.current().add_callback(self._install_network_policy)
        # A crash between creating a container and recording it leaves an orphan: sweep once.
        IOLoop.current().add_callback(self.service.remove_orphans)
        IOLoop.current().add_callback(self.running_cap.log_at_start)
        self.idle_stopper = IdleStopper(
            self.service,
            idle_timeout=self.idle_timeout,
            interval=self.idle_check_interval,
            close_terminals=self._close_workspace_connections,
            log=self.log,
        )
        self._log_idle_stop()
        IOLoop.current().add_callback(self.idle_stopper.start)
        self.hub_sync = HubSync(self.service, parent=self, log=self.log)
        IOLoop.current().add_callback(self.hub_sync.start)
        metrics.LIVE.watch(self)
        self.log.info(
            "Code workspaces: store %s, %s%s",
            self.db_path,
            self.container_manager.describe(),
            f", profiles {', '.join(p.slug for p in self.profile_catalog.profiles)}"
            if self.profile_catalog
            else "",
        )

    @property
    def single_user(self) -> bool:
        """Whether every request acts for one owner (the server's own user)."""
        if self.owner_source == "auto":
            provider = self.serverapp.identity_provider if self.serverapp else None
            return type(provider) in ANONYMOUS_IDENTITY_PROVIDERS
        return bool(self.owner_source == "server")

    @property
    def multi_user(self) -> bool:
        """Whether several people may use this server (idle stop is then on by default).

        Broader than `not single_user`: an identity provider that names users makes the server
        multi-user even when owner_source puts every workspace under one owner.
        """
        if os.environ.get("JUPYTERHUB_API_URL"):
            return True
        if not self.single_user:
            return True
        provider = self.serverapp.identity_provider if self.serverapp else None
        return provider is not None and type(provider) not in ANONYMOUS_IDENTITY_PROVIDERS

    def _log_idle_stop(self) -> None:
        """Say at start whether and when idle workspaces stop, and where that value comes from."""
        if "idle_timeout" in self.config.get("CodeWorkspacesApp", {}):
            source = "CodeWorkspacesApp.idle_timeout"
        else:
            kind = "multi-user" if self.multi_user else "single-user"
            source = f"the default on a {kind} server"
        if self.idle_timeout > 0:
            self.log.info(
                "Idle stop after %g s without activity (%s), checked every %g s",
                self.idle_timeout,
                source,
                self.idle_stopper.interval,
            )
        else:
            self.log.info(
                "Idle stop is off (%s); CodeWorkspacesApp.idle_timeout turns it on", source
            )

    async def _install_network_policy(self) -> None:
        """Firewall the workspace network before anyone asks for a workspace; creates retry it."""
        try:
            await self.network_policy.install()
        except (DockerUnavailable, ContainerError) as err:
            self.log.error("Workspace network policy not installed yet: %s", err)

    def _apply_renamed_options(self) -> None:
        """Options that moved to TerminalRelay keep working, with a warning."""
        given = self.config.get("CodeWorkspacesApp", {})
        for old, new in RENAMED_RELAY_OPTIONS.items():
            if old in given:
                self.log.warning(
                    "CodeWorkspacesApp.%s is deprecated and will be removed in 0.2: use "
                    "TerminalRelay.%s",
                    old,
                    new,
                )
                relay_config = self.config.TerminalRelay
                if new not in relay_config:
                    relay_config[new] = given[old]

    def _close_workspace_connections(self, workspace_id: str, reason: str) -> None:
        """Before an idle stop: its terminals get the reason; its kept app connections close."""
        self.terminal_relay.close_workspace(workspace_id, reason)
        self.preview_proxy.close_workspace(workspace_id)

    def initialize_handlers(self) -> None:
        if not self.enabled or self.service_url:
            return
        self.handlers.extend(workspace_handlers())
        self.handlers.extend(profile_handlers())
        self.handlers.extend(secret_handlers())
        self.handlers.extend(relay_handlers())
        self.handlers.extend(preview_handlers())
        pattern = self.preview_proxy.host_pattern_parsed
        if pattern is not None:
            assert self.serverapp is not None
            self.handlers.extend(login_handlers())
            name = {"name": self.name}
            host_handlers = [
                (AUTH_PATH, PreviewAuthHandler, name),
                (r"/.*", HostPreviewHandler, name),
            ]
            install_host_routes(self.serverapp.web_app, pattern, host_handlers)
            self.log.info("Previews on hosts %s (PreviewProxy.mode = 'host')", pattern.pattern)

    async def stop_extension(self) -> None:
        if self.enabled and hasattr(self, "service"):
            metrics.LIVE.unwatch(self)
            await self.idle_stopper.stop()
            await self.hub_sync.stop()
            # Terminals get a clean close; their containers and terminal sessions keep running.
            await self.terminal_relay.close_all()
            self.preview_proxy.close_all()
            if self.secret_delivery is not None:
                await self.secret_delivery.close()
            self.personal_secrets.close()
            await self.service.close()


if TYPE_CHECKING:
    # Never run: mypy checks here that the app is what web.context says the handlers get.
    _AS_HANDLERS_SEE_IT: WorkspacesApp = CodeWorkspacesApp()
