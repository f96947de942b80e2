"""The Swarm backend through the interface, on a stand-in of a manager's API (fast tier).

What a real swarm does is tested in tests/test_swarm.py (a multi-node cluster on this machine);
here the backend's own bookkeeping is: one service per workspace pinned to its node, states
mapped from replicas and tasks, start and stop as scaling, remove and the orphan listing.
"""

from __future__ import annotations

import itertools
from typing import Any

import docker.errors
import pytest
from traitlets.config import Config

from jupyter_popebot_code.backends.base import ContainerState, NodeUnavailable
from jupyter_popebot_code.backends.swarm.manager import (
    NODE_LABEL,
    PIN_SUFFIX,
    SwarmContainerManager,
)
from jupyter_popebot_code.core.store import Workspace

NETWORK = "workspaces-overlay"
_ids = itertools.count(1)


class FakeManagerApi:
    """The part of a manager's API the backend calls; tasks run the moment they are wanted."""

    def __init__(self) -> None:
        self.node = {
            "ID": "node-1",
            "Status": {"State": "ready"},
            "Spec": {"Availability": "active"},
            "Description": {"Hostname": "worker-1", "Resources": {"NanoCPUs": 4e9}},
        }
        self.by_name: dict[str, dict[str, Any]] = {}
        self.task_list: list[dict[str, Any]] = []
        self.configs: dict[str, dict[str, Any]] = {}
        self.network_names = {NETWORK}

    # services and tasks
    def create_service(self, template: dict[str, Any], name: str, **kwargs: Any) -> None:
        mode = kwargs.get("mode", {})
        self.by_name[name] = {
            "ID": f"svc-{next(_ids)}",
            "Version": {"Index": 1},
            "Spec": {"Name": name, "Labels": kwargs.get("labels", {}), "Mode": mode},
        }
        self._run(name, mode.get("Replicated", {}).get("Replicas", 0))

    def inspect_service(self, name: str) -> dict[str, Any]:
        if name not in self.by_name:
            raise docker.errors.NotFound("no such service")
        return self.by_name[name]

    def update_service(self, service_id: str, version: int, mode: Any, **kwargs: Any) -> None:
        [name] = [n for n, s in self.by_name.items() if s["ID"] == service_id]
        self.by_name[name]["Spec"]["Mode"] = mode
        self._run(name, mode["Replicated"]["Replicas"])

    def remove_service(self, name: str) -> None:
        self.by_name.pop(name)
        self.task_list = [t for t in self.task_list if t["ServiceName"] != name]

    def services(self, filters: dict[str, Any]) -> list[dict[str, Any]]:
        key, _, value = filters["label"].partition("=")
        return [s for s in self.by_name.values() if s["Spec"]["Labels"].get(key) == value]

    def tasks(self, filters: dict[str, Any]) -> list[dict[str, Any]]:
        found = self.task_list
        if "service" in filters:
            found = [t for t in found if t["ServiceName"] == filters["service"]]
        if "desired-state" in filters:
            found = [t for t in found if t["DesiredState"] == filters["desired-state"]]
        return found

    def _run(self, name: str, replicas: int) -> None:
        for task in self.tasks({"service": name}):
            task["DesiredState"] = task["Status"]["State"] = "shutdown"
        if replicas:
            self.task_list.append(
                {
                    "ID": f"task-{next(_ids)}",
                    "ServiceID": self.by_name[name]["ID"],
                    "ServiceName": name,
                    "DesiredState": "running",
                    "Status": {"State": "running", "Timestamp": "2026-12-04T08:00:00.5Z"},
                    "NetworksAttachments": [
                        {"Network": {"Spec": {"Name": NETWORK}}, "Addresses": ["10.0.9.7/24"]}
                    ],
                }
            )

    # nodes and pins
    def nodes(self, filters: Any = None) -> list[dict[str, Any]]:
        return [self.node]

    def inspect_node(self, node_id: str) -> dict[str, Any]:
        return self.node

    def inspect_config(self, name: str) -> dict[str, Any]:
        if name not in self.configs:
            raise docker.errors.NotFound("no such config")
        return self.configs[name]

    def create_config(self, name: str, data: bytes, labels: dict[str, str]) -> None:
        self.configs[name] = {"Spec": {"Labels": labels}}

    # personal secrets' payloads (none here: nothing was delivered)
    def secrets(self, filters: Any = None) -> list[dict[str, Any]]:
        return []

    # the shared overlay
    def networks(self, names: Any = None, filters: Any = None) -> list[dict[str, Any]]:
        if filters is not None:
            return []
        return [{"Name": n, "Driver": "overlay"} for n in self.network_names if n in names]


class FakeClient:
    def __init__(self) -> None:
        self.api = FakeManagerApi()


@pytest.fixture
def swarm(monkeypatch: pytest.MonkeyPatch) -> Any:
    config = Config({"ContainerManager": {"network": NETWORK, "connect_via": "ip"}})
    manager = SwarmContainerManager(config=config)
    client = FakeClient()
    monkeypatch.setattr(manager, "_docker", lambda: client)
    yield manager, client.api
    manager.close()


async def test_a_workspace_is_one_pinned_service_whose_states_follow_its_replicas(
    swarm: Any,
) -> None:
    manager, api = swarm
    workspace = Workspace.new("alice", "x", "", "")
    name = workspace.container_name
    await manager.create(workspace, "store-1", {"REPO_URL": ""})
    service = api.by_name[name]
    assert service["Spec"]["Labels"][NODE_LABEL] == "node-1"
    assert api.configs[workspace.volume_name + PIN_SUFFIX]["Spec"]["Labels"][NODE_LABEL] == "node-1"

    state = await manager.state(name)
    assert (state.status, state.ip_address) == ("running", "10.0.9.7")
    assert manager.known_running(name) is None  # no event stream on a swarm: always asked
    assert await manager.statuses("store-1", [name, "other"]) == {name: "running"}
    assert await manager.holding_names("store-1") == [name]
    assert await manager.connect_host(name, state) == "10.0.9.7"
    endpoint = await manager.terminal_endpoint(workspace, state)
    assert (endpoint.host, endpoint.port, endpoint.credential) == (
        "10.0.9.7", 7681, workspace.ttyd_credential,
    )  # fmt: skip

    await manager.stop(name)
    assert await manager.state(name) == ContainerState("exited", None)
    assert await manager.running_names("store-1") == []
    await manager.start(name)
    assert (await manager.state(name)).status == "running"
    assert await manager.workspace_ids("store-1") == {name: workspace.id}

    await manager.remove(name)
    assert await manager.state(name) is None


async def test_a_workspace_on_a_drained_node_is_a_node_unavailable(swarm: Any) -> None:
    manager, api = swarm
    workspace = Workspace.new("alice", "x", "", "")
    await manager.create(workspace, "store-1", {})
    await manager.stop(workspace.container_name)
    api.by_name[workspace.container_name]["Spec"]["Mode"] = {"Replicated": {"Replicas": 1}}
    api.node["Spec"]["Availability"] = "drain"
    with pytest.raises(NodeUnavailable, match=r"worker-1 .* drained"):
        await manager.start(workspace.container_name)


async def test_there_is_no_pause_and_nothing_restarts_on_a_swarm(swarm: Any) -> None:
    manager, _ = swarm
    workspace = Workspace.new("alice", "x", "", "")
    await manager.create(workspace, "store-1", {})
    name = workspace.container_name
    assert (await manager.wait_while_restarting(name)).status == "running"
    with pytest.raises(Exception, match="never paused"):
        await manager.unpause(name)
