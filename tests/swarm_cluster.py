"""The swarm tests' cluster and server, made by the project's scripts as an operator makes them.

scripts/swarm-cluster.sh makes a swarm of its own (a manager and two workers, Docker-in-Docker,
named after the test network, so runs of other checkouts never meet) and the registry.
scripts/swarm-server.sh deploys the server image on the manager; the tests talk to it through its
published port, as users do, and to the manager's engine through its socket.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests
from docker.models.containers import Container

from jupyter_popebot_code.backends.docker.manager import MANAGED_BY_LABEL

from .conftest import ROOT, TEST_NETWORK

CLUSTER_SCRIPT = ROOT / "scripts" / "swarm-cluster.sh"
SERVER_SCRIPT = ROOT / "scripts" / "swarm-server.sh"
PREFIX = f"{TEST_NETWORK}-swarm"
WORKER_PREFIX = f"{PREFIX}-node-"
SERVER_NAME = "jupyter-popebot-code-server"
STORE_VOLUME = "jupyter-popebot-code-store"
SERVER_PORT = 8888
# The server image the project builds (scripts/build-server-image.sh; built when missing).
SERVER_BASE = os.environ.get("POPEBOT_TEST_SERVER_IMAGE", "jupyter-popebot-code-server:latest")


def run_script(script: Path, *args: str, env: dict[str, str], timeout: float = 1800) -> str:
    done = subprocess.run(
        ["bash", str(script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **env},
        check=False,
    )
    assert done.returncode == 0, f"{script.name} {args}: {done.stderr[-4000:]}"
    return done.stdout


def server_image(client: docker.DockerClient) -> str:
    """The project's server image with this checkout's Python package over the installed one.

    The base image is built from a wheel (Node.js builds its JupyterLab extension); the package's
    Python code is laid over it, so the tests run the code under test without a Node.js build.
    """
    try:
        base = client.images.get(SERVER_BASE)
    except docker.errors.ImageNotFound:
        # The wheel is built by this Python (its pip, and jlpm beside it for the extension).
        bin_dir = str(Path(sys.executable).parent)
        run_script(
            ROOT / "scripts" / "build-server-image.sh",
            env={
                "SERVER_IMAGE": SERVER_BASE,
                "PYTHON": sys.executable,
                "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}",
            },
            timeout=3600,
        )
        base = client.images.get(SERVER_BASE)
    source = ROOT / "jupyter_popebot_code"
    skip = shutil.ignore_patterns("__pycache__", "labextension")
    digest = hashlib.sha256(str(base.id).encode())
    for path in sorted(source.rglob("*")):
        parts = path.relative_to(source).parts
        if path.is_file() and "__pycache__" not in parts and parts[0] != "labextension":
            digest.update(str(path.relative_to(source)).encode() + b"\0" + path.read_bytes())
    tag = f"jupyter-popebot-code-server:test-{digest.hexdigest()[:12]}"
    with contextlib.suppress(docker.errors.ImageNotFound):
        client.images.get(tag)
        return tag
    with tempfile.TemporaryDirectory() as context:
        shutil.copytree(source, Path(context) / "src", ignore=skip)
        (Path(context) / "Dockerfile").write_text(
            f"FROM {SERVER_BASE}\n"
            "COPY src /tmp/src\n"
            "RUN cp -a /tmp/src/. \"$(python3 -c 'import jupyter_popebot_code as p, os; "
            "print(os.path.dirname(p.__file__))')\"/ && rm -rf /tmp/src\n"
        )
        client.images.build(path=context, tag=tag, rm=True, network_mode="none")
    return tag


class DeployedServer:
    """The server container scripts/swarm-server.sh runs on the manager, reached as users do."""

    def __init__(self, settings: dict[str, str], extra_args: list[str]) -> None:
        self.settings = settings
        self.extra_args = extra_args
        self.host = settings["SWARM_MANAGER_ADDRESS"]
        self.port = SERVER_PORT
        self.token = ""

    @property
    def env(self) -> dict[str, str]:
        return {
            "DOCKER_HOST": self.settings["SWARM_MANAGER_HOST"],
            "SERVER_IMAGE": self.settings["SWARM_SERVER_IMAGE"],
            "WORKSPACE_IMAGE": self.settings["SWARM_REGISTRY_IMAGE"],
            "FIREWALL_IMAGE": self.settings["SWARM_FIREWALL_IMAGE"],
            "REGISTRY_ADDRESS": self.settings["SWARM_REGISTRY_ADDRESS"],
            "SERVER_PORT": str(SERVER_PORT),
        }

    def up(self) -> None:
        """Deploy (or upgrade: replace the container, keep the store) and wait until healthy."""
        run_script(SERVER_SCRIPT, "up", "--", *self.extra_args, env=self.env, timeout=600)
        self.token = run_script(SERVER_SCRIPT, "token", env=self.env, timeout=60).strip()

    def down(self) -> None:
        run_script(SERVER_SCRIPT, "down", env=self.env, timeout=120)

    def log(self) -> str:
        done = subprocess.run(
            ["docker", "logs", SERVER_NAME],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "DOCKER_HOST": self.settings["SWARM_MANAGER_HOST"]},
            check=False,
        )
        return done.stdout + done.stderr

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


def server_container(manager: docker.DockerClient) -> Container:
    return manager.containers.get(SERVER_NAME)


def on_worker(hostname: str, *command: str) -> subprocess.CompletedProcess[str]:
    """A docker command on a worker's own engine."""
    return subprocess.run(
        ["docker", "exec", hostname, "docker", *command],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def workers(client: docker.DockerClient) -> list[str]:
    return sorted(c.name for c in client.containers.list(filters={"name": WORKER_PREFIX}))


def worker_volumes(client: docker.DockerClient, label: str = MANAGED_BY_LABEL) -> dict[str, str]:
    """The workspace volumes left on the workers: {volume: worker}."""
    found = {}
    for worker in workers(client):
        listed = on_worker(worker, "volume", "ls", "-q", "--filter", f"label={label}")
        assert listed.returncode == 0, listed.stderr
        found.update(dict.fromkeys(listed.stdout.split(), worker))
    return found


def remove_everything(
    manager: docker.DockerClient, client: docker.DockerClient, label: str
) -> None:
    """Every service, pin, network of the label on the manager, then its volumes on the workers.

    A removed service's tasks hold their volume until the worker has stopped and removed their
    containers: the volumes are removed again until none is left (bounded).
    """
    for service in manager.services.list(filters={"label": label}):
        with contextlib.suppress(docker.errors.NotFound):
            service.remove()
    for config in manager.configs.list(filters={"label": label}):
        with contextlib.suppress(docker.errors.NotFound):
            config.remove()
    for network in manager.networks.list(filters={"label": label}):
        for attached in manager.api.inspect_network(network.id).get("Containers") or {}:
            # The server's container, still on the networks of the workspaces that ran.
            with contextlib.suppress(docker.errors.APIError):
                manager.api.disconnect_container_from_network(attached, network.id, force=True)
        for _ in range(120):  # the removed services' tasks let go of it within seconds
            try:
                network.remove()
                break
            except docker.errors.NotFound:
                break
            except docker.errors.APIError:
                time.sleep(0.5)
    deadline = time.monotonic() + 120
    while True:
        left = worker_volumes(client, label)
        if not left:
            return
        for volume, worker in left.items():
            # In use: its task's container is still being removed; the next round gets it.
            on_worker(worker, "volume", "rm", "-f", volume)
        if time.monotonic() > deadline:
            return  # what is left is reported by the module's final check
        time.sleep(1)
