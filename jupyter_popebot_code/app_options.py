"""The options of the extension (CodeWorkspacesApp), apart from its wiring in app.py.

Each is set as `c.CodeWorkspacesApp.<name>`; the option reference shows them under that class.
"""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Any

from jupyter_core.paths import jupyter_data_dir
from traitlets import Any as TraitAny
from traitlets import Bool, Enum, Float, Int, TraitError, Type, Unicode, default, validate
from traitlets.config import LoggingConfigurable

from .backends.base import WorkspaceBackend
from .backends.docker.manager import ContainerManager
from .config_traits import List
from .core.profiles import parse_profiles
from .errors import ProfileError
from .hub.service import SERVICE_NAME_ENV, SERVICE_URL_ENV, service_url_from_environment

# idle_timeout's default where several people share the server's Docker host: one hour.
MULTI_USER_IDLE_TIMEOUT = 3600.0


class CodeWorkspacesOptions(LoggingConfigurable):
    """What an operator sets on the extension; CodeWorkspacesApp adds the wiring."""

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
