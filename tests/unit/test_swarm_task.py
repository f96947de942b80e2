"""The Swarm task a workspace gets: its log rotation, and a disk limit refused; no Docker needed.

The task template is captured from `create_service`; running it is tested on a real swarm in
tests/test_swarm.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from traitlets.config import Config

from jupyter_popebot_code.backends.docker.options import SECRETS_MOUNT
from jupyter_popebot_code.backends.swarm.manager import SwarmContainerManager
from jupyter_popebot_code.backends.swarm.secrets import (
    CHUNK_BYTES,
    create_payload_secrets,
    install_job,
)
from jupyter_popebot_code.core.store import Workspace
from jupyter_popebot_code.errors import ContainerError


class FakeApi:
    def __init__(self) -> None:
        self.services: list[dict[str, Any]] = []

    def create_service(self, task_template: dict[str, Any], **kwargs: Any) -> None:
        self.services.append(task_template)


class FakeClient:
    def __init__(self) -> None:
        self.api = FakeApi()


def task_of(manager: SwarmContainerManager, owner: str = "alice") -> dict[str, Any]:
    """The task template of a new workspace, with the node and network steps stubbed out."""
    manager._pinned_node = lambda client, volume: "node-1"  # type: ignore[method-assign]
    manager._ensure_workspace_network = lambda *args: None  # type: ignore[method-assign]
    manager._pin = lambda *args: None  # type: ignore[method-assign]
    client = FakeClient()
    workspace = Workspace.new(owner, "Test", "", "")
    manager._create_sync(client, workspace, "store", {})  # type: ignore[arg-type]
    return client.api.services[0]


def manager(**options: Any) -> SwarmContainerManager:
    return SwarmContainerManager(config=Config({"ContainerManager": options}))


def test_the_task_log_is_rotated() -> None:
    task = task_of(manager(log_max_size="5m", log_max_files=2))
    assert task["LogDriver"] == {
        "Name": "json-file",
        "Options": {"max-size": "5m", "max-file": "2"},
    }


def test_no_log_cap_leaves_the_engines_default() -> None:
    assert "LogDriver" not in task_of(manager(log_max_size=""))


def test_a_disk_limit_is_refused_with_a_reason() -> None:
    with pytest.raises(ContainerError, match="disk_limit is not supported on Swarm"):
        task_of(manager(owner_disk_limit={"alice": "1g"}))
    assert "LogDriver" in task_of(manager(owner_disk_limit={"bob": "1g"}))


def test_personal_secrets_get_a_root_tmpfs_and_a_job_that_holds_no_value() -> None:
    swarm = manager()
    assert not any(m["Target"] == SECRETS_MOUNT for m in task_of(swarm)["ContainerSpec"]["Mounts"])
    assert swarm.enable_secret_files()
    mounts = {m["Target"]: m for m in task_of(swarm)["ContainerSpec"]["Mounts"]}
    assert mounts[SECRETS_MOUNT]["Type"] == "tmpfs"
    assert mounts[SECRETS_MOUNT]["TmpfsOptions"]["Mode"] == 0o700
    chunks = [("code-workspace-x.secrets.1.0", "id-0"), ("code-workspace-x.secrets.1.1", "id-1")]
    job = install_job("image", "node-1", "c0ffee", chunks)
    assert job["Placement"]["Constraints"] == ["node.id==node-1"]
    first, second = job["ContainerSpec"]["Secrets"]
    assert first["File"] == {"Name": "workspace-secrets.0", "UID": "0", "GID": "0", "Mode": 0o400}
    assert (first["SecretID"], second["SecretID"]) == ("id-0", "id-1")
    assert job["ContainerSpec"]["Command"][-2:] == [
        "/run/secrets/workspace-secrets.0",
        "/run/secrets/workspace-secrets.1",
    ]


class FakeSecrets:
    def __init__(self) -> None:
        self.made: dict[str, bytes] = {}

    def create_secret(self, name: str, data: bytes, labels: dict[str, str]) -> dict[str, str]:
        self.made[name] = data
        return {"ID": f"id-{len(self.made)}"}


def test_a_payload_over_a_swarm_secrets_size_goes_in_chunks() -> None:
    client = FakeClient()
    client.api = FakeSecrets()  # type: ignore[assignment]
    payload = bytes(range(256)) * 4000  # 1 MB: over Swarm's 500 KB per secret
    chunks = create_payload_secrets(client, "code-workspace-x", payload)  # type: ignore[arg-type]
    assert len(chunks) == 3
    made = client.api.made  # type: ignore[attr-defined]
    assert all(len(data) <= CHUNK_BYTES for data in made.values())
    assert b"".join(made[name] for name, _ in chunks) == payload
