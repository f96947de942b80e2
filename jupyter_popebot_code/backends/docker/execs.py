"""Reaching a running workspace: `docker exec` for its ports and its output, and its address.

Both run on the Docker thread pool (the caller's `DockerEngine._call`), as the image's user and
with the terminal's credential blanked, and both are bounded: one short command, capped output.
"""

from __future__ import annotations

import functools
import logging
import socket

import docker
import docker.errors

from ...core.single_flight import SingleFlight
from ...errors import ContainerError, ListingUnreadable
from ..base import TTYD_PORT, ContainerState, PortListing
from .engine import DockerEngine
from .options import ContainerOptions
from .ports import listing_command, parse_listing

# The image's session keeper (workspace-session) touches its activity file whenever the terminal's
# program writes output, attached or not; tmux (older images, or one the user runs) stamps its
# windows. Only the latest stamp comes back (one line); none when neither runs.
TERMINAL_ACTIVITY_COMMAND = [
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
# Docker's DNS resolver on user-defined networks listens in every container on a random port.
DOCKER_DNS_ADDRESS = "127.0.0.11"


def _run(client: docker.DockerClient, name: str, command: list[str]) -> bytes:
    exec_id = client.api.exec_create(
        name,
        command,
        stdout=True,
        stderr=False,
        user=WORKSPACE_USER,
        environment=EXEC_ENVIRONMENT,
    )["Id"]
    output: bytes = client.api.exec_start(exec_id)
    return output


def terminal_activity(client: docker.DockerClient, name: str) -> float | None:
    """Epoch seconds of the latest terminal output in the container, in one exec.

    The session keeper (workspace-session) touches its activity file on output; images from
    before it ran tmux, whose windows' activity is read too. None when no terminal was ever
    opened since the start.
    """
    stamps = [
        int(word)
        for word in _run(client, name, TERMINAL_ACTIVITY_COMMAND).split()
        if word.isdigit()
    ]
    return float(max(stamps)) if stamps else None


def listening_ports(
    client: docker.DockerClient,
    name: str,
    *,
    read_bytes: int,
    max_ports: int,
    log: logging.Logger,
) -> PortListing:
    """One bounded exec, parsed here on the Docker thread pool, never on the event loop.

    Docker can lose a short exec's output (moby/moby#27289): a listing without its end
    lines is read again, then reported as an error, never as "nothing listens".
    """
    command = listing_command(read_bytes)
    failure: ListingUnreadable | None = None
    for _ in range(LISTING_ATTEMPTS):
        output = _run(client, name, command)
        try:
            return parse_listing(
                output.decode("ascii", "replace"),
                max_bytes=read_bytes,
                max_ports=max_ports,
                exclude=(TTYD_PORT,),
                hidden_addresses=(DOCKER_DNS_ADDRESS,),
            )
        except ListingUnreadable as err:
            log.warning("Ports of %s: %s (%d bytes of output)", name, err, len(output))
            failure = err
    raise ContainerError(str(failure))


class ContainerQueries:
    """The exec questions of one backend, off the loop; ports listings shared and cached.

    Concurrent callers for one container share one exec, and its answer for
    ports_cache_seconds: polling clients cost the engine one exec a second, not one each.
    """

    def __init__(self, engine: DockerEngine, options: ContainerOptions) -> None:
        self.engine = engine
        self.options = options
        self._port_listings: SingleFlight[PortListing] = SingleFlight(
            lambda: options.ports_cache_seconds
        )

    async def terminal_activity(self, name: str) -> float | None:
        return await self.engine.run_with_client(terminal_activity, name)

    async def listening_ports(self, name: str) -> PortListing:
        return await self._port_listings.get(
            name,
            lambda: self.engine.run_with_client(
                functools.partial(
                    listening_ports,
                    read_bytes=self.options.ports_read_bytes,
                    max_ports=self.options.max_listed_ports,
                    log=self.options.log,
                ),
                name,
            ),
        )


class ConnectVia:
    """Where the server dials a workspace container: its name or its address (connect_via)."""

    def __init__(self, engine: DockerEngine, options: ContainerOptions) -> None:
        self.engine = engine
        self.options = options
        self._resolved: str | None = None

    async def host(self, container_name: str, state: ContainerState) -> str:
        via = self.options.connect_via
        if getattr(self.options, "network_per_workspace", False):
            # A name resolves only on a network the server shares with the workspace: the
            # relay is routed to each workspace's own network (NetworkPolicy.ttyd_clients).
            if self._resolved != "ip":
                self._resolved = "ip"
                self.options.log.info(
                    "Relay reaches workspace containers by address, on their networks"
                )
            via = "ip"
        if via == "auto":
            if self._resolved is None:
                self._resolved = await self.engine.run_with_client(self._detect)
            via = self._resolved
        if via == "name":
            return container_name
        if not state.ip_address:
            raise ContainerError(
                f"Container {container_name} has no address on network {self.options.network!r}."
            )
        return state.ip_address

    def _detect(self, client: docker.DockerClient) -> str:
        """'name' when this server runs in a container attached to the workspace network.

        /.dockerenv alone proves nothing (some VMs and sandboxes have it): ask the engine whether
        a container with this host's name exists and sits on the network.
        """
        try:
            me = client.api.inspect_container(socket.gethostname())
        except docker.errors.NotFound:
            return "ip"
        networks = me.get("NetworkSettings", {}).get("Networks") or {}
        via = "name" if self.options.network in networks else "ip"
        self.options.log.info("Relay reaches workspace containers by %s (connect_via=auto)", via)
        return via
