"""Idle stop against the real engine and image: what counts as activity, and what a stop keeps."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import docker
import pytest

from jupyter_popebot_code.core.idle import check_interval
from jupyter_popebot_code.errors import CLOSE_IDLE_STOPPED

from .conftest import Api, wait_for
from .server_process import AUTHJS_OPTIONS, ServerProcess, run_and_clean_up
from .terminal_client import WsFetch, terminal

IDLE_TIMEOUT = 5.0
IDLE = {"CodeWorkspacesApp": {"idle_timeout": IDLE_TIMEOUT, "idle_check_interval": 0.5}}
# A container must stop within idle_timeout + one check + the stop itself; allow for a busy host.
STOP_WITHIN = IDLE_TIMEOUT + 20


def status_of(docker_client: docker.DockerClient, workspace: dict[str, Any]) -> str:
    container = docker_client.containers.get(workspace["container_name"])
    return str(container.status)


def iso_seconds(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def test_checks_are_frequent_enough() -> None:
    """A container stops within idle_timeout + 60 s whatever the configured interval."""
    assert check_interval(3600, 300) == 60
    assert check_interval(3600, 30) == 30
    assert check_interval(8, 30) == 2
    assert check_interval(1, 30) == 0.5


@pytest.mark.parametrize("server_settings", [IDLE])
async def test_an_unused_workspace_is_stopped_not_removed_and_starts_again(
    api: Api, docker_client: docker.DockerClient
) -> None:
    workspace = await api.create()
    container = docker_client.containers.get(workspace["container_name"])
    container.exec_run(["sh", "-c", "echo kept > $WORKSPACE_DIR/note.txt"], user="coder")
    started = time.monotonic()
    await wait_for(lambda: status_of(docker_client, workspace) == "exited", timeout=STOP_WITHIN)
    # Not before the timeout: the container's own start counts as activity.
    assert time.monotonic() - started >= IDLE_TIMEOUT - 2
    # Stopped, never removed: the container and its volume are still there.
    docker_client.volumes.get(workspace["container_name"])
    code, body = await api.call("GET", workspace["id"])
    assert (code, body["container"]["status"]) == (200, "exited")

    code, ensured = await api.call("POST", f"{workspace['id']}/ensure")
    assert (code, ensured["status"]) == (200, "started")
    container.reload()
    note = container.exec_run(["sh", "-c", "cat $WORKSPACE_DIR/note.txt"], user="coder")
    assert note.output == b"kept\n"


@pytest.mark.parametrize("server_settings", [IDLE])
async def test_unattended_output_keeps_a_workspace_running_and_updates_last_used(
    api: Api, jp_ws_fetch: WsFetch, docker_client: docker.DockerClient
) -> None:
    busy, quiet = await api.create("agent"), await api.create("prompt")
    # An "agent" printing while nobody watches, and a shell left at its prompt.
    async with terminal(jp_ws_fetch, busy["id"]) as term:
        await term.read_until("$ ")
        term.type("while true; do echo tick; sleep 1; done\r")
        await term.read_until("tick")
    async with terminal(jp_ws_fetch, quiet["id"]) as term:
        await term.read_until("$ ")
    detached_at = time.time()

    await wait_for(lambda: status_of(docker_client, quiet) == "exited", timeout=STOP_WITHIN)
    await asyncio.sleep(IDLE_TIMEOUT)
    assert status_of(docker_client, busy) == "running"
    # last_used_at follows the output seen while detached, not the last terminal frame.
    code, body = await api.call("GET", busy["id"])
    assert code == 200
    assert iso_seconds(body["last_used_at"]) > detached_at + IDLE_TIMEOUT - 2
    code, body = await api.call("GET", quiet["id"])
    assert iso_seconds(body["last_used_at"]) < detached_at + 2


@pytest.mark.parametrize("server_settings", [IDLE])
async def test_typing_keeps_a_workspace_running(
    api: Api, jp_ws_fetch: WsFetch, docker_client: docker.DockerClient
) -> None:
    workspace = await api.create()
    async with terminal(jp_ws_fetch, workspace["id"]) as term:
        await term.read_until("$ ")
        loop = asyncio.get_running_loop()
        until = loop.time() + IDLE_TIMEOUT * 3
        n = 0
        while loop.time() < until:
            # A key and a backspace: input that prints nothing new on the screen's last line.
            term.type(f"{n % 10}\x7f")
            n += 1
            await asyncio.sleep(0.5)
        assert status_of(docker_client, workspace) == "running"
        assert not term.closed


@pytest.mark.parametrize("server_settings", [IDLE])
async def test_an_idle_attached_terminal_is_closed_with_a_final_code(
    api: Api, jp_ws_fetch: WsFetch, docker_client: docker.DockerClient
) -> None:
    workspace = await api.create()
    async with terminal(jp_ws_fetch, workspace["id"]) as term:
        await term.read_until("$ ")
        code, reason = await term.wait_closed(timeout=STOP_WITHIN)
    assert code == CLOSE_IDLE_STOPPED
    assert "without activity" in (reason or "")
    await wait_for(lambda: status_of(docker_client, workspace) == "exited", timeout=20)


@pytest.mark.parametrize(
    "server_settings", [{"CodeWorkspacesApp": {"idle_timeout": 0, "idle_check_interval": 0.5}}]
)
async def test_zero_disables_idle_stop(
    api: Api, docker_client: docker.DockerClient, jp_serverapp: Any
) -> None:
    workspace = await api.create()
    await asyncio.sleep(3)
    assert status_of(docker_client, workspace) == "running"
    stopper = jp_serverapp.web_app.settings["jupyter_popebot_code"].idle_stopper
    assert stopper._task is None


@pytest.fixture
def server(
    tmp_path: Path, workspace_image: str, docker_client: docker.DockerClient
) -> Iterator[ServerProcess]:
    """A real `jupyter server` process, not yet started: each test gives its options."""
    yield from run_and_clean_up(ServerProcess(tmp_path, workspace_image), docker_client)


@pytest.mark.parametrize(
    ("options", "logged"),
    [
        pytest.param(
            AUTHJS_OPTIONS,
            "Idle stop after 3600 s without activity (the default on a multi-user server), "
            "checked every 30 s",
            id="authjs",
        ),
        pytest.param(
            [*AUTHJS_OPTIONS, "--CodeWorkspacesApp.owner_source=server"],
            "Idle stop after 3600 s without activity (the default on a multi-user server)",
            id="authjs-one-owner",
        ),
        pytest.param(
            [],
            "Idle stop is off (the default on a single-user server); "
            "CodeWorkspacesApp.idle_timeout turns it on",
            id="token-single-user",
        ),
        pytest.param(
            [*AUTHJS_OPTIONS, "--CodeWorkspacesApp.idle_timeout=0"],
            "Idle stop is off (CodeWorkspacesApp.idle_timeout)",
            id="authjs-turned-off",
        ),
        pytest.param(
            ["--CodeWorkspacesApp.idle_timeout=120"],
            "Idle stop after 120 s without activity (CodeWorkspacesApp.idle_timeout), "
            "checked every 30 s",
            id="token-turned-on",
        ),
    ],
)
def test_the_default_follows_the_kind_of_server_and_is_logged(
    server: ServerProcess, options: list[str], logged: str
) -> None:
    server.extra_args = options
    server.start()
    assert logged in server.log_path.read_text()
    # The server serves workspaces with it.
    created = server.request("POST", "api/code/workspaces", json={"name": "idle default"})
    assert created.status_code == 201, created.text
