"""Workspaces outlive the server: a real `jupyter server` process, stopped and started again."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
import requests

from jupyter_popebot_code.containers import STORE_LABEL

from .conftest import TEST_NETWORK


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ServerProcess:
    """`python -m jupyter_server` with options on the command line, as a user would run it."""

    def __init__(self, tmp_path: Path, image: str) -> None:
        self.tmp_path = tmp_path
        self.image = image
        self.db_path = tmp_path / "data" / "workspaces.sqlite"
        self.token = "persistence-test-token"
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        (self.tmp_path / "root").mkdir(exist_ok=True)
        env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(self.tmp_path / "runtime")}
        log = self.tmp_path / "server.log"
        with open(log, "ab") as log_file:
            self.process = subprocess.Popen(
                [
                    sys.executable, "-m", "jupyter_server", "--no-browser",
                    f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
                    f"--IdentityProvider.token={self.token}",
                    *(["--allow-root"] if os.geteuid() == 0 else []),
                    f"--ServerApp.root_dir={self.tmp_path / 'root'}",
                    f"--CodeWorkspacesApp.db_path={self.db_path}",
                    f"--ContainerManager.image={self.image}",
                    f"--ContainerManager.network={TEST_NETWORK}",
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=log_file,
            )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, log.read_text()
            try:
                if self.request("GET", "api/status").status_code == 200:
                    return
            except requests.ConnectionError:
                time.sleep(0.2)
        raise AssertionError("jupyter server did not start within 60 s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)
        self.process = None

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return requests.request(
            method,
            f"http://127.0.0.1:{self.port}/{path}",
            headers={"Authorization": f"token {self.token}"},
            timeout=60,
            **kwargs,
        )


@pytest.fixture
def server_process(
    tmp_path: Path, workspace_image: str, docker_client: docker.DockerClient
) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path, workspace_image)
    yield server
    server.stop()
    if server.db_path.exists():
        from jupyter_popebot_code.store import WorkspaceStore

        store = WorkspaceStore(str(server.db_path))
        label = f"{STORE_LABEL}={store.store_id}"
        store.close()
        for container in docker_client.containers.list(all=True, filters={"label": label}):
            container.remove(force=True)
        for volume in docker_client.volumes.list(filters={"label": label}):
            volume.remove(force=True)


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
