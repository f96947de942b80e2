"""The jupyter-server extension: options, wiring and lifetime of the workspace service."""

from __future__ import annotations

import getpass
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jupyter_core.paths import jupyter_data_dir
from jupyter_server.extension.application import ExtensionApp
from tornado.ioloop import IOLoop
from traitlets import Any as TraitAny
from traitlets import Bool, Enum, Float, Int, TraitError, Type, Unicode, default, validate

from . import metrics
from .auth.authorizer import WorkspaceAuthorizer, choose_authorizer
from .auth.owner import ANONYMOUS_IDENTITY_PROVIDERS
from .backends.base import WorkspaceBackend, WorkspaceNetworkPolicy
from .backends.docker.manager import ContainerManager
from .backends.docker.networks import WorkspaceNetworks
from .backends.swarm.manager import SwarmContainerManager
from .config_traits import List
from .core.capacity import RunningCap
from .core.idle import IdleStopper
from .core.profiles import ProfileCatalog, parse_profiles
from .core.secret_delivery import open_personal_secrets
from .core.secrets import PersonalSecrets
from .core.service import Quota, WorkspaceService
from .core.store import WorkspaceStore
from .core.validation import WorkspaceValidator
from .errors import ContainerError, DockerUnavailable, ProfileError
from .hub.service import SERVICE_NAME_ENV, SERVICE_URL_ENV, service_url_from_environment
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

# idle_timeout's default where several people share the server's Docker host: one hour.
MULTI_USER_IDLE_TIMEOUT = 3600.0

# Options that moved from CodeWorkspacesApp to TerminalRelay while 0.1.0 was developed, and are
# to be removed in 0.2: old name -> new name.
RENAMED_RELAY_OPTIONS = {
    "terminal_ready_timeout": "ready_timeout",
    "relay_ping_interval": "ping_interval",
    "relay_max_message_size": "max_message_size",
    "relay_client_buffer_limit": "buffer_limit",
}


class CodeWorkspacesApp(ExtensionApp):
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

    enabled = Bool(
        True,
        help=(
            "Serve code workspaces. When False the extension registers no handlers and says so "
            "in the log (the Pope Bot's BETA switch)."
        ),
    ).tag(config=True)

    db_path = Unicode(
        help=(
            "Path of the SQLite file that records workspaces; it survives restarts, and an older "
            "schema is migrated in place. Defaults to "
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
        help=(
            "Owner of every workspace when owner_source is 'server'. jupyter-server gives each "
            "token request without its cookie a new random anonymous user, so a single-user "
            "server keys workspaces on this stable name instead. Defaults to the OS user."
        ),
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

    container_manager_class = Type(
        default_value=ContainerManager,
        klass=WorkspaceBackend,
        help=(
            "The class that runs workspace containers (a "
            "jupyter_popebot_code.backends.base.WorkspaceBackend), so a deployment can swap how "
            "and where containers run: ContainerManager on one Docker engine (the default), "
            "jupyter_popebot_code.backends.swarm.SwarmContainerManager on a Docker Swarm. The "
            "backend names its own network policy."
        ),
    ).tag(config=True)

    admin_users = List(
        Unicode(),
        help=(
            "People who may use everything the server offers (kernels, terminals, files, "
            "extension management) when WorkspaceAuthorizer is in force: names as the identity "
            "gives them, i.e. the Auth.js `sub` or the session's email, or the JupyterHub user "
            "name (JupyterHub admins and the server's owner are admins anyway); emails match in "
            "any case. Everyone else gets code workspaces and a read-only JupyterLab. Admins "
            "(listed by name or email, and JupyterHub admins) may also list every owner's "
            "workspaces (?all=true) and stop or delete any of them."
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

    max_workspaces_per_user = Int(
        20,
        help=(
            "Workspaces one owner may have (running or not); creating more answers 403 with a "
            "message. 0: no limit."
        ),
    ).tag(config=True)

    max_running_workspaces_per_user = Int(
        5,
        help=(
            "Workspaces of one owner whose containers may run (or be paused) at once; creating "
            "or starting one more answers 403 (a terminal closes with the reason). 0: no limit."
        ),
    ).tag(config=True)

    max_running_workspaces = Int(
        None,
        allow_none=True,
        help=(
            "Workspaces whose containers may run (or be paused) at once on this server, all "
            "owners together; creating or starting one more answers 429 with a message naming "
            "this limit (a terminal closes with it). None (the default): sized to the Docker "
            "host, so that the running workspaces' limits add up to at most cpu_overcommit times "
            "its CPUs and memory_overcommit times its memory: the smaller of host CPUs x "
            "cpu_overcommit / ContainerManager.cpu_limit and host memory x memory_overcommit / "
            "ContainerManager.mem_limit, rounded down, at least 1 (a per-container limit of 0 "
            "sizes nothing). The host is `docker info` of the engine (on Swarm: the usable "
            "workspace nodes together), asked again after a minute; the value and its reason "
            "are logged at start. 0: no limit."
        ),
    ).tag(config=True)

    memory_overcommit = Float(
        1.0,
        help=(
            "How many times the Docker host's memory the running workspaces' memory limits "
            "(ContainerManager.mem_limit) may add up to, when max_running_workspaces is sized "
            "to the host. 1: never more than the host has. A workspace seldom uses its whole "
            "limit, but when they all do, the kernel's OOM killer picks among every process on "
            "the host, the Jupyter server's included."
        ),
    ).tag(config=True)

    cpu_overcommit = Float(
        4.0,
        help=(
            "How many times the Docker host's CPUs the running workspaces' CPU limits "
            "(ContainerManager.cpu_limit) may add up to, when max_running_workspaces is sized "
            "to the host. Busy workspaces share CPUs (they slow each other down, nothing is "
            "killed) and a workspace someone types in is idle most of the time, hence 4."
        ),
    ).tag(config=True)

    profiles = List(
        TraitAny(),  # each entry checked by parse_profiles, naming the entry
        help=(
            "Workspace profiles users choose from when they create a workspace, in the style of "
            "KubeSpawner's profile_list: a list of dicts with 'slug' (stored with the workspace: "
            "lower-case letters, digits, '-', '_'), 'display_name', 'description', 'image', and "
            "optionally 'limits' ({'cpus': 2, 'memory': '4g', 'pids': 1024, 'disk': '20g'}, each "
            "over ContainerManager's cpu_limit, mem_limit, pids_limit and disk_limit; "
            "owner_disk_limit still wins), 'default': True (at most one), and 'allowed_users' / "
            "'allowed_groups' (user names or emails, JupyterHub group names) restricting who "
            "may use it; a profile without either is open to everyone. A workspace keeps its "
            "profile: its container is recreated from it. Checked at start: a bad entry stops "
            "the server with a message naming it. Empty (the default): every workspace runs "
            "ContainerManager.image with ContainerManager's limits."
        ),
    ).tag(config=True)

    @validate("profiles")
    def _valid_profiles(self, proposal: Any) -> list[Any]:
        try:
            parse_profiles(proposal["value"])
        except ProfileError as err:
            raise TraitError(str(err)) from err
        return list(proposal["value"])

    @validate("memory_overcommit", "cpu_overcommit")
    def _positive_factor(self, proposal: Any) -> float:
        value = float(proposal["value"])
        if value <= 0:
            raise TraitError(f"{proposal['trait'].name} must be more than 0, not {value:g}")
        return value

    idle_timeout = Float(
        help=(
            "Seconds without activity after which a workspace's container is stopped (never "
            "removed: the next terminal, preview or ensure starts it again with its files; its "
            "processes and terminal session end with the stop). Activity: terminal traffic "
            "through the relay in either direction (keepalive pings do not count), preview "
            "traffic, ensure, and output in the workspace's terminal session whether a browser is "
            "attached or not, so an agent working unattended keeps its workspace running and a "
            "shell at its prompt does not (on Docker Swarm that output is not seen: only the "
            "traffic counts). 0 disables. Default: "
            f"{MULTI_USER_IDLE_TIMEOUT:g} on a multi-user server (under JupyterHub, i.e. "
            "JUPYTERHUB_API_URL is set; with Auth.js or any identity provider other than "
            "jupyter-server's own token/password login; or with owner_source 'identity'), 0 on "
            "a single-user server. The effective value is logged at start."
        ),
    ).tag(config=True)

    @default("idle_timeout")
    def _default_idle_timeout(self) -> float:
        return MULTI_USER_IDLE_TIMEOUT if self.multi_user else 0.0

    idle_check_interval = Float(
        30.0,
        help=(
            "Most seconds between two idle checks (one `docker exec` per running workspace "
            "each); also capped at a quarter of idle_timeout and at 60 s, so a container stops "
            "within idle_timeout + 60 s."
        ),
    ).tag(config=True)

    service_url = Unicode(
        help=(
            "Client mode: the URL of a shared code-workspaces service (a JupyterHub service, "
            "e.g. /services/code-workspaces/) that the JupyterLab page talks to instead of this "
            "server. This server then serves no workspaces and never touches Docker; the page "
            "finds the URL in its page config as `codeWorkspacesServiceUrl`. Default: "
            f"${SERVICE_URL_ENV}, else /services/${SERVICE_NAME_ENV}/ under "
            "$JUPYTERHUB_BASE_URL (configure_jupyterhub sets the name for single-user servers)."
        ),
    ).tag(config=True)

    @default("service_url")
    def _default_service_url(self) -> str:
        return service_url_from_environment()

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
        self.personal_secrets = open_personal_secrets(self, self.db_path, self.service, self.log)
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
            self.personal_secrets.close()
            await self.service.close()


if TYPE_CHECKING:
    # Never run: mypy checks here that the app is what web.context says the handlers get.
    _AS_HANDLERS_SEE_IT: WorkspacesApp = CodeWorkspacesApp()
