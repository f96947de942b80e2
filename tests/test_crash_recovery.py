"""A server that died between creating a container and recording it leaves nothing behind."""

from __future__ import annotations

import contextlib
import getpass
import ipaddress
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from jupyter_popebot_code.backends.docker.manager import workspace_labels
from jupyter_popebot_code.core.store import Workspace, WorkspaceStore

from .conftest import TEST_NETWORK, TEST_POOL, Api, wait_for


@pytest.fixture
def crash_leftovers(
    tmp_path: Path, workspace_image: str, docker_client: docker.DockerClient
) -> Iterator[dict[str, str]]:
    """The store and containers a server killed mid-create leaves: one orphan, one recorded."""
    store = WorkspaceStore(str(tmp_path / "workspaces.sqlite"))
    recorded = Workspace.new(getpass.getuser(), "recorded", "", "")
    orphan = Workspace.new(getpass.getuser(), "orphan", "", "")
    store.insert(recorded)
    store_id = store.store_id
    store.close()
    # Create makes the workspace's own network first: a crash right after leaves it alone.
    pool = ipaddress.IPv4Network(TEST_POOL)
    alone = Workspace.new(getpass.getuser(), "network only", "", "")
    network = docker_client.networks.create(
        f"{alone.container_name}-net",
        internal=True,
        ipam=docker.types.IPAMConfig(
            pool_configs=[docker.types.IPAMPool(subnet=str(list(pool.subnets(new_prefix=28))[-1]))]
        ),
        labels=workspace_labels(alone, store_id),
    )
    for workspace in (recorded, orphan):
        # Create makes the volume first, so a crash leaves it behind too.
        docker_client.volumes.create(
            workspace.volume_name, labels=workspace_labels(workspace, store_id)
        )
        docker_client.containers.create(
            workspace_image,
            name=workspace.container_name,
            labels=workspace_labels(workspace, store_id),
            environment={"TTYD_CREDENTIAL": workspace.ttyd_credential},
            network=TEST_NETWORK,
        )
    names = {
        "recorded": str(recorded.container_name),
        "orphan": str(orphan.container_name),
        "network": str(network.name),
    }
    yield names
    with contextlib.suppress(docker.errors.NotFound):
        network.remove()
    for name in names.values():
        with contextlib.suppress(docker.errors.NotFound):
            docker_client.containers.get(name).remove(force=True)
        with contextlib.suppress(docker.errors.NotFound):
            docker_client.volumes.get(name).remove(force=True)


@pytest.fixture
def server_settings(crash_leftovers: dict[str, str]) -> dict[str, Any]:
    return {}


async def test_a_container_without_a_record_is_removed_at_start(
    crash_leftovers: dict[str, str], api: Api, docker_client: docker.DockerClient
) -> None:
    def orphan_gone() -> bool:
        return not docker_client.containers.list(
            all=True, filters={"name": crash_leftovers["orphan"]}
        )

    await wait_for(orphan_gone, timeout=30)
    assert docker_client.containers.get(crash_leftovers["recorded"]).status == "created"
    # Volumes are named like their containers: the orphan's goes, the recorded one's stays.
    await wait_for(
        lambda: not docker_client.volumes.list(filters={"name": crash_leftovers["orphan"]})
    )
    assert docker_client.volumes.get(crash_leftovers["recorded"])
    await wait_for(lambda: not docker_client.networks.list(names=[crash_leftovers["network"]]))
    code, listed = await api.call("GET")
    assert (code, [w["name"] for w in listed["workspaces"]]) == (200, ["recorded"])


async def test_a_workspace_made_on_the_shared_network_moves_to_its_own_when_started(
    crash_leftovers: dict[str, str], api: Api, docker_client: docker.DockerClient
) -> None:
    """Containers made before networks per workspace run on; the next start moves them."""
    name = crash_leftovers["recorded"]
    assert list(docker_client.containers.get(name).attrs["NetworkSettings"]["Networks"]) == [
        TEST_NETWORK
    ]
    workspace_id = docker_client.containers.get(name).labels[
        "org.jupyter.popebot-code.workspace-id"
    ]
    code, reply = await api.call("POST", f"{workspace_id}/ensure")
    assert (code, reply["status"]) == (200, "started"), reply
    container = docker_client.containers.get(name)
    assert list(container.attrs["NetworkSettings"]["Networks"]) == [f"{name}-net"]
    network = docker_client.networks.get(f"{name}-net")
    assert network.attrs["Labels"]["org.jupyter.popebot-code.workspace-id"] == workspace_id
    assert (await api.call("DELETE", workspace_id))[0] == 204
    assert not [
        n for n in docker_client.networks.list(names=[network.name]) if n.name == network.name
    ]
