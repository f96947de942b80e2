"""Helpers of the preview tests: a small web app started inside a workspace, and a client."""

from __future__ import annotations

import io
import tarfile
import time
from pathlib import Path
from typing import Any

import docker

APP_SOURCE = Path(__file__).resolve().parent / "preview_app" / "app.js"
# Malformed HTTP on a raw socket (node raw.js PORT).
RAW_APP_SOURCE = APP_SOURCE.with_name("raw.js")
WORKSPACE_DIR = "/home/coder/workspace"


def start_app(
    docker_client: docker.DockerClient,
    container_name: str,
    port: int,
    host: str = "0.0.0.0",
    source: Path = APP_SOURCE,
) -> None:
    """Copy the app (app.js) into the container and run it with node, listening on host:port."""
    container = docker_client.containers.get(container_name)
    data = source.read_bytes()
    script = f"preview-{source.stem}.js"
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        info = tarfile.TarInfo(script)
        info.size = len(data)
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(data))
    # The root file system is read-only and /tmp a tmpfs the engine cannot copy into: the
    # workspace volume is the one place `docker cp` reaches.
    container.put_archive(WORKSPACE_DIR, archive.getvalue())
    container.exec_run(
        ["node", f"{WORKSPACE_DIR}/{script}", str(port), host], detach=True, user="coder"
    )
    probe = (
        "require('net').connect({{port: {port}, host: '{host}'}})"
        ".on('connect', () => process.exit(0)).on('error', () => process.exit(1))"
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        target = "127.0.0.1" if host in ("0.0.0.0", "127.0.0.1") else host
        code, _ = container.exec_run(["node", "-e", probe.format(port=port, host=target)])
        if code == 0:
            return
        time.sleep(0.2)
    raise AssertionError(f"the app did not listen on {host}:{port} within 30 s")


def node_echo_headers(body: Any) -> dict[str, str]:
    """The request headers the app saw, from its /headers answer."""
    headers: dict[str, str] = body["headers"]
    return headers
