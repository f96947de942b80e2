"""The options of workspace containers, shared by the Docker and the Swarm backends.

Both read them from the `ContainerManager` section (Swarm from `SwarmContainerManager` too), and
both build a container from them the same way: the environment, the limits and the confinement
(read-only root, size-limited tmpfs, few capabilities) are decided here, once.
"""

from __future__ import annotations

import os
import re
from typing import Any, ClassVar

import docker
import docker.errors
from jupyter_core.utils import ensure_async
from traitlets import Callable as CallableTrait
from traitlets import Enum, Float, Int, Unicode

from ...config_traits import Dict
from ...core.profiles import ContainerResources
from ...core.store import Workspace
from ..base import ContainerError
from .storage import StorageOptions

# Capabilities the image's entrypoint keeps (as root, before it drops to the user): chown for the
# tmpfs home folder, setuid/setgid to become the user. The user's processes get none.
WORKSPACE_CAPABILITIES = ["CHOWN", "SETUID", "SETGID"]
# Home folder of the image's user; the workspace volume is mounted inside it.
WORKSPACE_HOME = "/home/coder"
# A tmpfs for the owner's personal secrets (core/secret_delivery.py), root's and group coder's.
SECRETS_MOUNT = "/run/workspace-secrets"
SECRETS_TMPFS = "rw,noexec,nosuid,nodev,size=16m,mode=0700"
# disk_limit's default on a multi-user server with one engine, so no user can fill the host.
MULTI_USER_DISK_LIMIT = "10g"
# POSIX portable environment variable names.
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class ContainerOptions(StorageOptions):
    """What a workspace container is made of: image, network, limits, environment, disks."""

    # Set by enable_secret_files: containers get a tmpfs for personal secrets (and their
    # first-start clone waits for them).
    secrets_tmpfs = False
    # disk_limit when unset on a multi-user server; '' where disk images are not supported.
    multi_user_disk_limit: ClassVar[str] = MULTI_USER_DISK_LIMIT

    image = Unicode(
        "jupyter-popebot-code-workspace:latest",
        help="Image of workspace containers (build it with scripts/build-image.sh).",
    ).tag(config=True)

    network = Unicode(
        "jupyter-popebot-code",
        help=(
            "The shared Docker network, created as a bridge network when missing (with "
            "com.docker.network.bridge.enable_icc=false while NetworkPolicy.isolate_workspaces). "
            "Put the Jupyter server on it when it runs in a container. While "
            "isolate_workspaces, each workspace has a network of its own (WorkspaceNetworks) "
            "and only workspaces made before stay here until their next start; otherwise all "
            "workspaces share it."
        ),
    ).tag(config=True)

    connect_via = Enum(
        ["auto", "ip", "name"],
        default_value="auto",
        help=(
            "How the relay reaches a container's ttyd: 'ip' (its address on the network, for a "
            "server outside Docker), 'name' (its container name, for a server on the same "
            "network), 'auto' ('name' when the server runs in a container attached to the "
            "workspace network, else 'ip'). Always 'ip' while each workspace has a network of "
            "its own (NetworkPolicy.isolate_workspaces)."
        ),
    ).tag(config=True)

    workspace_dir = Unicode(
        "/home/coder/workspace",
        help=(
            "Folder inside the container that holds the clone. Under the home folder (the "
            "default) the workspace's volume holds the whole home folder, so dotfiles, shell "
            "history and tool logins last as the files do; elsewhere the volume is mounted here "
            "and the home folder is a tmpfs of home_size."
        ),
    ).tag(config=True)

    mem_limit = Unicode(
        "2g",
        help=(
            "Memory limit per container in Docker's notation (e.g. '4g'); swap is capped to the "
            "same, so a workspace cannot page the host to a halt. '' or '0': no limit."
        ),
    ).tag(config=True)

    cpu_limit = Float(1.0, help="CPUs per container (e.g. 1.5); 0 for no limit.").tag(config=True)

    pids_limit = Int(
        512, help="Most processes a container may run (fork-bomb guard); 0 for no limit."
    ).tag(config=True)

    extra_env: Dict[str, str] = Dict(
        value_trait=Unicode(),
        help=(
            "Environment variables for EVERY workspace container. Every user can read them in "
            "their own terminal: never put a secret here; use owner_env or owner_env_hook."
        ),
    ).tag(config=True)

    owner_env: Dict[str, dict[str, str]] = Dict(
        key_trait=Unicode(),
        value_trait=Dict(value_trait=Unicode()),
        help=(
            "Environment variables per owner, e.g. {'alice': {'GH_TOKEN': '...'}}: only that "
            "owner's containers get them. Applied over extra_env."
        ),
    ).tag(config=True)

    owner_env_hook = CallableTrait(
        None,
        allow_none=True,
        help=(
            "A function (owner, workspace_id) -> dict of environment variables, or an awaitable "
            "of one, called whenever a container of that owner is created: for secrets looked up "
            "per user (a vault, the Pope Bot's own store). Applied over owner_env."
        ),
    ).tag(config=True)

    claude_code_oauth_token = Unicode(
        help=(
            "CLAUDE_CODE_OAUTH_TOKEN for EVERY workspace container, so `claude` works in each "
            "terminal; every user can read it. Setting it says the operator shares it. Default: "
            "the server's own CLAUDE_CODE_OAUTH_TOKEN environment variable on a single-user "
            "server (its owner is the operator), nothing on a multi-user one (give each user "
            "their own with owner_env or owner_env_hook)."
        ),
    ).tag(config=True)

    stop_timeout = Float(
        10.0,
        help="Seconds a stopping container's processes get after SIGTERM before SIGKILL.",
    ).tag(config=True)

    restart_wait_timeout = Float(
        30.0,
        help="Seconds ensure waits for a container in Docker's 'restarting' state to settle.",
    ).tag(config=True)

    max_listed_ports = Int(
        200,
        min=1,
        help=(
            "Most ports a workspace's ports listing (REST and sidebar) shows, lowest first; "
            "the answer says `truncated` when there were more."
        ),
    ).tag(config=True)

    ports_read_bytes = Int(
        256 * 1024,
        min=4096,  # room for both headers and a few sockets
        help=(
            "Most bytes read of each of a container's /proc/net/tcp and /proc/net/tcp6 per "
            "ports listing (about 150 bytes a socket, listening ones first), so that a "
            "workspace with very many sockets costs every listing the same bounded work."
        ),
    ).tag(config=True)

    ports_cache_seconds = Float(
        1.0,
        min=0.0,
        help=(
            "Seconds a workspace's ports listing is reused: concurrent and repeated listings "
            "of one workspace within it share one `docker exec`. 0 shares only concurrent ones."
        ),
    ).tag(config=True)

    def configured(self, name: str) -> bool:
        """Whether the operator set this option (in any section this class reads)."""
        return any(name in self.config.get(section, {}) for section in self.section_names())

    def describe(self) -> str:
        return f"image {self.image}"

    def apply_server_defaults(self, *, single_user: bool, multi_user: bool) -> None:
        """The token of a single-user server's operator, and a disk limit on a multi-user one."""
        if single_user and not self.configured("claude_code_oauth_token"):
            # One user, who is the operator: their own token is theirs to use.
            self.claude_code_oauth_token = os.environ.get("CLAUDE_CODE_OAUTH_TOKEN", "")
        if self.configured("disk_limit"):
            source = "ContainerManager.disk_limit"
        else:
            source = f"the default on a {'multi' if multi_user else 'single'}-user server"
            if multi_user and self.multi_user_disk_limit:
                self.disk_limit = self.multi_user_disk_limit
        if self.disk_limit not in ("", "0"):
            self.log.info(
                "Workspace disks: %s each, enforced by the kernel (%s)", self.disk_limit, source
            )
        else:
            self.log.info(
                "Workspace disks are not limited (%s); ContainerManager.disk_limit limits them",
                source,
            )

    def _image_missing_message(self) -> str:
        return (
            f"The workspace image {self.image!r} is not on the Docker engine: build it with "
            "scripts/build-image.sh (or set ContainerManager.image)."
        )

    # -- what every workspace container is made of ---------------------------------------------

    def limits(self) -> tuple[float, int]:
        """(CPUs, memory in bytes) each container may use; 0 where there is no limit."""
        memory = 0
        if self.mem_limit not in ("", "0"):
            try:
                memory = int(docker.utils.parse_bytes(self.mem_limit))
            except docker.errors.DockerException as err:
                raise ContainerError(f"ContainerManager.mem_limit: {err}") from err
        return max(0.0, self.cpu_limit), memory

    def volume_holds_home(self) -> bool:
        """Whether a new volume is mounted on the home folder (workspace_dir lies inside it)."""
        return self.workspace_dir.startswith(WORKSPACE_HOME + "/")

    def create_options(self, resources: ContainerResources, home_tmpfs: bool) -> dict[str, Any]:
        """Options of a workspace container's create: log cap, limits and confinement."""
        options: dict[str, Any] = {}
        if log_options := self.log_options():
            options["log_config"] = {"type": "json-file", "config": log_options}
        if resources.memory not in ("", "0"):
            options["mem_limit"] = options["memswap_limit"] = resources.memory
        if resources.cpus:
            options["nano_cpus"] = int(resources.cpus * 1e9)
        if resources.pids:
            options["pids_limit"] = resources.pids
        # Least privilege and a bounded writable layer (issue 17): see confinement_options.
        options.update(self.confinement_options(home_tmpfs=home_tmpfs))
        return options

    def confinement_options(self, home_tmpfs: bool = True) -> dict[str, Any]:
        """Container options that keep a user inside their container and its sizes.

        Read-only root file system with size-limited tmpfs where the image writes (/tmp, and the
        home folder unless the volume holds it), and only the capabilities the entrypoint needs
        before it drops to the user.
        """
        tmp, home = self.tmpfs_bytes()
        tmpfs = {"/tmp": f"rw,exec,nosuid,nodev,size={tmp},mode=1777"}  # noqa: S108 (inside the container)
        if self.secrets_tmpfs:
            tmpfs[SECRETS_MOUNT] = SECRETS_TMPFS
        if home_tmpfs:
            tmpfs[WORKSPACE_HOME] = f"rw,exec,nosuid,nodev,size={home},mode=0755"
        return {
            "read_only": True,
            "tmpfs": tmpfs,
            "cap_drop": ["ALL"],
            "cap_add": WORKSPACE_CAPABILITIES,
        }

    async def environment(
        self, workspace: Workspace, env: dict[str, str], credential: str
    ) -> dict[str, str]:
        """The container's environment: every container's, the owner's, the workspace's own."""
        return {
            **self.extra_env,
            **await self._owner_environment(workspace),
            **env,
            "WORKSPACE_DIR": self.workspace_dir,
            "TTYD_CREDENTIAL": credential,
        }

    async def _owner_environment(self, workspace: Workspace) -> dict[str, str]:
        """What this owner's containers get beyond every container's (see owner_env)."""
        owner = workspace.user_id
        env: dict[str, str] = {}
        if self.claude_code_oauth_token:
            env["CLAUDE_CODE_OAUTH_TOKEN"] = self.claude_code_oauth_token
        env.update(self.owner_env.get(owner, {}))
        if self.owner_env_hook is not None:
            hooked = await ensure_async(self.owner_env_hook(owner, workspace.id))
            if not isinstance(hooked, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in hooked.items()
            ):
                raise ContainerError("owner_env_hook must return a dict of strings.")
            env.update(hooked)
        for name in sorted(env):
            if not _ENV_NAME.fullmatch(name) or "\0" in env[name]:
                raise ContainerError(f"Invalid environment variable for {owner}: {name!r}.")
        return env
