"""A full disk or a limit says which in the REST answer (`reason`); nothing is left half-made.

Fast tier: the in-memory backend raises what the Docker backend raises when the engine answers
"no space left on device" (tests/unit/test_backends.py checks that translation); the store is a
real SQLite file whose writes are made to fail as a full disk makes them fail.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import docker.errors
import pytest
import requests

from jupyter_popebot_code.backends.base import ContainerError, DiskFull
from jupyter_popebot_code.backends.docker.engine import DockerEngine
from jupyter_popebot_code.backends.docker.manager import ContainerManager
from jupyter_popebot_code.backends.docker.volumes import WorkspaceVolumes
from jupyter_popebot_code.core.store import Workspace

from ..conftest import Api
from ..memory_containers import InMemoryContainerManager


async def test_a_full_docker_host_is_a_507_naming_that_disk(
    api: Api, containers: InMemoryContainerManager
) -> None:
    message = "The Docker host's disk is full: no workspace container can be made there."
    containers.fail_next("create_container", DiskFull("host", message))
    code, reply = await api.call("POST", body={"name": "x"})
    assert (code, reply["reason"], reply["message"]) == (507, "host_disk_full", message)
    assert await api.call("GET") == (200, {"workspaces": []})
    assert containers.volumes == {}


async def test_a_full_server_disk_is_a_507_and_the_container_goes_too(
    api: Api, app: Any, containers: InMemoryContainerManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(*args: Any) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(app.service.store, "insert", full)
    code, reply = await api.call("POST", body={"name": "x"})
    assert (code, reply["reason"]) == (507, "server_disk_full")
    assert "Jupyter server's disk is full" in reply["message"]
    assert containers.containers == {}
    assert containers.volumes == {}


async def test_other_database_errors_stay_errors(app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def locked(*args: Any) -> None:
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(app.service.store, "insert", locked)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        await app.service._db(app.service.store.insert, None)


@pytest.mark.parametrize(
    "server_settings",
    [{"CodeWorkspacesApp": {"max_running_workspaces_per_user": 1}}],
)
async def test_the_owners_quota_is_a_403_with_its_reason(api: Api) -> None:
    await api.create(name="first")
    code, reply = await api.call("POST", body={"name": "second"})
    assert (code, reply["reason"]) == (403, "owner_quota")
    assert "running workspaces" in reply["message"]


@pytest.mark.parametrize("server_settings", [{"CodeWorkspacesApp": {"max_running_workspaces": 1}}])
async def test_the_servers_capacity_is_a_429_with_its_reason(api: Api) -> None:
    await api.create(name="first")
    code, reply = await api.call("POST", body={"name": "second"})
    assert (code, reply["reason"]) == (429, "server_capacity")
    assert "max_running_workspaces = 1" in reply["message"]


async def test_other_refusals_keep_no_reason(
    api: Api, containers: InMemoryContainerManager
) -> None:
    containers.fail_next("create_container", ContainerError("Docker refused: no such image"))
    code, reply = await api.call("POST", body={"name": "x"})
    assert (code, reply["reason"]) == (500, None)


class _Api:
    """Docker's API surface that the engine seam and the volumes call, recording each call."""

    def __init__(self, volumes: dict[str, dict[str, Any]], refuse: str = "") -> None:
        self.volumes = volumes
        self.refuse = refuse
        self.inspected: list[str] = []

    def inspect_volume(self, name: str) -> dict[str, Any]:
        self.inspected.append(name)
        if name not in self.volumes:
            raise docker.errors.NotFound("no such volume")
        return self.volumes[name]

    def create_container(self, *args: Any, **kwargs: Any) -> None:
        response = requests.Response()
        response.status_code = 500
        raise docker.errors.APIError("500", response=response, explanation=self.refuse)


class _Volumes:
    def __init__(self, api: _Api) -> None:
        self._api = api

    def create(self, name: str, labels: dict[str, str], **options: Any) -> None:
        self._api.volumes[name] = {"Name": name, "Labels": labels}


class _Client:
    def __init__(self, api: _Api) -> None:
        self.api = api
        self.volumes = _Volumes(api)


def test_a_start_without_a_disk_image_asks_the_engine_once_per_volume() -> None:
    """prepare_start used to inspect the volume before every start, limited or not."""
    api = _Api({"plain": {"Name": "plain", "Labels": {}}})
    volumes = WorkspaceVolumes(ContainerManager())
    for _ in range(3):
        volumes.prepare_start(_Client(api), "plain")  # type: ignore[arg-type]
    assert api.inspected == ["plain"]


def test_a_volume_with_a_disk_image_is_mounted_before_every_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    labels = {
        "org.jupyter.popebot-code.disk-dir": "/disks",
        "org.jupyter.popebot-code.disk-size": str(1 << 30),
    }
    api = _Api({"limited": {"Name": "limited", "Labels": labels}})
    mounted: list[str] = []
    monkeypatch.setattr(
        "jupyter_popebot_code.backends.docker.disks.mount",
        lambda client, image, disk_dir, name, size: mounted.append(name),
    )
    volumes = WorkspaceVolumes(ContainerManager())
    for _ in range(2):
        volumes.prepare_start(_Client(api), "limited")  # type: ignore[arg-type]
    assert mounted == ["limited", "limited"]


def test_a_volume_made_again_with_a_disk_is_mounted_at_every_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What is remembered about a volume without a disk goes when the volume is made anew."""
    mounted: list[str] = []
    monkeypatch.setattr(
        "jupyter_popebot_code.backends.docker.disks.mount",
        lambda client, image, disk_dir, name, size: mounted.append(name),
    )
    workspace = Workspace.new("alice", "x", "", "")
    api = _Api({workspace.volume_name: {"Name": workspace.volume_name, "Labels": {}}})
    client: Any = _Client(api)
    volumes = WorkspaceVolumes(ContainerManager(disk_limit="1g"))
    volumes.prepare_start(client, workspace.volume_name)  # no disk: remembered
    del api.volumes[workspace.volume_name]  # `docker volume rm` behind the server's back
    assert volumes.ensure(client, workspace, {}) == (True, True)
    volumes.prepare_start(client, workspace.volume_name)
    assert mounted == [workspace.volume_name, workspace.volume_name]


def test_a_full_disk_dir_names_the_hosts_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    def full(*args: Any) -> None:
        raise ContainerError("The disk helper failed: mkfs.ext4: No space left on device")

    monkeypatch.setattr("jupyter_popebot_code.backends.docker.disks.mount", full)
    manager = ContainerManager(disk_limit="1g")
    workspace = Workspace.new("alice", "x", "", "")
    with pytest.raises(DiskFull, match=r"disk_dir") as raised:
        WorkspaceVolumes(manager).ensure(_Client(_Api({})), workspace, {})  # type: ignore[arg-type]
    assert raised.value.limit == "host"


@pytest.mark.parametrize(
    ("explanation", "error"),
    [
        ("write /var/lib/docker/...: no space left on device", DiskFull),
        ("Conflict: the name is in use", ContainerError),
    ],
)
async def test_the_engine_seam_names_a_full_docker_host(
    explanation: str, error: type[Exception], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = DockerEngine()
    monkeypatch.setattr(engine, "_docker", lambda: _Client(_Api({}, refuse=explanation)))
    try:
        with pytest.raises(error) as raised:
            await engine.run_with_client(lambda client: client.api.create_container())
        assert type(raised.value) is error
    finally:
        engine.close()
