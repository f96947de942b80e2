"""How many workspaces may run at once on this server: as configured, or sized to the Docker host.

The per-container limits (ContainerManager.cpu_limit, mem_limit) bound one workspace; this bounds
how many of them run, so that together their limits promise at most `memory_overcommit` times
the host's memory and `cpu_overcommit` times its CPUs. Memory is the one that takes a host down
(the kernel's OOM killer may pick any process, the Jupyter server's included); CPUs are shared
under contention and only slow everyone down.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

# The host's size is asked again after this many seconds (a swarm's nodes come and go).
HOST_RESOURCES_TTL = 60.0
GIB = 1024**3


@dataclass(frozen=True)
class HostResources:
    """What the workspaces' containers can use: one engine's host, or a swarm's usable nodes."""

    cpus: float
    memory: int  # bytes
    where: str  # for the log, e.g. "the Docker host"


@dataclass(frozen=True)
class DerivedCap:
    value: int  # 0: no limit (no per-workspace limit to size by)
    reason: str


def derive_cap(
    host: HostResources,
    cpu_limit: float,
    mem_limit: int,
    cpu_overcommit: float,
    memory_overcommit: float,
) -> DerivedCap:
    """The most workspaces whose limits fit the host times the overcommit factors; at least 1.

    A limit that is off (0) bounds nothing: with both off there is no cap to derive.
    """
    bounds: list[tuple[float, str]] = []
    if cpu_limit > 0:
        cpus = f"{host.cpus:g} CPUs * cpu_overcommit {cpu_overcommit:g} / cpu_limit {cpu_limit:g}"
        bounds.append((host.cpus * cpu_overcommit / cpu_limit, cpus))
    if mem_limit > 0:
        memory = (
            f"{host.memory / GIB:.1f} GiB * memory_overcommit {memory_overcommit:g} / "
            f"mem_limit {mem_limit / GIB:.3g} GiB"
        )
        bounds.append((host.memory * memory_overcommit / mem_limit, memory))
    if not bounds:
        return DerivedCap(0, "no per-workspace CPU or memory limit to size it by")
    fits, reason = min(bounds)
    # A hair of slack: 3 CPUs / 1.5 CPUs is 2 even when the division lands just below it.
    return DerivedCap(max(1, math.floor(fits + 1e-9)), f"{reason}, on {host.where}")


class RunningCap:
    """The server-wide cap on running workspaces: configured, or derived and cached for a while.

    Called before every create and start; asks the engine (off the loop, through the container
    manager's seam) only when no configured value exists and the cached one is stale.
    """

    def __init__(
        self,
        configured: int | None,
        host_resources: Callable[[], Awaitable[HostResources]],
        limits: Callable[[], tuple[float, int]],
        cpu_overcommit: float,
        memory_overcommit: float,
        log: logging.Logger,
    ) -> None:
        self.configured = configured
        self._host_resources = host_resources
        # (cpu_limit, mem_limit in bytes) of the container manager, read at each derivation.
        self._limits = limits
        self.cpu_overcommit = cpu_overcommit
        self.memory_overcommit = memory_overcommit
        self.log = log
        self._derived: DerivedCap | None = None
        self._derived_at = 0.0

    async def __call__(self) -> int:
        """The most workspaces that may run (or be paused) at once; 0: no limit."""
        if self.configured is not None:
            return self.configured
        return (await self.derived()).value

    async def derived(self) -> DerivedCap:
        now = time.monotonic()
        if self._derived is None or now - self._derived_at > HOST_RESOURCES_TTL:
            host = await self._host_resources()
            if host.cpus <= 0 and host.memory <= 0:
                # Nothing usable yet (a swarm with no ready node): no cap to size, and none kept;
                # creating or starting reports the real trouble.
                return DerivedCap(0, f"nothing usable on {host.where} yet")
            cpu_limit, mem_limit = self._limits()
            derived = derive_cap(
                host, cpu_limit, mem_limit, self.cpu_overcommit, self.memory_overcommit
            )
            if self._derived is not None and derived.value != self._derived.value:
                self.log.info(
                    "Running workspaces: now at most %d (%s)",
                    derived.value,
                    derived.reason,
                )
            self._derived, self._derived_at = derived, now
        return self._derived

    async def log_at_start(self) -> None:
        """Say what the cap is, and why; never raises into the server's loop."""
        if self.configured is not None:
            if self.configured:
                self.log.info(
                    "Running workspaces: at most %d at once, all owners together "
                    "(CodeWorkspacesApp.max_running_workspaces)",
                    self.configured,
                )
            else:
                self.log.info(
                    "Running workspaces: no server-wide limit "
                    "(CodeWorkspacesApp.max_running_workspaces = 0)"
                )
            return
        try:
            derived = await self.derived()
        except Exception as err:  # the engine may be down at start: the first create retries
            self.log.info(
                "Running workspaces: the limit is sized once the engine answers (%s)", err
            )
            return
        if derived.value:
            self.log.info(
                "Running workspaces: at most %d at once, all owners together (%s; "
                "CodeWorkspacesApp.max_running_workspaces sets it)",
                derived.value,
                derived.reason,
            )
        else:
            self.log.info("Running workspaces: no server-wide limit (%s)", derived.reason)
