"""Workspaces outlive the server: a real `jupyter server` process, stopped and started again."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import pytest
import requests

from .server_process import ServerProcess, run_and_clean_up


@pytest.fixture
def server_process(
    tmp_path: Path, workspace_image: str, docker_client: docker.DockerClient
) -> Iterator[ServerProcess]:
    yield from run_and_clean_up(ServerProcess(tmp_path, workspace_image), docker_client)


def test_a_restarted_server_keeps_every_workspace(server_process: ServerProcess) -> None:
    server_process.start()
    api: Callable[..., requests.Response] = server_process.request
    created = [
        api("POST", "api/code/workspaces", json={"name": f"ws {n}"}).json() for n in range(3)
    ]
    assert api("POST", f"api/code/workspaces/{created[0]['id']}/star").status_code == 200
    renamed = api("PATCH", f"api/code/workspaces/{created[1]['id']}", json={"name": "renamed"})
    assert renamed.status_code == 200
    before = api("GET", "api/code/workspaces").json()["workspaces"]
    assert len(before) == 3

    server_process.stop()
    server_process.start()

    after = api("GET", "api/code/workspaces").json()["workspaces"]
    assert after == before
    for workspace in after:
        reply = api("POST", f"api/code/workspaces/{workspace['id']}/ensure")
        assert reply.json() == {"status": "running"}
