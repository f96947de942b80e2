"""The admin view: every owner's workspaces for administrators, stop and delete of anyone's."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import docker
import pytest
from jupyter_server.auth.identity import User

from jupyter_popebot_code.auth.owner import is_admin

from .conftest import USER_HEADER, Api, HeaderIdentityProvider
from .server_process import ServerProcess, run_and_clean_up

ADMIN_SETUP = {
    "ServerApp": {"identity_provider_class": HeaderIdentityProvider},
    "CodeWorkspacesApp": {"admin_users": ["boss"]},
}


async def list_all(api: Api, value: str = "true") -> tuple[int, Any]:
    """GET api/code/workspaces?all=<value> as the Api's user."""
    response = await api._fetch(
        "api", "code", "workspaces",
        params={"all": value}, headers={USER_HEADER: api.user or ""}, raise_error=False,
    )  # fmt: skip
    return response.code, json.loads(response.body)


class HubUser(User):
    """Shaped like jupyterhub.singleuser's JupyterHubUser: the hub's user model in `hub_user`."""

    def __init__(self, name: str, admin: bool) -> None:
        super().__init__(username=name)
        self.hub_user = {"name": name, "admin": admin, "kind": "user"}


def test_admins_are_admin_users_and_hub_admins() -> None:
    app = SimpleNamespace(admin_users=["boss"])
    assert is_admin(User(username="boss"), app)
    assert not is_admin(User(username="alice"), app)
    # Listed by email, as Auth.js identities carry one; emails match in any case.
    by_email = SimpleNamespace(admin_users=["Boss@Example.COM"])
    boss = User(username="9d41a7c0-boss")
    boss.email = "boss@example.com"  # type: ignore[attr-defined]
    assert is_admin(boss, by_email)
    assert not is_admin(User(username="9d41a7c0-boss"), by_email)
    assert is_admin(HubUser("carol", admin=True), app)
    assert not is_admin(HubUser("dave", admin=False), app)
    # A handler is asked for its current user.
    assert is_admin(SimpleNamespace(current_user=User(username="boss")), app)
    assert not is_admin(SimpleNamespace(current_user=None), app)


@pytest.mark.parametrize("server_settings", [ADMIN_SETUP])
async def test_admins_list_stop_and_delete_every_owners_workspaces(
    api: Api, docker_client: docker.DockerClient
) -> None:
    alice, bob, boss = api.as_user("alice"), api.as_user("bob"), api.as_user("boss")
    mine = await alice.create("alice's")
    theirs = await bob.create("bob's")

    # Everyone else: 403 for all=true, and someone else's workspace stays a 404.
    code, body = await list_all(alice)
    assert code == 403, body
    assert "administrators" in body["message"]
    assert (await alice.call("POST", f"{theirs['id']}/stop"))[0] == 404
    assert (await alice.call("DELETE", theirs["id"]))[0] == 404
    assert docker_client.containers.get(theirs["container_name"]).status == "running"

    # An admin's own listing is still their own.
    code, body = await boss.call("GET")
    assert (code, body["workspaces"]) == (200, [])
    code, body = await list_all(boss, "maybe")
    assert (code, body["field"]) == (400, "all")

    code, body = await list_all(boss)
    assert code == 200
    listed = {ws["id"]: ws for ws in body["workspaces"]}
    assert set(listed) == {mine["id"], theirs["id"]}
    assert listed[mine["id"]]["owner"] == "alice"
    assert listed[theirs["id"]]["owner"] == "bob"
    assert listed[theirs["id"]]["container"]["status"] == "running"

    code, body = await boss.call("POST", f"{theirs['id']}/stop")
    assert (code, body["status"]) == (200, "stopped")
    assert docker_client.containers.get(theirs["container_name"]).status == "exited"
    code, body = await boss.call("DELETE", theirs["id"])
    assert code == 204, body
    with pytest.raises(docker.errors.NotFound):
        docker_client.containers.get(theirs["container_name"])
    assert (await bob.call("GET", theirs["id"]))[0] == 404
    # Nothing of alice's was touched.
    code, body = await alice.call("GET", mine["id"])
    assert (code, body["container"]["status"]) == (200, "running")


@pytest.fixture
def server_process(
    tmp_path: Path, workspace_image: str, docker_client: docker.DockerClient
) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path, workspace_image)
    server.extra_args = [
        f"--ServerApp.identity_provider_class={HeaderIdentityProvider.__module__}."
        f"{HeaderIdentityProvider.__qualname__}"
    ]
    yield from run_and_clean_up(server, docker_client)


def test_admin_users_as_a_list_literal_on_the_command_line(server_process: ServerProcess) -> None:
    server_process.extra_args.append('--CodeWorkspacesApp.admin_users=["boss", "Ops@Example.com"]')
    server_process.start()

    def get(user: str, path: str) -> int:
        response = server_process.request("GET", path, headers={USER_HEADER: user})
        return response.status_code

    assert get("boss", "api/code/workspaces?all=true") == 200
    assert get("boss", "api/kernels") == 200
    assert get("alice", "api/code/workspaces?all=true") == 403
    assert get("alice", "api/kernels") == 403
    assert "(2 listed)" in server_process.log_path.read_text()


def test_a_malformed_list_on_the_command_line_stops_the_server_saying_how_to_write_it(
    server_process: ServerProcess,
) -> None:
    server_process.extra_args.append('--CodeWorkspacesApp.admin_users=["boss"')
    server_process.launch()
    assert server_process.process is not None
    assert server_process.process.wait(timeout=60) == 1
    log = server_process.log_path.read_text()
    assert "CodeWorkspacesApp.admin_users: cannot read" in log, log
    assert """--CodeWorkspacesApp.admin_users='["a", "b"]'""" in log, log
