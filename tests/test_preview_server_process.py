"""Previews through a real `jupyter server` process: bounded memory, and URLs that outlive it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from .preview_client import start_app
from .server_process import ServerProcess, run_and_clean_up

APP_PORT = 8080
MIB = 1024 * 1024
DOWNLOAD_MIB = 100
# The server's memory may grow by this much while 100 MiB pass through it.
RSS_GROWTH_LIMIT = 40 * MIB


@pytest.fixture
def server_process(
    tmp_path: Path, workspace_image: str, docker_client: docker.DockerClient
) -> Iterator[ServerProcess]:
    yield from run_and_clean_up(ServerProcess(tmp_path, workspace_image), docker_client)


def rss(server: ServerProcess) -> int:
    """The server process's resident memory in bytes."""
    assert server.process is not None
    for line in Path(f"/proc/{server.process.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def app_preview(server: ServerProcess, docker_client: docker.DockerClient) -> str:
    """A workspace with the test app on APP_PORT; the URL of its preview."""
    created = server.request("POST", "api/code/workspaces", json={"name": "preview"})
    assert created.status_code == 201, created.text
    workspace: dict[str, Any] = created.json()
    start_app(docker_client, workspace["container_name"], APP_PORT)
    listed = server.request("GET", f"api/code/workspaces/{workspace['id']}/ports").json()
    url: str = next(p["url"] for p in listed["ports"] if p["port"] == APP_PORT)
    return url


def test_a_large_download_streams_in_bounded_memory_and_waits_for_a_slow_reader(
    server_process: ServerProcess, docker_client: docker.DockerClient
) -> None:
    server_process.start()
    url = app_preview(server_process, docker_client)
    for _ in range(3):  # warm up every code path before the baseline
        assert server_process.request("GET", url[1:] + "big?mb=2").status_code == 200
    baseline = rss(server_process)

    # A fast reader: 100 MiB arrive whole while the server's memory stays put.
    peak, received = baseline, 0
    with server_process.request("GET", url[1:] + f"big?mb={DOWNLOAD_MIB}", stream=True) as reply:
        assert reply.status_code == 200
        assert reply.headers["Content-Length"] == str(DOWNLOAD_MIB * MIB)
        for chunk in reply.iter_content(MIB):
            received += len(chunk)
            peak = max(peak, rss(server_process))
    assert received == DOWNLOAD_MIB * MIB
    assert peak - baseline < RSS_GROWTH_LIMIT, f"grew {(peak - baseline) / MIB:.1f} MiB"

    # A reader that stops: the app is held back (its writes wait), the server holds no more.
    def app_sent() -> int:
        progress = server_process.request("GET", url[1:] + "progress")
        return int(progress.json()["sent"])

    with server_process.request("GET", url[1:] + f"big?mb={DOWNLOAD_MIB}", stream=True) as reply:
        first = reply.raw.read(5 * MIB)
        assert len(first) == 5 * MIB
        previous, deadline = -1, time.monotonic() + 30
        while time.monotonic() < deadline:
            time.sleep(1.0)
            sent = app_sent()
            if sent == previous:
                break
            previous = sent
        else:
            raise AssertionError("the app kept sending to a reader that stopped")
        # Kernel socket buffers on both legs plus PreviewProxy.buffer_limit, nowhere near 100.
        assert sent < 60 * MIB, f"the app got {sent / MIB:.1f} MiB out to a stalled reader"
        assert rss(server_process) - baseline < RSS_GROWTH_LIMIT
        rest = 0
        while chunk := reply.raw.read(MIB):
            rest += len(chunk)
    assert len(first) + rest == DOWNLOAD_MIB * MIB


def test_a_preview_url_works_again_after_a_server_restart(
    server_process: ServerProcess, docker_client: docker.DockerClient
) -> None:
    server_process.start()
    url = app_preview(server_process, docker_client)
    assert b"preview works" in server_process.request("GET", url[1:]).content
    server_process.stop()
    server_process.start()
    # The key is an HMAC of the cookie secret, which the server keeps in its runtime dir.
    page = server_process.request("GET", url[1:])
    assert page.status_code == 200
    assert b"preview works" in page.content
