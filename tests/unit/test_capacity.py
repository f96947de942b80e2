"""Sizing the server-wide cap on running workspaces to the host (the rule, without an engine)."""

from __future__ import annotations

import logging
from typing import Any

from jupyter_popebot_code.backends.swarm.manager import SwarmContainerManager
from jupyter_popebot_code.core.capacity import (
    GIB,
    DerivedCap,
    HostResources,
    RunningCap,
    derive_cap,
)

HOST = HostResources(cpus=2.0, memory=24 * GIB, where="the Docker host")


def test_the_scarcer_resource_sets_the_cap() -> None:
    by_cpu = derive_cap(
        HOST, cpu_limit=1.0, mem_limit=2 * GIB, cpu_overcommit=4, memory_overcommit=1
    )
    assert by_cpu.value == 8  # 2 CPUs * 4 / 1 < 24 GiB / 2 GiB
    assert by_cpu.reason == "2 CPUs * cpu_overcommit 4 / cpu_limit 1, on the Docker host"
    by_memory = derive_cap(HOST, 0.5, 8 * GIB, cpu_overcommit=4, memory_overcommit=1)
    assert by_memory.value == 3
    assert by_memory.reason == (
        "24.0 GiB * memory_overcommit 1 / mem_limit 8 GiB, on the Docker host"
    )


def test_rounding_down_is_not_fooled_by_floats_and_one_always_runs() -> None:
    three_cpus = HostResources(3.0, 0, "h")
    assert derive_cap(three_cpus, 1.5, 0, cpu_overcommit=1, memory_overcommit=1).value == 2
    assert derive_cap(three_cpus, 0.7, 0, cpu_overcommit=0.3, memory_overcommit=1).value == 1
    small = HostResources(1.0, GIB, "h")
    assert derive_cap(small, 0, 2 * GIB, cpu_overcommit=4, memory_overcommit=1).value == 1


def test_without_per_workspace_limits_nothing_is_sized() -> None:
    assert derive_cap(HOST, 0, 0, 4, 1) == DerivedCap(
        0, "no per-workspace CPU or memory limit to size it by"
    )


async def test_a_host_with_nothing_usable_yet_is_asked_again() -> None:
    answers = [HostResources(0.0, 0, "0 usable swarm node(s)"), HOST]

    async def host_resources() -> HostResources:
        return answers.pop(0)

    cap = RunningCap(
        None, host_resources, lambda: (1.0, 2 * GIB), 4.0, 1.0, logging.getLogger("test")
    )
    assert await cap() == 0  # no limit rather than 1: the backend says what is wrong
    assert await cap() == 8
    assert await cap() == 8  # kept: not asked a third time
    assert answers == []


def _node(state: str, availability: str, nano_cpus: int, memory: int) -> dict[str, Any]:
    return {
        "Status": {"State": state},
        "Spec": {"Availability": availability},
        "Description": {"Resources": {"NanoCPUs": nano_cpus, "MemoryBytes": memory}},
    }


class _Nodes:
    """Just enough of a Docker client for usable_nodes: the manager's node listing."""

    def __init__(self, nodes: list[dict[str, Any]]) -> None:
        self.api = self
        self._nodes = nodes

    def nodes(self, filters: Any = None) -> list[dict[str, Any]]:
        return self._nodes


async def test_a_swarm_counts_its_usable_nodes_together() -> None:
    manager = SwarmContainerManager()
    client = _Nodes(
        [
            _node("ready", "active", 2_000_000_000, 8 * GIB),
            _node("ready", "active", 4_000_000_000, 16 * GIB),
            _node("down", "active", 64_000_000_000, 512 * GIB),  # not usable: not counted
            _node("ready", "drain", 64_000_000_000, 512 * GIB),
        ]
    )

    async def call(fn: Any, *args: Any) -> Any:
        return fn(client, *args)

    manager._call = call  # type: ignore[method-assign]
    try:
        assert await manager.host_resources() == HostResources(
            6.0, 24 * GIB, "2 usable swarm node(s)"
        )
    finally:
        manager.close()
