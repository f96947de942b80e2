"""The REST API against a real Docker engine and the real workspace image."""

from __future__ import annotations

import asyncio
import getpass
import json
from typing import Any

import docker
import pytest
from jupyter_server.auth.identity import User

from jupyter_popebot_code.backends.docker.manager import (
    MANAGED_BY,
    MANAGED_BY_LABEL,
    OWNER_LABEL,
    STORE_LABEL,
    WORKSPACE_LABEL,
)
from jupyter_popebot_code.core.store import Workspace

from .conftest import TEST_NETWORK, Api, HeaderIdentityProvider, ensure_internal_network, wait_for
from .terminal_client import refusal, relay_fetch


def containers_of(client: docker.DockerClient, service: Any) -> list[Any]:
    label = f"{STORE_LABEL}={service.store.store_id}"
    return client.containers.list(all=True, filters={"label": label})


def run_in(container: Any, script: str) -> str:
    """Run a shell script as the workspace user inside a running container."""
    result = container.exec_run(["bash", "-c", script], user="coder")
    assert result.exit_code == 0, result.output
    return result.output.decode()


async def test_empty_list(api: Api) -> None:
    assert await api.call("GET") == (200, {"workspaces": []})


async def test_create_makes_a_running_labelled_container_with_a_volume(
    api: Api, service: Any, docker_client: docker.DockerClient
) -> None:
    workspace = await api.create(name="  My Project  ")
    assert workspace["name"] == "My Project"
    assert workspace["container_name"] == f"code-workspace-{workspace['id']}"
    assert set(workspace) == {
        "id", "name", "repo", "branch", "starred", "container_name",
        "created_at", "updated_at", "last_used_at",
    }  # fmt: skip
    assert workspace["starred"] is False
    assert workspace["created_at"].endswith("+00:00")

    container = docker_client.containers.get(workspace["container_name"])
    assert container.status == "running"
    assert container.labels[MANAGED_BY_LABEL] == MANAGED_BY
    assert container.labels[WORKSPACE_LABEL] == workspace["id"]
    assert container.labels[OWNER_LABEL] == getpass.getuser()
    mounts = {m["Destination"]: m for m in container.attrs["Mounts"]}
    # The volume holds the whole home folder, the workspace folder inside it.
    assert mounts["/home/coder"]["Name"] == f"code-workspace-{workspace['id']}"
    env = dict(item.split("=", 1) for item in container.attrs["Config"]["Env"])
    assert env["TTYD_CREDENTIAL"].startswith("coder:")
    assert env["POPEBOT_TEST"] == "1"  # extra_env from configuration
    assert env["TTYD_CREDENTIAL"] not in str(workspace)

    code, described = await api.call("GET", workspace["id"])
    assert code == 200
    assert described["container"] == {"status": "running"}
    code, listed = await api.call("GET")
    assert [w["id"] for w in listed["workspaces"]] == [workspace["id"]]
    assert listed["workspaces"][0]["container"] == {"status": "running"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": "two\nlines"}, "name"),
        ({"name": "bell\x07"}, "name"),
        ({"name": 42}, "name"),
        ({"name": "ok", "repo": "-upload-pack=touch /tmp/pwned"}, "repo"),
        ({"name": "ok", "repo": "--config=core.sshCommand=x"}, "repo"),
        ({"name": "ok", "repo": "ext::sh -c touch% /tmp/pwned"}, "repo"),
        ({"name": "ok", "repo": "ext::sh"}, "repo"),
        ({"name": "ok", "repo": "fd::17"}, "repo"),
        ({"name": "ok", "repo": "file:///etc"}, "repo"),
        ({"name": "ok", "repo": "http://example.com/a/b.git"}, "repo"),
        ({"name": "ok", "repo": "https://example.com/a b.git"}, "repo"),
        ({"name": "ok", "repo": "https://example.com/a\tb.git"}, "repo"),
        ({"name": "ok", "repo": "https:///nohost.git"}, "repo"),
        ({"name": "ok", "repo": "https://-oProxyCommand=x/a.git"}, "repo"),
        ({"name": "ok", "repo": "owner"}, "repo"),
        ({"name": "ok", "repo": ["owner/name"]}, "repo"),
        ({"name": "ok", "branch": "-b"}, "branch"),
        ({"name": "ok", "branch": "a..b"}, "branch"),
        ({"name": "ok", "branch": "a b"}, "branch"),
        ({"name": "ok", "branch": "feature.lock"}, "branch"),
        ({"name": "ok", "branch": "a@{1}"}, "branch"),
        ({"name": "ok", "branch": "x~1"}, "branch"),
        ({"name": "ok", "branch": "x:y"}, "branch"),
        ({"name": "ok", "branch": ".hidden"}, "branch"),
        ({"name": "ok", "branch": "trailing/"}, "branch"),
        ({"name": "ok", "branch": "@"}, "branch"),
        ({"name": "ok", "branch": "b" * 256}, "branch"),
        ({"name": "ok", "branch": 3}, "branch"),
        ({"name": "ok", "owner": "someone-else"}, "owner"),
    ],
)
async def test_create_refuses_bad_input_and_leaves_nothing(
    api: Api, service: Any, docker_client: docker.DockerClient, body: dict[str, Any], field: str
) -> None:
    code, reply = await api.call("POST", body=body)
    assert code == 400, reply
    assert reply["field"] == field
    assert reply["message"]
    assert await api.call("GET") == (200, {"workspaces": []})
    assert containers_of(docker_client, service) == []


@pytest.mark.parametrize(
    "raw_body",
    [
        b"not json",
        b"[1, 2]",
        b'"a string"',
        b"null",
        b"\xff\xfe",
        b'{"name": "' + b"x" * 20000 + b'"}',
    ],
)
async def test_create_refuses_bodies_that_are_not_small_json_objects(
    api: Api, raw_body: bytes
) -> None:
    code, reply = await api.call("POST", raw_body=raw_body)
    assert code == 400
    assert reply["message"]
    assert await api.call("GET") == (200, {"workspaces": []})


async def test_rename(api: Api) -> None:
    workspace = await api.create(name="Before")
    code, renamed = await api.call("PATCH", workspace["id"], body={"name": " After "})
    assert code == 200
    assert renamed["name"] == "After"
    assert renamed["updated_at"] >= workspace["updated_at"]
    code, described = await api.call("GET", workspace["id"])
    assert described["name"] == "After"

    for body in ({"name": ""}, {"name": "x" * 101}, {}, {"name": None}, {"title": "x"}):
        code, reply = await api.call("PATCH", workspace["id"], body=body)
        assert code == 400, body
        assert reply["message"]
    assert (await api.call("GET", workspace["id"]))[1]["name"] == "After"
    code, reply = await api.call("PATCH", "nosuchworkspace", body={"name": "x"})
    assert code == 404
    assert "nosuchworkspace" in reply["message"]


async def test_star_toggles_and_orders_the_list(api: Api) -> None:
    first = await api.create(name="first")
    await api.create(name="second")
    await api.create(name="third")
    code, listed = await api.call("GET")
    assert [w["name"] for w in listed["workspaces"]] == ["third", "second", "first"]

    code, starred = await api.call("POST", f"{first['id']}/star")
    assert code == 200
    assert starred["starred"] is True
    code, listed = await api.call("GET")
    assert [w["name"] for w in listed["workspaces"]] == ["first", "third", "second"]

    code, unstarred = await api.call("POST", f"{first['id']}/star")
    assert unstarred["starred"] is False
    assert (await api.call("POST", "unknown/star"))[0] == 404


async def test_delete_removes_container_and_volume(
    api: Api, service: Any, docker_client: docker.DockerClient
) -> None:
    workspace = await api.create()
    code, body = await api.call("DELETE", workspace["id"])
    assert (code, body) == (204, None)
    assert containers_of(docker_client, service) == []
    assert docker_client.volumes.list(filters={"name": workspace["container_name"]}) == []
    assert (await api.call("GET", workspace["id"]))[0] == 404
    assert (await api.call("DELETE", workspace["id"]))[0] == 404


async def test_delete_succeeds_when_the_container_is_already_gone(
    api: Api, docker_client: docker.DockerClient
) -> None:
    workspace = await api.create()
    docker_client.containers.get(workspace["container_name"]).remove(force=True)
    assert (await api.call("DELETE", workspace["id"]))[0] == 204
    assert await api.call("GET") == (200, {"workspaces": []})


@pytest.mark.parametrize("server_settings", [{"ContainerManager": {"keep_volume_on_delete": True}}])
async def test_delete_can_keep_the_volume(api: Api, docker_client: docker.DockerClient) -> None:
    workspace = await api.create()
    assert (await api.call("DELETE", workspace["id"]))[0] == 204
    kept = docker_client.volumes.get(workspace["container_name"])
    kept.remove(force=True)


async def until_listed(api: Api, status: str) -> None:
    """Wait until the server has seen a change made behind its back.

    It learns of one from Docker's event stream a moment later; until then an ensure rightly
    answers from what it knows ("running", with no Docker call: issue 10's fast path).
    """

    async def shows() -> bool:
        return await listed_status(api) == status

    await wait_for(shows, timeout=10, interval=0.02)


async def test_ensure_running(api: Api) -> None:
    workspace = await api.create()
    assert await api.call("POST", f"{workspace['id']}/ensure") == (200, {"status": "running"})


async def test_ensure_starts_a_stopped_container(
    api: Api, docker_client: docker.DockerClient
) -> None:
    workspace = await api.create()
    container = docker_client.containers.get(workspace["container_name"])
    container.stop(timeout=1)
    await until_listed(api, "exited")
    code, reply = await api.call("POST", f"{workspace['id']}/ensure")
    assert (code, reply["status"]) == (200, "started")
    container.reload()
    assert container.status == "running"


async def test_ensure_starts_a_killed_container(
    api: Api, docker_client: docker.DockerClient
) -> None:
    workspace = await api.create()
    container = docker_client.containers.get(workspace["container_name"])
    container.kill()
    container.wait(timeout=30)
    await until_listed(api, "exited")
    code, reply = await api.call("POST", f"{workspace['id']}/ensure")
    assert (code, reply["status"]) == (200, "started")
    assert (await api.call("GET", workspace["id"]))[1]["container"]["status"] == "running"


async def test_ensure_unpauses_and_the_users_processes_survive(
    api: Api, docker_client: docker.DockerClient
) -> None:
    workspace = await api.create()
    container = docker_client.containers.get(workspace["container_name"])
    run_in(container, "nohup sleep 1000 >/dev/null 2>&1 & echo $! > /tmp/sleeper")
    pid = run_in(container, "cat /tmp/sleeper").strip()
    container.pause()
    assert (await api.call("GET", workspace["id"]))[1]["container"]["status"] == "paused"
    code, reply = await api.call("POST", f"{workspace['id']}/ensure")
    assert (code, reply["status"]) == (200, "started")
    container.reload()
    assert container.status == "running"
    assert run_in(container, f"kill -0 {pid} && echo alive").strip() == "alive"


async def test_ensure_recreates_a_removed_container_and_keeps_the_files(
    api: Api, docker_client: docker.DockerClient
) -> None:
    workspace = await api.create()
    old = docker_client.containers.get(workspace["container_name"])
    run_in(old, "echo precious > /home/coder/workspace/notes.txt")
    old.remove(force=True)
    assert (await api.call("GET", workspace["id"]))[1]["container"]["status"] == "missing"

    code, reply = await api.call("POST", f"{workspace['id']}/ensure")
    assert (code, reply["status"]) == (200, "created")
    new = docker_client.containers.get(workspace["container_name"])
    assert new.id != old.id
    assert run_in(new, "cat /home/coder/workspace/notes.txt").strip() == "precious"


async def test_ensure_without_a_container_record(api: Api, service: Any) -> None:
    workspace = Workspace.new(getpass.getuser(), "imported", "", "")
    service.store.insert(Workspace(**{**workspace.__dict__, "container_name": None}))
    code, reply = await api.call("POST", f"{workspace.id}/ensure")
    assert (code, reply["status"]) == (200, "no_container")
    assert (await api.call("GET", workspace.id))[1]["container"]["status"] == "missing"


async def test_ten_concurrent_ensures_create_exactly_one_container(
    api: Api, service: Any, docker_client: docker.DockerClient
) -> None:
    workspace = await api.create()
    docker_client.containers.get(workspace["container_name"]).remove(force=True)
    await until_listed(api, "missing")
    replies = await asyncio.gather(
        *(api.call("POST", f"{workspace['id']}/ensure") for _ in range(10))
    )
    statuses = sorted(reply["status"] for code, reply in replies)
    assert statuses == ["created"] + ["running"] * 9
    assert len(containers_of(docker_client, service)) == 1


async def test_concurrent_delete_and_ensure_leave_no_container(
    api: Api, service: Any, docker_client: docker.DockerClient
) -> None:
    workspace = await api.create()
    docker_client.containers.get(workspace["container_name"]).remove(force=True)
    await until_listed(api, "missing")
    ensure, delete = await asyncio.gather(
        api.call("POST", f"{workspace['id']}/ensure"), api.call("DELETE", workspace["id"])
    )
    assert delete[0] == 204
    assert ensure[0] in (200, 404)
    assert containers_of(docker_client, service) == []
    assert await api.call("GET") == (200, {"workspaces": []})


async def test_unknown_and_malformed_ids_answer_404(api: Api) -> None:
    for workspace_id in ("doesnotexist", "..%2F..", "a" * 300):
        for method, suffix in (("GET", ""), ("DELETE", ""), ("POST", "/ensure")):
            code, reply = await api.call(method, workspace_id + suffix)
            assert code == 404, (method, workspace_id)
            assert reply["message"]


async def test_clone_from_a_real_git_server(
    api: Api, docker_client: docker.DockerClient, git_server: Any
) -> None:
    workspace = await api.create(name="cloned", repo=git_server.url, branch="feature")
    container = docker_client.containers.get(workspace["container_name"])

    def clone_status() -> str:
        result = container.exec_run(["cat", "/tmp/workspace-clone/status"], user="coder")
        return result.output.decode().strip() if result.exit_code == 0 else ""

    status = await wait_for(clone_status, timeout=60)
    assert status == "ok", run_in(container, "cat /tmp/workspace-clone/log")
    assert run_in(container, "cat /home/coder/workspace/FEATURE.txt").strip() == "on feature"
    assert run_in(container, "git -C /home/coder/workspace branch --show-current").strip() == (
        "feature"
    )


@pytest.mark.parametrize(
    "server_settings",
    [{"ServerApp": {"identity_provider_class": HeaderIdentityProvider}}],
)
async def test_owners_cannot_see_or_touch_each_others_workspaces(
    api: Api, docker_client: docker.DockerClient
) -> None:
    alice, bob = api.as_user("alice"), api.as_user("bob")
    mine = await alice.create(name="alice's")
    assert (await bob.call("GET"))[1] == {"workspaces": []}
    for method, suffix, body in (
        ("GET", "", None),
        ("PATCH", "", {"name": "stolen"}),
        ("POST", "/star", None),
        ("POST", "/ensure", None),
        ("DELETE", "", None),
    ):
        code, reply = await bob.call(method, mine["id"] + suffix, body=body)
        assert code == 404, (method, suffix)
        assert reply["message"] == f"No workspace with id {mine['id']!r}."
    code, still = await alice.call("GET", mine["id"])
    assert (code, still["name"], still["starred"]) == (200, "alice's", False)
    container = docker_client.containers.get(mine["container_name"])
    assert container.labels[OWNER_LABEL] == "alice"
    assert container.status == "running"


async def test_token_logins_share_the_servers_owner(jp_fetch: Any, api: Api) -> None:
    """Each token request is a new anonymous user to jupyter-server; all see the same workspaces."""
    workspace = await api.create()
    identities = [
        json.loads((await jp_fetch("api", "me")).body)["identity"]["username"] for _ in range(2)
    ]
    assert identities[0] != identities[1]
    assert [w["id"] for w in (await api.call("GET"))[1]["workspaces"]] == [workspace["id"]]


@pytest.mark.parametrize("server_settings", [{"CodeWorkspacesApp": {"enabled": False}}])
async def test_disabled_extension_serves_nothing(jp_fetch: Any) -> None:
    response = await jp_fetch("api", "code", "workspaces", raise_error=False)
    assert response.code == 404


async def test_requests_without_credentials_are_refused(jp_fetch: Any, api: Api) -> None:
    workspace = await api.create()
    for method, parts in (
        ("GET", ()),
        ("POST", ()),
        ("GET", (workspace["id"],)),
        ("DELETE", (workspace["id"],)),
        ("POST", (workspace["id"], "ensure")),
    ):
        response = await jp_fetch(
            "api", "code", "workspaces", *parts,
            method=method,
            body=b"{}" if method == "POST" else None,
            headers={"Authorization": ""},
            raise_error=False,
        )  # fmt: skip
        assert response.code in (401, 403), (method, parts)
    assert len((await api.call("GET"))[1]["workspaces"]) == 1


async def listed_status(api: Api) -> str:
    return str((await api.call("GET"))[1]["workspaces"][0]["container"]["status"])


async def test_listing_follows_changes_made_behind_the_servers_back(
    api: Api, docker_client: docker.DockerClient
) -> None:
    """Statuses come from Docker's event stream: every outside change shows up in a listing."""
    workspace = await api.create()
    assert await listed_status(api) == "running"  # a change through the server shows at once
    container = docker_client.containers.get(workspace["container_name"])
    for change, expected in (
        (lambda: container.pause(), "paused"),
        (lambda: container.unpause(), "running"),
        (lambda: container.kill(), "exited"),
        (lambda: container.start(), "running"),
        (lambda: container.stop(timeout=1), "exited"),
        (lambda: container.remove(force=True), "missing"),
    ):
        change()
        await until_listed(api, expected)
    assert (await api.call("POST", f"{workspace['id']}/ensure"))[1]["status"] == "created"
    assert await listed_status(api) == "running"


async def test_one_workspace_is_always_inspected_afresh(
    api: Api, docker_client: docker.DockerClient
) -> None:
    workspace = await api.create()
    docker_client.containers.get(workspace["container_name"]).stop(timeout=1)
    assert (await api.call("GET", workspace["id"]))[1]["container"]["status"] == "exited"


@pytest.mark.parametrize(
    "server_settings",
    [{"ContainerManager": {"mem_limit": "512m", "cpu_limit": 0.5, "pids_limit": 256}}],
)
async def test_limits_and_hardening_reach_the_container(
    api: Api, docker_client: docker.DockerClient
) -> None:
    workspace = await api.create()
    host = docker_client.containers.get(workspace["container_name"]).attrs["HostConfig"]
    assert host["Memory"] == 512 * 1024 * 1024
    assert host["NanoCpus"] == 500_000_000
    assert host["PidsLimit"] == 256
    assert host["Init"] is True
    assert host["RestartPolicy"]["Name"] == "unless-stopped"
    assert "no-new-privileges:true" in host["SecurityOpt"]


async def test_a_removed_network_is_made_again(
    api: Api, service: Any, docker_client: docker.DockerClient
) -> None:
    first = await api.create(name="first")
    assert (await api.call("DELETE", first["id"]))[0] == 204
    # A network whose name contains the test network's: the engine's name filter matches it too.
    decoy = docker_client.networks.create(
        f"{TEST_NETWORK}-decoy", driver="bridge", internal=True, labels={MANAGED_BY_LABEL: "tests"}
    )
    docker_client.networks.get(TEST_NETWORK).remove()
    try:
        # The server makes a plain bridge; its container has no repository, so it dials nothing.
        second = await api.create(name="second")
        container = docker_client.containers.get(second["container_name"])
        # The shared network is back (the firewall hangs on it); the workspace is on its own.
        assert docker_client.networks.get(TEST_NETWORK).name == TEST_NETWORK
        own = f"{second['container_name']}-net"
        assert list(container.attrs["NetworkSettings"]["Networks"]) == [own]
        assert (await api.call("DELETE", second["id"]))[0] == 204
    finally:
        # Leave the suite's internal network behind, not the routed one the server made.
        for leftover in containers_of(docker_client, service):
            leftover.remove(force=True)
        ensure_internal_network(docker_client)
        decoy.remove()


async def test_workspace_containers_reach_the_local_git_server_and_nothing_else(
    api: Api, docker_client: docker.DockerClient, git_server: Any
) -> None:
    """The test network is internal: the host's address on it answers, nothing beyond it does."""
    workspace = await api.create()
    container = docker_client.containers.get(workspace["container_name"])
    assert docker_client.networks.get(TEST_NETWORK).attrs["Internal"] is True

    def connects(host: str, port: int) -> bool:
        probe = f"timeout 3 bash -c 'exec 3<>/dev/tcp/{host}/{port}'"
        return container.exec_run(["bash", "-c", probe], user="coder").exit_code == 0

    host, port = git_server.base_url.removeprefix("git://").rsplit(":", 1)
    assert connects(host, int(port))
    assert "refs/heads/feature" in run_in(container, f"git ls-remote {git_server.url}")


class NamelessIdentityProvider(HeaderIdentityProvider):
    """An identity that authenticates but names nobody (a misconfigured proxy login)."""

    def get_user(self, handler: Any) -> User | None:  # type: ignore[override]
        if handler.request.headers.get("X-Test-Nameless"):
            handler._token_authenticated = True
            user = User(username="placeholder")
            user.username = ""  # User() refuses an empty name; a provider's later change does not
            return user
        return super().get_user(handler)


@pytest.mark.parametrize(
    "server_settings", [{"ServerApp": {"identity_provider_class": NamelessIdentityProvider}}]
)
async def test_a_request_without_a_usable_identity_is_forbidden_not_an_error(
    jp_fetch: Any, jp_ws_fetch: Any, service: Any
) -> None:
    nameless = {"X-Test-Nameless": "1"}
    response = await jp_fetch("api", "code", "workspaces", headers=nameless, raise_error=False)
    assert response.code == 403
    assert "no authenticated user" in json.loads(response.body)["message"]
    code, message = await refusal(relay_fetch(jp_ws_fetch, "abcdefgh", **nameless))
    assert code == 403
    assert "no authenticated user" in message
