"""Workspace containers and their volumes on a Docker engine.

Every Docker call goes through the seam of `engine.DockerEngine` (a thread pool): Tornado's event
loop never waits on Docker. Container states come from `container_states` (the event stream).
Longer than most modules on purpose: a workspace container's options (image, limits, environment,
network) sit next to the calls that apply them.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import docker
import docker.errors
from docker.models.containers import Container
from jupyter_core.utils import ensure_async
from traitlets import Bool, Enum, Float, Int, Unicode
from traitlets import Callable as CallableTrait

from ...config_traits import Dict
from ...core.capacity import HostResources
from ...core.profiles import ContainerResources, Profile
from ...core.single_flight import SingleFlight
from ...core.store import Workspace
from ...errors import (
    ContainerError,
    ContainerMissing,
    ContainerNotRunning,
    DockerUnavailable,
    ListingUnreadable,
)
from . import disks
from .engine import DockerEngine
from .networks import WorkspaceNetworks
from .ports import PortListing, listing_command, parse_listing
from .states import ContainerState, ContainerStates, state_from_inspect

__all__ = [
    "ContainerError",
    "ContainerManager",
    "ContainerMissing",
    "ContainerNotRunning",
    "DockerUnavailable",
    "workspace_labels",
]

LABEL_PREFIX = "org.jupyter.popebot-code"
MANAGED_BY_LABEL = f"{LABEL_PREFIX}.managed-by"
MANAGED_BY = "jupyter-popebot-code"
WORKSPACE_LABEL = f"{LABEL_PREFIX}.workspace-id"
OWNER_LABEL = f"{LABEL_PREFIX}.owner"
STORE_LABEL = f"{LABEL_PREFIX}.store"
# On a volume with a disk limit: the folder of its image file and the image's size in bytes.
DISK_DIR_LABEL = f"{LABEL_PREFIX}.disk-dir"
DISK_SIZE_LABEL = f"{LABEL_PREFIX}.disk-size"
# "1" on a volume mounted on the whole home folder (the workspace folder inside it), so dotfiles
# and history last like the files. Volumes made before it hold only the workspace folder.
HOLDS_HOME_LABEL = f"{LABEL_PREFIX}.holds-home"
TTYD_PORT = 7681
# The image's session keeper (workspace-session) touches its activity file whenever the terminal's
# program writes output, attached or not; tmux (older images, or one the user runs) stamps its
# windows. Only the latest stamp comes back (one line); none when neither runs.
TMUX_ACTIVITY_COMMAND = [
    "sh",
    "-c",
    '{ stat -c %Y "/tmp/workspace-session-$(id -u)/activity";'
    " tmux list-windows -a -F '#{window_activity}'; } 2>/dev/null | sort -rn | head -n 1",
]
# Reads of a ports listing whose output Docker lost, before the request fails.
LISTING_ATTEMPTS = 3
# The image's unprivileged user, who owns the terminal session; `docker exec` runs as root
# otherwise.
WORKSPACE_USER = "coder"
# Every `docker exec` gets the container's environment: blank the terminal's credential there, or
# a process of the user's uid would hold it for the user to read.
EXEC_ENVIRONMENT = {"TTYD_CREDENTIAL": ""}
# Capabilities the image's entrypoint keeps (as root, before it drops to the user): chown for the
# tmpfs home folder, setuid/setgid to become the user. The user's processes get none.
WORKSPACE_CAPABILITIES = ["CHOWN", "SETUID", "SETGID"]
# Home folder of the image's user; the workspace volume is mounted inside it.
WORKSPACE_HOME = "/home/coder"
# A tmpfs for the owner's personal secrets (core/secret_delivery.py), root's and group coder's.
SECRETS_MOUNT = "/run/workspace-secrets"
SECRETS_TMPFS = "rw,noexec,nosuid,nodev,size=16m,mode=0700"
# Docker's DNS resolver on user-defined networks listens in every container on a random port.
DOCKER_DNS_ADDRESS = "127.0.0.11"
# Container states that hold memory and processes: they count against running-workspace limits.
HOLDING_STATES = frozenset({"running", "paused", "restarting"})
# POSIX portable environment variable names.
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def workspace_labels(workspace: Workspace, store_id: str) -> dict[str, str]:
    """The labels that tell this project's containers and volumes apart, and whose they are."""
    return {
        MANAGED_BY_LABEL: MANAGED_BY,
        WORKSPACE_LABEL: workspace.id,
        OWNER_LABEL: workspace.user_id,
        STORE_LABEL: store_id,
    }


def network_exists(client: docker.DockerClient, name: str) -> bool:
    """Whether a network of exactly this name exists (Docker's name filter matches substrings)."""
    return find_network(client, name) is not None


def find_network(client: docker.DockerClient, name: str) -> dict[str, Any] | None:
    """The listing entry (Id, Options, IPAM, ...) of the network of exactly this name."""
    for net in client.networks.list(names=[name]):
        if net.name == name:
            return net.attrs  # type: ignore[no-any-return]
    return None


# Called on a Docker thread with the network's attributes and whether it was just created.
NetworkHook = Callable[[docker.DockerClient, dict[str, Any], bool], None]


def _store_containers(client: docker.DockerClient, store_id: str) -> dict[str, dict[str, Any]]:
    """Name -> summary of every container (running or not) labelled with one store's id."""
    found = client.api.containers(all=True, filters={"label": [f"{STORE_LABEL}={store_id}"]})
    return {c["Names"][0].lstrip("/"): c for c in found}


class ContainerManager(DockerEngine):
    """Creates, inspects, starts and removes workspace containers and their volumes."""

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

    tmp_size = Unicode(
        "512m",
        help=(
            "Size of the tmpfs mounted on /tmp in every workspace container, in Docker's notation "
            "(e.g. '1g'). The container's root file system is read-only, so this and home_size "
            "bound what a user can write outside the workspace volume; a write past the size "
            "fails with 'No space left on device'. tmpfs pages count against the container's "
            "memory limit (mem_limit) while they hold data."
        ),
    ).tag(config=True)

    home_size = Unicode(
        "256m",
        help=(
            "Size of the tmpfs holding the home folder (/home/coder) of a workspace whose volume "
            "holds only the workspace folder: one made before volumes held the home folder, or "
            "with workspace_dir outside it. Such a home starts from the image's skeleton "
            "dotfiles at every container start. Counts against the memory limit like tmp_size."
        ),
    ).tag(config=True)

    log_max_size = Unicode(
        "10m",
        help=(
            "Largest size of a container's log file (its terminal's stdout/stderr, json-file "
            "driver) before Docker rotates it, in Docker's notation; log_max_files files are "
            "kept, so a user flooding /proc/1/fd/1 cannot fill the host's disk. '' or '0': "
            "the engine's default (often no cap)."
        ),
    ).tag(config=True)

    log_max_files = Int(
        3, help="How many rotated log files of log_max_size Docker keeps per container."
    ).tag(config=True)

    disk_limit = Unicode(
        "",
        help=(
            "Size of each workspace's volume in Docker's notation (e.g. '10g'), enforced by the "
            "kernel: the volume is an ext4 image file of that size, loop-mounted on the host "
            "(see disk_dir), and a write past it fails with 'No space left on device' for that "
            "workspace alone. Needs an engine that grants containers SYS_ADMIN, with loop "
            "devices and mkfs.ext4 on its host (not on Swarm). Applies to volumes created "
            "while it is set; an existing volume keeps its size. '' or '0': no limit. Unset, it "
            "is '10g' on a multi-user server with one Docker engine (so that no user can fill "
            "the host's disk) and '' on a single-user server or a Swarm; the server logs which "
            "at start."
        ),
    ).tag(config=True)

    owner_disk_limit: Dict[str, str] = Dict(
        key_trait=Unicode(),
        value_trait=Unicode(),
        help=(
            "disk_limit per owner, e.g. {'alice': '50g', 'bot': '0'}: overrides disk_limit for "
            "the volumes of that owner's new workspaces."
        ),
    ).tag(config=True)

    disk_dir = Unicode(
        "/var/lib/jupyter-popebot-code/disks",
        help=(
            "Folder on the Docker host (in dockerd's mount namespace) that holds the image "
            "files of workspaces with a disk_limit (<volume>.img) and their mount points "
            "(<volume>). Give it room for every workspace's limit: images are sparse, so they "
            "take only what is written."
        ),
    ).tag(config=True)

    disk_helper_image = Unicode(
        "",
        help=(
            "Image of the short-lived privileged container that makes and mounts disk images "
            "(it needs sh and nsenter; the host's own mkfs.ext4 and mount do the work). "
            "Empty: the workspace image."
        ),
    ).tag(config=True)

    keep_volume_on_delete = Bool(
        False,
        help="Keep a workspace's volume (its files) when the workspace is deleted.",
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

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._resolved_connect_via: str | None = None
        self._port_listings: SingleFlight[PortListing] = SingleFlight(
            lambda: self.ports_cache_seconds
        )
        self._states: ContainerStates | None = None
        # Set by NetworkPolicy: driver options of a new network, and a hook that checks an
        # existing network and installs the firewall rules for a new one.
        self.network_options: dict[str, str] = {}
        self.network_hook: NetworkHook | None = None
        # Set when personal secrets are written into containers: they get a tmpfs for them
        # (and their first-start clone waits for them).
        self.secrets_tmpfs = False
        # Docker accepts two networks of one name: never create it from two threads at once.
        self._network_lock = threading.Lock()
        # Set by NetworkPolicy while it keeps workspaces apart: a network per workspace, so
        # Docker's DNS in one names no other (networks.py).
        self.network_per_workspace = False
        self.workspace_networks = WorkspaceNetworks(parent=self, log=self.log)

    def watch(self, store_id: str) -> None:
        """Keep the states of this store's containers from Docker's event stream (see state)."""
        self._states = ContainerStates(
            self._new_client, f"{STORE_LABEL}={store_id}", self.network, self.log
        )
        self._states.start()

    @property
    def states(self) -> ContainerStates | None:
        return self._states

    def close(self) -> None:
        """Stop following events and taking calls; never waits on a call in flight."""
        if self._states is not None:
            self._states.close()
        super().close()

    def _image_missing_message(self) -> str:
        return (
            f"The workspace image {self.image!r} is not on the Docker engine: build it with "
            "scripts/build-image.sh (or set ContainerManager.image)."
        )

    # -- queries -----------------------------------------------------------------------------

    async def state(self, container_name: str) -> ContainerState | None:
        """The container's state as Docker says it now, or None when there is no such container."""
        return await self._call(self._observed_state, container_name)

    def known_running(self, container_name: str) -> ContainerState | None:
        """The container's state when the event stream is live and says it runs; else None.

        Answers without asking Docker: for the hot paths (ensure, the relay) on a running container.
        """
        states = self._states
        if states is None or not states.live:
            return None
        state = states.get(container_name)
        return state if state is not None and state.status == "running" else None

    def _observed_state(self, client: docker.DockerClient, name: str) -> ContainerState | None:
        observed_at = time.monotonic()
        try:
            state: ContainerState | None = state_from_inspect(
                client.api.inspect_container(name), self.network
            )
        except docker.errors.NotFound:
            state = None
        if self._states is not None:
            self._states.observe(name, state, observed_at)
        return state

    async def statuses(self, store_id: str, names: Iterable[str]) -> dict[str, str]:
        """Name -> Docker status of those of `names` that exist, all of one store.

        From memory while the event stream is live (cost: the names asked for), else one Docker
        call for the whole store.
        """
        states = self._states
        if states is not None and states.live:
            return states.statuses(names)
        wanted = set(names)

        def listed(client: docker.DockerClient) -> dict[str, str]:
            found = _store_containers(client, store_id)
            return {name: c["State"] for name, c in found.items() if name in wanted}

        return await self._call(listed)

    async def running_names(self, store_id: str) -> list[str]:
        """Names of the store's containers that run now.

        From memory while the event stream is live (cost: the running ones, not every
        workspace ever made), else one Docker listing of the store.
        """
        states = self._states
        if states is not None and states.live:
            return states.running_names()

        def listed(client: docker.DockerClient) -> list[str]:
            found = _store_containers(client, store_id)
            return [name for name, c in found.items() if c["State"] == "running"]

        return await self._call(listed)

    async def holding_names(self, store_id: str) -> list[str]:
        """Names of the store's containers that hold memory now (running, paused, restarting).

        From memory while the event stream is live, else one Docker listing of the store.
        """
        states = self._states
        if states is not None and states.live:
            return states.names_in(HOLDING_STATES)

        def listed(client: docker.DockerClient) -> list[str]:
            found = _store_containers(client, store_id)
            return [name for name, c in found.items() if c["State"] in HOLDING_STATES]

        return await self._call(listed)

    async def host_resources(self) -> HostResources:
        """The CPUs and memory of the engine's host (`docker info`), for sizing the defaults."""

        def ask(client: docker.DockerClient) -> HostResources:
            info = client.info()
            return HostResources(float(info["NCPU"]), int(info["MemTotal"]), "the Docker host")

        return await self._call(ask)

    def limits(self) -> tuple[float, int]:
        """(CPUs, memory in bytes) each container may use; 0 where there is no limit."""
        memory = 0
        if self.mem_limit not in ("", "0"):
            try:
                memory = int(docker.utils.parse_bytes(self.mem_limit))
            except docker.errors.DockerException as err:
                raise ContainerError(f"ContainerManager.mem_limit: {err}") from err
        return max(0.0, self.cpu_limit), memory

    async def workspace_ids(self, store_id: str) -> dict[str, str]:
        """Container name -> workspace id for every container of one store."""

        def list_all(client: docker.DockerClient) -> dict[str, str]:
            # A workspace's own network is made before its container: a crash in between leaves
            # the network alone, which the orphan sweep removes through `remove`.
            networks = self.workspace_networks.orphans(client, f"{STORE_LABEL}={store_id}")
            found = {name: labels.get(WORKSPACE_LABEL, "") for name, labels in networks.items()}
            for name, c in _store_containers(client, store_id).items():
                found[name] = c["Labels"].get(WORKSPACE_LABEL, "")
            return found

        return await self._call(list_all)

    async def tmux_activity(self, container_name: str) -> float | None:
        """Epoch seconds of the latest terminal output in the container, in one exec.

        Read from the session keeper's activity file (and any tmux server's windows); None when
        no session runs there (no terminal was ever opened since the start).
        """

        def ask(client: docker.DockerClient) -> float | None:
            exec_id = client.api.exec_create(
                container_name,
                TMUX_ACTIVITY_COMMAND,
                stdout=True,
                stderr=False,
                user=WORKSPACE_USER,
                environment=EXEC_ENVIRONMENT,
            )["Id"]
            output = client.api.exec_start(exec_id)
            stamps = [int(word) for word in output.split() if word.isdigit()]
            return float(max(stamps)) if stamps else None

        return await self._call(ask)

    async def listening_ports(self, container_name: str) -> PortListing:
        """The TCP ports the running container listens on (ttyd's left out), capped.

        Concurrent callers for one container share one exec, and its answer for
        ports_cache_seconds: polling clients cost the engine one exec a second, not one each.
        """
        return await self._port_listings.get(
            container_name, lambda: self._call(self._read_listening_ports, container_name)
        )

    def _read_listening_ports(self, client: docker.DockerClient, name: str) -> PortListing:
        """One bounded exec, parsed here on the Docker thread pool, never on the event loop.

        Docker can lose a short exec's output (moby/moby#27289): a listing without its end
        lines is read again, then reported as an error, never as "nothing listens".
        """
        command = listing_command(self.ports_read_bytes)
        for _ in range(LISTING_ATTEMPTS):
            exec_id = client.api.exec_create(
                name,
                command,
                stdout=True,
                stderr=False,
                user=WORKSPACE_USER,
                environment=EXEC_ENVIRONMENT,
            )["Id"]
            output = client.api.exec_start(exec_id)
            try:
                return parse_listing(
                    output.decode("ascii", "replace"),
                    max_bytes=self.ports_read_bytes,
                    max_ports=self.max_listed_ports,
                    exclude=(TTYD_PORT,),
                    hidden_addresses=(DOCKER_DNS_ADDRESS,),
                )
            except ListingUnreadable as err:
                self.log.warning("Ports of %s: %s (%d bytes of output)", name, err, len(output))
                failure = err
        raise ContainerError(str(failure))

    async def connect_host(self, container_name: str, state: ContainerState) -> str:
        """Where the relay dials this container's ttyd."""
        via = self.connect_via
        if self.network_per_workspace:
            # A name resolves only on a network the server shares with the workspace: the
            # relay is routed to each workspace's own network (NetworkPolicy.ttyd_clients).
            if self._resolved_connect_via is None:
                self._resolved_connect_via = via = "ip"
                self.log.info("Relay reaches workspace containers by address, on their networks")
            via = "ip"
        if via == "auto":
            if self._resolved_connect_via is None:
                self._resolved_connect_via = await self._call(self._detect_connect_via)
            via = self._resolved_connect_via
        if via == "name":
            return container_name
        if not state.ip_address:
            raise ContainerError(
                f"Container {container_name} has no address on network {self.network!r}."
            )
        return state.ip_address

    def _detect_connect_via(self, client: docker.DockerClient) -> str:
        """'name' when this server runs in a container attached to the workspace network.

        /.dockerenv alone proves nothing (some VMs and sandboxes have it): ask the engine whether
        a container with this host's name exists and sits on the network.
        """
        try:
            me = client.api.inspect_container(socket.gethostname())
        except docker.errors.NotFound:
            return "ip"
        networks = me.get("NetworkSettings", {}).get("Networks") or {}
        via = "name" if self.network in networks else "ip"
        self.log.info("Relay reaches workspace containers by %s (connect_via=auto)", via)
        return via

    # -- changes -----------------------------------------------------------------------------

    async def create(
        self,
        workspace: Workspace,
        store_id: str,
        env: dict[str, str],
        profile: Profile | None = None,
    ) -> None:
        """Create and start the workspace's container on its (possibly existing) volume.

        `profile`: its image and limits over this manager's (None: this manager's).
        """
        resources = ContainerResources.of(profile, self)
        environment = {
            **self.extra_env,
            **await self._owner_environment(workspace),
            **env,
            "WORKSPACE_DIR": self.workspace_dir,
            "TTYD_CREDENTIAL": workspace.ttyd_credential,
        }
        await self._change(
            workspace.container_name or "",
            lambda client: self._create_sync(client, workspace, store_id, environment, resources),
        )

    async def _change(
        self, container_name: str, action: Callable[[docker.DockerClient], object]
    ) -> None:
        """Run one change, then record the container's state as Docker reports it after."""

        def run(client: docker.DockerClient) -> None:
            try:
                action(client)
            finally:
                # Recorded at once: the event stream confirms a moment later.
                with contextlib.suppress(Exception):
                    self._observed_state(client, container_name)

        await self._call(run)

    def _create_sync(
        self,
        client: docker.DockerClient,
        ws: Workspace,
        store_id: str,
        env: dict[str, str],
        resources: ContainerResources | None = None,
    ) -> None:
        assert ws.container_name
        resources = resources or ContainerResources.of(None, self)
        labels = workspace_labels(ws, store_id)
        self._ensure_network(client)
        network = self.network
        if self.network_per_workspace:
            network = self.workspace_networks.ensure(
                client, ws.container_name, labels, self.network_options
            )
        limited, holds_home = self._ensure_volume(client, ws, labels, resources.disk)
        options: dict[str, Any] = {}
        if self.log_max_size not in ("", "0"):
            options["log_config"] = {
                "type": "json-file",
                "config": {"max-size": self.log_max_size, "max-file": str(self.log_max_files)},
            }
        if resources.memory not in ("", "0"):
            options["mem_limit"] = options["memswap_limit"] = resources.memory
        if resources.cpus:
            options["nano_cpus"] = int(resources.cpus * 1e9)
        if resources.pids:
            options["pids_limit"] = resources.pids
        # Least privilege and a bounded writable layer (issue 17): see confinement_options.
        options.update(self.confinement_options(home_tmpfs=not holds_home))
        container: Container = client.containers.create(
            resources.image,
            name=ws.container_name,
            hostname=f"workspace-{ws.id}"[:63],
            labels=labels,
            environment=env,
            volumes={
                ws.volume_name: {
                    "bind": WORKSPACE_HOME if holds_home else self.workspace_dir,
                    "mode": "rw",
                }
            },
            network=network,
            init=True,
            # After a reboot dockerd would start it before its disk is mounted (ensure mounts).
            restart_policy={"Name": "no" if limited else "unless-stopped"},
            security_opt=["no-new-privileges:true"],
            detach=True,
            **options,
        )
        try:
            container.start()
        except BaseException:
            container.remove(force=True)
            raise

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

    def volume_holds_home(self) -> bool:
        """Whether a new volume is mounted on the home folder (workspace_dir lies inside it)."""
        return self.workspace_dir.startswith(WORKSPACE_HOME + "/")

    def tmpfs_bytes(self) -> tuple[int, int]:
        """tmp_size and home_size in bytes (a bad value is a configuration error)."""
        sizes = []
        for name in ("tmp_size", "home_size"):
            try:
                size = int(docker.utils.parse_bytes(getattr(self, name)))
            except docker.errors.DockerException as error:
                raise ContainerError(f"ContainerManager.{name}: {error}") from error
            if size <= 0:
                raise ContainerError(f"ContainerManager.{name} must be a positive size.")
            sizes.append(size)
        return sizes[0], sizes[1]

    def disk_size(self, owner: str, profile_disk: str | None = None) -> int:
        """Bytes of a new volume of this owner (0: no limit).

        owner_disk_limit, else the workspace profile's disk limit, else disk_limit.
        """
        fallback = self.disk_limit if profile_disk is None else profile_disk
        return disks.parse_size(self.owner_disk_limit.get(owner, fallback))

    def _ensure_volume(
        self,
        client: docker.DockerClient,
        ws: Workspace,
        labels: dict[str, str],
        profile_disk: str | None = None,
    ) -> tuple[bool, bool]:
        """Create the volume (with its disk when limited) or mount an existing one's disk.

        An existing volume keeps its files, its size and its layout. Whether the volume has a
        disk limit, and whether it holds the home folder.
        """
        try:
            volume = client.api.inspect_volume(ws.volume_name)
        except docker.errors.NotFound:
            volume = None
        if volume is not None:
            holds_home = (volume.get("Labels") or {}).get(HOLDS_HOME_LABEL) == "1"
            return self._mount_disk(client, volume), holds_home
        if self.volume_holds_home():
            labels = {**labels, HOLDS_HOME_LABEL: "1"}
        holds_home = HOLDS_HOME_LABEL in labels
        size = self.disk_size(ws.user_id, profile_disk)
        if not size:
            client.volumes.create(name=ws.volume_name, labels=labels)
            return False, holds_home
        disks.mount(client, self._helper_image(), self.disk_dir, ws.volume_name, size)
        client.volumes.create(
            name=ws.volume_name,
            driver="local",
            driver_opts={
                "type": "none",
                "o": "bind",
                "device": disks.mount_point(self.disk_dir, ws.volume_name),
            },
            labels={**labels, DISK_DIR_LABEL: self.disk_dir, DISK_SIZE_LABEL: str(size)},
        )
        return True, holds_home

    def _mount_disk(self, client: docker.DockerClient, volume: dict[str, Any]) -> bool:
        """Mount a volume's disk image if it has one (after a reboot it is unmounted)."""
        labels = volume.get("Labels") or {}
        if DISK_DIR_LABEL not in labels:
            return False
        size = int(labels.get(DISK_SIZE_LABEL, "0"))
        disks.mount(client, self._helper_image(), labels[DISK_DIR_LABEL], volume["Name"], size)
        return True

    def _helper_image(self) -> str:
        return self.disk_helper_image or self.image

    async def prepare_start(self, workspace: Workspace) -> None:
        """What must hold before the workspace's container starts: its disk mounted."""

        def prepare(client: docker.DockerClient) -> None:
            if self.network_per_workspace and workspace.container_name:
                # One made on the shared network moves to its own here (docs/security.md).
                self.workspace_networks.attach(
                    client,
                    workspace.container_name,
                    self.network,
                    self.network_options,
                    (MANAGED_BY_LABEL, WORKSPACE_LABEL, OWNER_LABEL, STORE_LABEL),
                )
            try:
                volume = client.api.inspect_volume(workspace.volume_name)
            except docker.errors.NotFound:
                return
            self._mount_disk(client, volume)

        await self._call(prepare)

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

    def _ensure_network(self, client: docker.DockerClient) -> None:
        # Checked on every create (one cheap call): a network removed meanwhile comes back.
        with self._network_lock:
            attrs = find_network(client, self.network)
            created = attrs is None
            if attrs is None:
                try:
                    client.networks.create(
                        self.network,
                        driver="bridge",
                        options=self.network_options or None,
                        labels={MANAGED_BY_LABEL: MANAGED_BY},
                        check_duplicate=True,
                    )
                except docker.errors.APIError as err:
                    # Another server may have created it in the meantime.
                    if not network_exists(client, self.network):
                        raise ContainerError(
                            f"Cannot create network {self.network!r}: {err}"
                        ) from err
                attrs = find_network(client, self.network)
                if attrs is None:
                    raise ContainerError(f"Network {self.network!r} vanished after its creation.")
        if self.network_hook is not None:
            self.network_hook(client, attrs, created)

    async def start(self, container_name: str) -> None:
        await self._change(container_name, lambda client: client.api.start(container_name))

    async def unpause(self, container_name: str) -> None:
        """Unpause; a container that is no longer paused counts as unpaused."""

        def unpause(client: docker.DockerClient) -> None:
            try:
                client.api.unpause(container_name)
            except docker.errors.APIError as err:
                # 409 "not paused": another ensure won, or a late "paused" event is not applied yet.
                if err.status_code != 409:
                    raise

        await self._change(container_name, unpause)

    async def wait_while_restarting(self, container_name: str) -> ContainerState | None:
        """Poll a 'restarting' container until it settles or restart_wait_timeout passes."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.restart_wait_timeout
        state = await self.state(container_name)
        while state is not None and state.status == "restarting" and loop.time() < deadline:
            await asyncio.sleep(0.5)
            state = await self.state(container_name)
        return state

    async def stop(self, container_name: str) -> None:
        """Stop the container (its processes end; volume and container stay for a restart)."""
        await self._change(
            container_name,
            lambda client: client.api.stop(container_name, timeout=int(self.stop_timeout)),
        )

    async def remove(self, container_name: str, recreating: bool = False) -> None:
        """Remove the container; one that is already gone counts as removed.

        `recreating`: a container of the same name follows at once (ensure's recreate), so what
        the two share stays (a Swarm workspace's own network).
        """

        def remove(client: docker.DockerClient) -> None:
            try:
                client.api.remove_container(container_name, force=True)
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as err:
                # 409: a removal is already in progress.
                if err.status_code != 409:
                    raise
            if not recreating:
                self.workspace_networks.remove(client, container_name)

        await self._change(container_name, remove)

    async def remove_volume(self, volume_name: str) -> None:
        """Remove the volume, and its disk image (unmounted first) when it has one."""

        def remove(client: docker.DockerClient) -> None:
            try:
                labels = client.api.inspect_volume(volume_name).get("Labels") or {}
            except docker.errors.NotFound:
                labels = {}
            with contextlib.suppress(docker.errors.NotFound):
                client.api.remove_volume(volume_name, force=True)
            if DISK_DIR_LABEL in labels:
                disks.release(
                    client, self._helper_image(), labels[DISK_DIR_LABEL], volume_name, remove=True
                )

        await self._call(remove)

    async def unmount_volume(self, volume_name: str) -> None:
        """Unmount a kept volume's disk image (it stays, and is mounted again by a start)."""

        def unmount(client: docker.DockerClient) -> None:
            try:
                labels = client.api.inspect_volume(volume_name).get("Labels") or {}
            except docker.errors.NotFound:
                return
            if DISK_DIR_LABEL in labels:
                disks.release(
                    client, self._helper_image(), labels[DISK_DIR_LABEL], volume_name, remove=False
                )

        await self._call(unmount)
