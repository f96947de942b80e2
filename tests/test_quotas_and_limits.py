"""Nobody exhausts the host: quotas per owner, container limits, terminal size, connection caps."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from jupyter_popebot_code.backends.docker.manager import STORE_LABEL
from jupyter_popebot_code.errors import (
    CLOSE_POLICY_VIOLATION,
    CLOSE_WORKSPACE_STOPPED,
    STOPPED_REASON,
)

from .conftest import Api, HeaderIdentityProvider
from .server_process import ServerProcess, run_and_clean_up
from .terminal_client import WsFetch, terminal

MULTI_USER = {"ServerApp": {"identity_provider_class": HeaderIdentityProvider}}


def store_containers(docker_client: docker.DockerClient, service: Any) -> list[Any]:
    label = f"{STORE_LABEL}={service.store.store_id}"
    return docker_client.containers.list(all=True, filters={"label": label})


@pytest.mark.parametrize(
    "server_settings",
    [{**MULTI_USER, "CodeWorkspacesApp": {"max_workspaces_per_user": 2}}],
)
async def test_one_owner_cannot_create_more_than_the_quota(
    api: Api, service: Any, docker_client: docker.DockerClient
) -> None:
    alice, bob = api.as_user("alice"), api.as_user("bob")
    await alice.create(name="one")
    await alice.create(name="two")
    code, reply = await alice.call("POST", body={"name": "three"})
    assert code == 403
    assert "already have 2 workspaces" in reply["message"]
    # Nothing half-made, and another owner is not held back by Alice's quota.
    assert len(store_containers(docker_client, service)) == 2
    assert [w["name"] for w in (await alice.call("GET"))[1]["workspaces"]] == ["two", "one"]
    await bob.create(name="bob's")


@pytest.mark.parametrize(
    "server_settings",
    [{**MULTI_USER, "CodeWorkspacesApp": {"max_running_workspaces_per_user": 1}}],
)
async def test_one_owner_runs_at_most_the_quota_and_stopping_frees_a_place(
    api: Api, service: Any, docker_client: docker.DockerClient
) -> None:
    alice = api.as_user("alice")
    first = await alice.create(name="first")
    code, reply = await alice.call("POST", body={"name": "second"})
    assert code == 403
    assert "already have 1 running workspaces" in reply["message"]
    assert len(store_containers(docker_client, service)) == 1

    assert await alice.call("POST", f"{first['id']}/stop") == (200, {"status": "stopped"})
    assert (await alice.call("GET", first["id"]))[1]["container"]["status"] == "exited"
    second = await alice.create(name="second")
    # Starting the first again would make two running.
    code, reply = await alice.call("POST", f"{first['id']}/ensure")
    assert code == 403
    assert "Stop or delete one first" in reply["message"]
    assert (await alice.call("POST", f"{second['id']}/stop"))[0] == 200
    assert await alice.call("POST", f"{first['id']}/ensure") == (
        200,
        {"status": "started", "message": "The container was stopped and has been started."},
    )


@pytest.mark.parametrize(
    "server_settings",
    [{**MULTI_USER, "CodeWorkspacesApp": {"max_running_workspaces_per_user": 1}}],
)
async def test_concurrent_creates_cannot_race_past_the_running_quota(
    api: Api, service: Any, docker_client: docker.DockerClient
) -> None:
    alice = api.as_user("alice")
    answers = await asyncio.gather(*(alice.call("POST", body={"name": f"w{n}"}) for n in range(4)))
    assert sorted(code for code, _ in answers) == [201, 403, 403, 403]
    assert len(store_containers(docker_client, service)) == 1


def server_cap(n: int) -> dict[str, Any]:
    return {**MULTI_USER, "CodeWorkspacesApp": {"max_running_workspaces": n}}


def refused_by_the_cap(answer: tuple[int, Any], cap: int) -> bool:
    code, reply = answer
    return code == 429 and f"(max_running_workspaces = {cap})" in reply["message"]


def holding(docker_client: docker.DockerClient, service: Any) -> list[str]:
    """The store's containers that hold memory (running, paused, restarting)."""
    containers = store_containers(docker_client, service)
    return [c.name for c in containers if c.status in ("running", "paused", "restarting")]


@pytest.mark.parametrize("server_settings", [server_cap(2)])
async def test_the_server_wide_cap_counts_every_owner_and_answers_429(
    api: Api, service: Any, docker_client: docker.DockerClient
) -> None:
    alice, bob, carol = api.as_user("alice"), api.as_user("bob"), api.as_user("carol")
    first = await alice.create(name="alice's")
    await bob.create(name="bob's")
    for who in (carol, alice):  # within their own quotas, but the server is full
        answer = await who.call("POST", body={"name": "one too many"})
        assert refused_by_the_cap(answer, 2), answer
        assert answer[1]["message"].startswith("This server already runs 2 workspaces")
    assert len(store_containers(docker_client, service)) == 2  # nothing half-made

    assert (await alice.call("POST", f"{first['id']}/stop"))[0] == 200
    await carol.create(name="carol's")
    # Starting alice's again would make three.
    assert refused_by_the_cap(await alice.call("POST", f"{first['id']}/ensure"), 2)
    assert (await alice.call("GET", first["id"]))[1]["container"]["status"] == "exited"
    assert len(holding(docker_client, service)) == 2


@pytest.mark.parametrize("server_settings", [server_cap(2)])
async def test_concurrent_creates_and_ensures_cannot_race_past_the_server_wide_cap(
    api: Api, service: Any, docker_client: docker.DockerClient
) -> None:
    stopped = []
    for owner in ("alice", "bob"):
        workspace = await api.as_user(owner).create(name=f"{owner}'s")
        assert (await api.as_user(owner).call("POST", f"{workspace['id']}/stop"))[0] == 200
        stopped.append((owner, workspace["id"]))
    # Five owners at once (no owner's own lock orders them): two ensures and three creates.
    answers = await asyncio.gather(
        *(api.as_user(owner).call("POST", f"{ws_id}/ensure") for owner, ws_id in stopped),
        *(api.as_user(owner).call("POST", body={"name": owner}) for owner in ("c", "d", "e")),
    )
    admitted = [answer for answer in answers if answer[0] in (200, 201)]
    assert len(admitted) == 2, answers
    assert all(refused_by_the_cap(a, 2) for a in answers if a not in admitted), answers
    assert len(holding(docker_client, service)) == 2


class TestSizedToTheHost:
    """Without max_running_workspaces the cap follows `docker info` and the overcommit factors."""

    @pytest.fixture(params=["cpu", "memory"])
    def server_settings(
        self, request: pytest.FixtureRequest, docker_client: docker.DockerClient
    ) -> dict[str, Any]:
        info = docker_client.info()
        if request.param == "cpu":
            # Half the host's CPUs each, no overcommit, memory left out: 2 fit.
            limits = {"cpu_limit": info["NCPU"] / 2, "mem_limit": "0"}
            factors = {"cpu_overcommit": 1.0}
        else:
            # A quarter of its memory each, half the memory promised: 2 fit.
            limits = {"cpu_limit": 0, "mem_limit": str(info["MemTotal"] // 4)}
            factors = {"memory_overcommit": 0.5}
        return {
            **MULTI_USER,
            "CodeWorkspacesApp": factors,
            "ContainerManager": limits,  # merged into the suite's image and network
        }

    async def test_the_host_sized_cap_refuses_the_third(
        self, api: Api, service: Any, docker_client: docker.DockerClient
    ) -> None:
        alice = api.as_user("alice")
        await alice.create(name="one")
        await api.as_user("bob").create(name="two")
        assert refused_by_the_cap(await alice.call("POST", body={"name": "three"}), 2)
        assert len(store_containers(docker_client, service)) == 2


@pytest.fixture
def default_server(
    tmp_path: Path, workspace_image: str, docker_client: docker.DockerClient
) -> Iterator[ServerProcess]:
    yield from run_and_clean_up(ServerProcess(tmp_path, workspace_image), docker_client)


def test_a_default_server_logs_the_cap_it_sized_to_the_host(
    default_server: ServerProcess, docker_client: docker.DockerClient
) -> None:
    """Defaults: 1 CPU (4 per host CPU) and 2 GiB (1 per GiB of the host) per workspace."""
    info = docker_client.info()
    by_cpu, by_memory = info["NCPU"] * 4 / 1, info["MemTotal"] / 2**31
    expected = max(1, math.floor(min(by_cpu, by_memory)))
    reason = "CPUs * cpu_overcommit 4 / cpu_limit 1" if by_cpu <= by_memory else "mem_limit 2 GiB"
    default_server.start()
    logged = f"Running workspaces: at most {expected} at once, all owners together ("
    deadline = time.monotonic() + 60  # logged once `docker info` answers, just after the start
    while logged not in default_server.log_path.read_text():
        assert time.monotonic() < deadline, default_server.log_path.read_text()[-3000:]
        time.sleep(0.2)
    line = next(x for x in default_server.log_path.read_text().splitlines() if logged in x)
    assert reason in line, line


@pytest.mark.parametrize("server_settings", [MULTI_USER])
async def test_stop_is_only_for_the_owner_and_keeps_the_files(
    api: Api, docker_client: docker.DockerClient
) -> None:
    alice = api.as_user("alice")
    workspace = await alice.create()
    stop = f"{workspace['id']}/stop"
    container = docker_client.containers.get(workspace["container_name"])
    container.exec_run(["bash", "-c", "echo kept > /home/coder/workspace/notes.txt"], user="coder")
    assert (await api.as_user("mallory").call("POST", stop))[0] == 404
    assert (await alice.call("GET", workspace["id"]))[1]["container"]["status"] == "running"
    assert await alice.call("POST", stop) == (200, {"status": "stopped"})
    assert await alice.call("POST", stop) == (200, {"status": "stopped"})
    code, reply = await alice.call("POST", f"{workspace['id']}/ensure")
    assert (code, reply["status"]) == (200, "started")
    result = container.exec_run(["cat", "/home/coder/workspace/notes.txt"])
    assert result.output.decode().strip() == "kept"


async def test_containers_get_safe_limits_by_default(
    api: Api, docker_client: docker.DockerClient
) -> None:
    workspace = await api.create()
    host = docker_client.containers.get(workspace["container_name"]).attrs["HostConfig"]
    assert host["Memory"] == 2 * 1024**3
    assert host["MemorySwap"] == 2 * 1024**3  # no swap beyond the memory limit
    assert host["NanoCpus"] == 1_000_000_000
    assert host["PidsLimit"] == 512


@pytest.mark.parametrize(
    "server_settings",
    [{"ContainerManager": {"mem_limit": "0", "cpu_limit": 0, "pids_limit": 0}}],
)
async def test_limits_can_be_turned_off(api: Api, docker_client: docker.DockerClient) -> None:
    workspace = await api.create()
    host = docker_client.containers.get(workspace["container_name"]).attrs["HostConfig"]
    assert (host["Memory"], host["NanoCpus"]) == (0, 0)
    assert host["PidsLimit"] in (None, 0, -1)


async def session_size(docker_client: docker.DockerClient, workspace: dict[str, Any]) -> str:
    """The terminal size the workspace's session keeper holds (`size COLSxROWS`)."""
    container = docker_client.containers.get(workspace["container_name"])
    result = await asyncio.to_thread(
        container.exec_run, ["workspace-session", "status"], user="coder"
    )
    sizes = [
        line.split()[1] for line in result.output.decode().splitlines() if line.startswith("size ")
    ]
    return sizes[0] if sizes else ""


@pytest.mark.parametrize(
    "server_settings", [{"TerminalRelay": {"max_columns": 300, "max_rows": 100}}]
)
async def test_terminal_size_is_clamped_in_the_handshake_and_in_resizes(
    api: Api, jp_ws_fetch: WsFetch, docker_client: docker.DockerClient
) -> None:
    workspace = await api.create()
    async with terminal(jp_ws_fetch, workspace["id"], handshake=False) as term:
        term.handshake(columns=10_000, rows=10_000)
        term.type('echo "size=$(stty size)"\r')
        await term.read_until("size=100 300")
        term.resize(50_000, 80_000)
        term.type('echo "again=$(stty size)"\r')
        await term.read_until("again=100 300")
        assert await session_size(docker_client, workspace) == "300x100"


async def test_a_resize_that_is_not_json_closes_the_terminal_with_a_reason(
    api: Api, jp_ws_fetch: WsFetch
) -> None:
    workspace = await api.create()
    async with terminal(jp_ws_fetch, workspace["id"]) as term:
        term.type("echo ready\r")
        await term.read_until("ready")
        term.ws.write_message(b'1{"columns": "wide", "rows": 1}', binary=True)
        code, reason = await term.wait_closed()
    assert code == 1007
    assert "columns is not an integer" in reason


@pytest.mark.parametrize(
    "server_settings",
    [{**MULTI_USER, "TerminalRelay": {"max_connections_per_workspace": 2}}],
)
async def test_connections_per_workspace_are_capped_with_a_reason(
    api: Api, jp_ws_fetch: WsFetch
) -> None:
    alice = api.as_user("alice")
    workspace = await alice.create()
    async with (
        terminal(jp_ws_fetch, workspace["id"], user="alice") as one,
        terminal(jp_ws_fetch, workspace["id"], user="alice") as two,
    ):
        for term in (one, two):
            term.type("echo open\r")
            await term.read_until("open")
        async with terminal(jp_ws_fetch, workspace["id"], user="alice") as third:
            code, reason = await third.wait_closed()
        assert code == CLOSE_POLICY_VIOLATION
        assert "limit 2" in reason
        one.type("echo still-here\r")
        await one.read_until("still-here")
    # Closed ones free their places.
    async with terminal(jp_ws_fetch, workspace["id"], user="alice") as again:
        again.type("echo back\r")
        await again.read_until("back")


@pytest.mark.parametrize(
    "server_settings",
    [{**MULTI_USER, "TerminalRelay": {"max_connections_per_user": 1}}],
)
async def test_connections_per_user_are_capped_across_workspaces(
    api: Api, jp_ws_fetch: WsFetch
) -> None:
    alice, bob = api.as_user("alice"), api.as_user("bob")
    first, second = await alice.create(), await alice.create()
    theirs = await bob.create()
    async with terminal(jp_ws_fetch, first["id"], user="alice") as one:
        one.type("echo open\r")
        await one.read_until("open")
        async with terminal(jp_ws_fetch, second["id"], user="alice") as refused:
            code, reason = await refused.wait_closed()
        assert (code, "you already have 1 terminals open" in reason) == (
            CLOSE_POLICY_VIOLATION,
            True,
        )
        async with terminal(jp_ws_fetch, theirs["id"], user="bob") as bobs:
            bobs.type("echo bob\r")
            await bobs.read_until("bob")


async def test_stopping_closes_the_workspaces_terminals_for_good(
    api: Api, jp_ws_fetch: WsFetch, docker_client: docker.DockerClient
) -> None:
    """A final close code: a browser that reconnected by itself would start the workspace again."""
    workspace = await api.create()
    async with terminal(jp_ws_fetch, workspace["id"]) as term:
        term.type("echo before-stop\r")
        await term.read_until("before-stop")
        assert await api.call("POST", f"{workspace['id']}/stop") == (200, {"status": "stopped"})
        code, reason = await term.wait_closed()
    assert (code, reason) == (CLOSE_WORKSPACE_STOPPED, STOPPED_REASON)
    assert docker_client.containers.get(workspace["container_name"]).status == "exited"
