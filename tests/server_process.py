"""A real `jupyter server` process with the extension, configured on the command line."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import requests

from jupyter_popebot_code.backends.docker.manager import STORE_LABEL
from jupyter_popebot_code.core.store import WorkspaceStore

from .conftest import (
    TEST_DISK_DIR,
    TEST_NETWORK,
    TEST_NETWORK_ARGS,
    remove_labelled,
    remove_test_disks,
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# Options of a multi-user server: Auth.js identities, with the test's token still accepted.
AUTHJS_OPTIONS = [
    "--ServerApp.identity_provider_class=jupyter_popebot_code.auth.authjs.AuthJSIdentityProvider",
    f"--AuthJSIdentityProvider.secret={secrets.token_urlsafe(32)}",
    "--AuthJSIdentityProvider.allow_token_auth=True",
]


class ServerProcess:
    """`python -m jupyter_server` with options on the command line, as a user would run it."""

    def __init__(self, tmp_path: Path, image: str) -> None:
        self.tmp_path = tmp_path
        self.image = image
        self.db_path = tmp_path / "data" / "workspaces.sqlite"
        self.token = "server-process-test-token"
        self.port = free_port()
        self.host = "127.0.0.1"
        # A command that runs the server somewhere else (e.g. inside a container's network).
        self.launcher: list[str] = []
        self.extra_args: list[str] = []
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.tmp_path / "server.log"

    def start(self) -> None:
        """Launch the server and wait until it answers."""
        self.launch()
        assert self.process is not None
        log = self.log_path
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, log.read_text()
            try:
                if self.request("GET", "api/status").status_code == 200:
                    return
            except requests.ConnectionError:
                time.sleep(0.2)
        raise AssertionError("jupyter server did not start within 60 s")

    def launch(self) -> None:
        """Run the server process, without waiting for it to answer."""
        (self.tmp_path / "root").mkdir(exist_ok=True)
        env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(self.tmp_path / "runtime")}
        log = self.log_path
        with open(log, "ab") as log_file:
            self.process = subprocess.Popen(
                [
                    *self.launcher,
                    sys.executable, "-m", "jupyter_server", "--no-browser",
                    f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
                    f"--IdentityProvider.token={self.token}",
                    *(["--allow-root"] if os.geteuid() == 0 else []),
                    f"--ServerApp.root_dir={self.tmp_path / 'root'}",
                    f"--CodeWorkspacesApp.db_path={self.db_path}",
                    f"--ContainerManager.image={self.image}",
                    f"--ContainerManager.network={TEST_NETWORK}",
                    *TEST_NETWORK_ARGS,
                    # A multi-user server limits disks by default: keep the test's images apart.
                    f"--ContainerManager.disk_dir={TEST_DISK_DIR}",
                    *self.extra_args,
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=log_file,
            )  # fmt: skip

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)
        self.process = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return requests.request(
            method,
            f"{self.url}{path}",
            headers={"Authorization": f"token {self.token}", **kwargs.pop("headers", {})},
            timeout=60,
            **kwargs,
        )


def run_and_clean_up(
    server: ServerProcess, docker_client: docker.DockerClient
) -> Iterator[ServerProcess]:
    """Yield the server; then stop it and remove every container and volume of its store."""
    yield server
    server.stop()
    if server.db_path.exists():
        store = WorkspaceStore(str(server.db_path))
        label = f"{STORE_LABEL}={store.store_id}"
        store.close()
        remove_labelled(docker_client, label)
        for network in docker_client.networks.list(filters={"label": label}):
            network.remove()
    remove_test_disks()
