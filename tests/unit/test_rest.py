"""The REST API through a real jupyter-server, over the in-memory container manager (fast tier).

Also where repository forms naming other hosts are accepted: they are validated and recorded,
and the clone URL is handed to a container that exists only in memory, so no test ever makes a
real container dial github.com or any other host.
"""

from __future__ import annotations

import getpass
from typing import Any

import pytest

from jupyter_popebot_code.backends.docker.manager import OWNER_LABEL
from jupyter_popebot_code.errors import ContainerError

from ..conftest import Api, HeaderIdentityProvider, wait_for
from ..memory_containers import InMemoryContainerManager


async def test_list_create_describe(api: Api, containers: InMemoryContainerManager) -> None:
    assert await api.call("GET") == (200, {"workspaces": []})
    workspace = await api.create(name="  My Project  ")
    assert workspace["name"] == "My Project"
    assert workspace["container_name"] == f"code-workspace-{workspace['id']}"
    assert set(workspace) == {
        "id", "name", "repo", "branch", "starred", "container_name",
        "created_at", "updated_at", "last_used_at",
    }  # fmt: skip
    container = containers.containers[workspace["container_name"]]
    assert container.labels[OWNER_LABEL] == getpass.getuser()
    assert container.env["REPO_URL"] == ""
    code, described = await api.call("GET", workspace["id"])
    assert (code, described["container"]) == (200, {"status": "running"})
    code, listed = await api.call("GET")
    assert [(w["id"], w["container"]) for w in listed["workspaces"]] == [
        (workspace["id"], {"status": "running"})
    ]


@pytest.mark.parametrize(
    ("repo", "branch", "clone_url"),
    [
        ("jupyter/notebook", "main", "https://github.com/jupyter/notebook.git"),
        ("owner/name.with-dots_and-dashes", "", "https://github.com/owner/name.with-dots_and-dashes.git"),
        ("https://github.com/jupyter/notebook.git", "release/7.x", None),
        ("ssh://git@example.com:2222/team/repo.git", "feature/a-b_c", None),
        ("git@github.com:jupyter/notebook.git", "", None),
        ("git://git.example.org/repo.git", "v1.0", None),
    ],
)  # fmt: skip
async def test_create_accepts_real_repository_forms(
    api: Api, containers: InMemoryContainerManager, repo: str, branch: str, clone_url: str | None
) -> None:
    """Accepted and passed to the container as given (or expanded), never cloned by a test."""
    workspace = await api.create(name="ok", repo=repo, branch=branch)
    assert (workspace["repo"], workspace["branch"]) == (repo, branch)
    env = containers.containers[workspace["container_name"]].env
    assert (env["REPO_URL"], env["BRANCH"]) == (clone_url or repo, branch)
    assert env["GIT_ALLOW_PROTOCOL"] == "https:ssh:git"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "two\nlines"}, "name"),
        ({"name": 42}, "name"),
        ({"name": "ok", "repo": "-upload-pack=touch /tmp/pwned"}, "repo"),
        ({"name": "ok", "repo": "ext::sh -c touch% /tmp/pwned"}, "repo"),
        ({"name": "ok", "repo": "file:///etc"}, "repo"),
        ({"name": "ok", "repo": "http://example.com/a/b.git"}, "repo"),
        ({"name": "ok", "repo": "https://-oProxyCommand=x/a.git"}, "repo"),
        ({"name": "ok", "branch": "a..b"}, "branch"),
        ({"name": "ok", "branch": "-b"}, "branch"),
        ({"name": "ok", "owner": "someone-else"}, "owner"),
    ],
)
async def test_bad_input_is_a_400_with_a_field_and_nothing_is_made(
    api: Api, containers: InMemoryContainerManager, body: dict[str, Any], field: str
) -> None:
    code, reply = await api.call("POST", body=body)
    assert code == 400, reply
    assert reply["field"] == field
    assert reply["message"]
    assert containers.calls["create"] == 0
    assert await api.call("GET") == (200, {"workspaces": []})


@pytest.mark.parametrize("raw_body", [b"not json", b"[1, 2]", b"null", b"\xff\xfe"])
async def test_bodies_that_are_not_json_objects_are_a_400(api: Api, raw_body: bytes) -> None:
    code, reply = await api.call("POST", raw_body=raw_body)
    assert code == 400
    assert reply["message"]


async def test_rename_star_and_order(api: Api) -> None:
    first = await api.create(name="first")
    await api.create(name="second")
    code, renamed = await api.call("PATCH", first["id"], body={"name": " renamed "})
    assert (code, renamed["name"]) == (200, "renamed")
    for body in ({"name": ""}, {}, {"title": "x"}):
        code, reply = await api.call("PATCH", first["id"], body=body)
        assert code == 400, body
        assert reply["message"]
    code, starred = await api.call("POST", f"{first['id']}/star")
    assert (code, starred["starred"]) == (200, True)
    listed = (await api.call("GET"))[1]["workspaces"]
    assert [w["name"] for w in listed] == ["renamed", "second"]


async def test_delete_answers_204_then_404(api: Api, containers: InMemoryContainerManager) -> None:
    workspace = await api.create()
    assert await api.call("DELETE", workspace["id"]) == (204, None)
    assert containers.containers == {}
    assert containers.volumes == {}
    assert (await api.call("GET", workspace["id"]))[0] == 404
    assert (await api.call("DELETE", workspace["id"]))[0] == 404


@pytest.mark.parametrize(
    ("status", "answer"),
    [("running", "running"), ("exited", "started"), ("paused", "started"), ("dead", "created")],
)
async def test_ensure_answers(
    api: Api, containers: InMemoryContainerManager, status: str, answer: str
) -> None:
    workspace = await api.create()
    containers.set_status(workspace["container_name"], status)
    code, reply = await api.call("POST", f"{workspace['id']}/ensure")
    assert (code, reply["status"]) == (200, answer)
    assert (await api.call("GET", workspace["id"]))[1]["container"]["status"] == "running"


async def test_unknown_ids_are_a_404_with_a_message(api: Api) -> None:
    for workspace_id in ("doesnotexist", "..%2F..", "a" * 300):
        for method, suffix in (("GET", ""), ("DELETE", ""), ("POST", "/ensure"), ("POST", "/star")):
            code, reply = await api.call(method, workspace_id + suffix)
            assert code == 404, (method, workspace_id)
            assert reply["message"]


@pytest.mark.parametrize(
    "server_settings", [{"ServerApp": {"identity_provider_class": HeaderIdentityProvider}}]
)
async def test_owners_cannot_see_or_touch_each_others_workspaces(
    api: Api, containers: InMemoryContainerManager
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
    assert containers.containers[mine["container_name"]].labels[OWNER_LABEL] == "alice"


async def test_engine_down_is_a_503_that_says_what_to_do_and_loses_nothing(
    api: Api, containers: InMemoryContainerManager
) -> None:
    kept = await api.create(name="kept")
    containers.engine_down = True
    for method, path in (("POST", ""), ("POST", f"{kept['id']}/ensure"), ("DELETE", kept["id"])):
        code, reply = await api.call(method, path, body={"name": "new"} if path == "" else None)
        assert code == 503, (method, path)
        assert "Docker engine" in reply["message"]
    code, listed = await api.call("GET")
    assert code == 200
    assert [(w["id"], w["container"]["status"]) for w in listed["workspaces"]] == [
        (kept["id"], "unknown")
    ]
    containers.engine_down = False
    assert list(containers.containers) == [kept["container_name"]]
    assert (await api.call("POST", f"{kept['id']}/ensure"))[1]["status"] == "running"


async def test_a_refused_container_is_a_500_with_the_reason(
    api: Api, containers: InMemoryContainerManager
) -> None:
    containers.fail_next("create_container", ContainerError("Docker refused: no such image"))
    code, reply = await api.call("POST", body={"name": "x"})
    assert code == 500
    assert "no such image" in reply["message"]
    assert await api.call("GET") == (200, {"workspaces": []})
    assert containers.volumes == {}


async def test_requests_without_credentials_are_refused(jp_fetch: Any, api: Api) -> None:
    workspace = await api.create()
    for method, parts in (("GET", ()), ("POST", ()), ("DELETE", (workspace["id"],))):
        response = await jp_fetch(
            "api", "code", "workspaces", *parts,
            method=method,
            body=b"{}" if method == "POST" else None,
            headers={"Authorization": ""},
            raise_error=False,
        )  # fmt: skip
        assert response.code in (401, 403), (method, parts)
    assert len((await api.call("GET"))[1]["workspaces"]) == 1


async def test_the_startup_sweep_ran_against_the_in_memory_manager(
    api: Api, containers: InMemoryContainerManager
) -> None:
    """The server's own wiring: the orphan sweep at start went to the configured manager class."""
    await wait_for(lambda: containers.calls["workspace_ids"] == 1, timeout=10, interval=0.05)
    await api.call("GET")
    assert containers.calls["workspace_ids"] == 1
