"""Workspace profiles in the fast tier: the option's checks, and choosing one through REST.

The container's image and limits are those the in-memory manager was asked for; the real
engine's side (the container runs that image with those limits) is tests/test_profiles.py.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from traitlets import TraitError

from jupyter_popebot_code.app import CodeWorkspacesApp
from jupyter_popebot_code.backends.docker.manager import ContainerManager
from jupyter_popebot_code.backends.swarm.manager import SwarmContainerManager
from jupyter_popebot_code.core.profiles import (
    Caller,
    ContainerResources,
    ProfileCatalog,
    parse_profiles,
)
from jupyter_popebot_code.core.store import _MIGRATIONS, Workspace, WorkspaceStore
from jupyter_popebot_code.errors import ContainerError, ProfileError

from ..conftest import USER_HEADER, Api
from ..memory_containers import InMemoryContainerManager
from ..profile_identity import GROUPS_HEADER, GroupsIdentityProvider
from .test_swarm_task import FakeClient

PYTHON = {
    "slug": "python",
    "display_name": "Python data science",
    "description": "numpy and friends",
    "image": "example/python:1",
    "limits": {"cpus": 2, "memory": "4g", "pids": 1024},
}
PLAIN = {"slug": "plain", "display_name": "Plain", "image": "example/plain:1", "default": True}
GPU = {
    "slug": "gpu",
    "display_name": "GPU",
    "image": "example/gpu:1",
    "limits": {"memory": "8g", "disk": "50g"},
    "allowed_users": ["alice"],
    "allowed_groups": ["ml"],
}
PROFILES = {
    "ServerApp": {"identity_provider_class": GroupsIdentityProvider},
    "CodeWorkspacesApp": {"profiles": [PYTHON, PLAIN, GPU]},
}


# -- the option's checks -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([{"slug": "a"}], r"profiles\[0\] \('a'\): 'image' must be a non-empty string"),
        ([PLAIN, {"image": "x"}], r"profiles\[1\]: 'slug' must be"),
        ([{"slug": "Bad Slug", "image": "x"}], r"profiles\[0\] \('Bad Slug'\): 'slug' must"),
        ([{"slug": "a", "image": "x", "colour": "red"}], r"unknown key\(s\) 'colour'"),
        ([{"slug": "a", "image": "x", "limits": {"gpus": 1}}], r"unknown limit\(s\) 'gpus'"),
        ([{"slug": "a", "image": "x", "limits": {"memory": "lots"}}], r"'memory' must be a size"),
        ([{"slug": "a", "image": "x", "limits": {"cpus": "2"}}], r"'cpus' must be a number"),
        ([{"slug": "a", "image": "x", "limits": {"pids": -1}}], r"'pids' must be a whole number"),
        (
            [{"slug": "a", "image": "x", "allowed_users": "alice"}],
            r"'allowed_users' must be a list",
        ),
        ([{"slug": "a", "image": "x", "default": "yes"}], r"'default' must be true or false"),
        ([PLAIN, {**PYTHON, "slug": "plain"}], r"slug 'plain' appears twice"),
        ([PLAIN, {**PYTHON, "default": True}], r"only one profile may be the default"),
        (["python"], r"profiles\[0\] must be a dict"),
    ],
)
def test_a_bad_entry_is_refused_naming_it(entries: list[Any], message: str) -> None:
    with pytest.raises(ProfileError, match=message):
        parse_profiles(entries)
    # The option itself refuses it when set, so the server stops at start with this message.
    with pytest.raises(TraitError, match=message):
        CodeWorkspacesApp(profiles=entries)


def test_a_profile_s_limits_replace_only_the_managers_they_name() -> None:
    python, plain, gpu = parse_profiles([PYTHON, PLAIN, GPU])
    # The Docker backend's own options (the in-memory backend has no disk limits).
    manager = ContainerManager(image="default:1", mem_limit="2g", cpu_limit=1.0)
    manager.pids_limit = 512
    assert ContainerResources.of(python, manager) == ContainerResources(
        image="example/python:1", memory="4g", cpus=2.0, pids=1024, disk=None
    )
    assert ContainerResources.of(plain, manager) == ContainerResources(
        image="example/plain:1", memory="2g", cpus=1.0, pids=512, disk=None
    )
    assert ContainerResources.of(None, manager) == ContainerResources(
        image="default:1", memory="2g", cpus=1.0, pids=512, disk=None
    )
    assert ContainerResources.of(gpu, manager).disk == "50g"
    # owner_disk_limit is per person and wins; the profile's disk wins over disk_limit.
    manager.disk_limit = "10g"
    manager.owner_disk_limit = {"bot": "0"}
    assert manager.disk_size("alice", "50g") == 50 * 1024**3
    assert manager.disk_size("alice", None) == 10 * 1024**3
    assert manager.disk_size("bot", "50g") == 0
    manager.close()


def test_choosing_follows_the_default_and_the_restrictions() -> None:
    catalog = ProfileCatalog(parse_profiles([PYTHON, PLAIN, GPU]))
    bob, alice = Caller.of(["bob"]), Caller.of(["alice"])
    ml_member = Caller.of(["carol"], ["ml", "staff"])
    assert catalog.choose(None, bob).slug == "plain"  # type: ignore[union-attr]
    assert catalog.choose("", bob).slug == "plain"  # type: ignore[union-attr]
    assert catalog.choose("python", bob).slug == "python"  # type: ignore[union-attr]
    assert catalog.choose("gpu", alice).slug == "gpu"  # type: ignore[union-attr]
    assert catalog.choose("gpu", ml_member).slug == "gpu"  # type: ignore[union-attr]
    assert [p.slug for p in catalog.for_caller(bob)] == ["python", "plain"]
    # Emails are listed in any case, as mail systems treat them.
    by_mail = ProfileCatalog(parse_profiles([{**GPU, "allowed_users": ["Alice@Example.org"]}]))
    assert by_mail.choose(None, Caller.of(["a1", "alice@example.org"])).slug == "gpu"  # type: ignore[union-attr]
    # No profiles: exactly as before (no profile), and asking for one is a mistake.
    assert ProfileCatalog().choose(None, bob) is None


# -- through REST ------------------------------------------------------------------------------


class ProfileApi(Api):
    """Api with the caller's groups, and the profiles endpoint."""

    def __init__(self, fetch: Any, user: str, groups: str | None = None) -> None:
        super().__init__(fetch, user)
        self.groups = groups

    async def profiles(self) -> tuple[int, Any]:
        headers = {USER_HEADER: self.user or ""}
        if self.groups is not None:
            headers[GROUPS_HEADER] = self.groups
        response = await self._fetch(
            "api", "code", "profiles", method="GET", headers=headers, raise_error=False
        )
        return response.code, json.loads(response.body)

    async def create_in(self, profile: Any) -> tuple[int, Any]:
        body: dict[str, Any] = {"name": "p"}
        if profile is not ...:
            body["profile"] = profile
        headers = {USER_HEADER: self.user or "", "Content-Type": "application/json"}
        if self.groups is not None:
            headers[GROUPS_HEADER] = self.groups
        response = await self._fetch(
            "api", "code", "workspaces", method="POST", body=json.dumps(body), headers=headers,
            raise_error=False,
        )  # fmt: skip
        return response.code, json.loads(response.body)


@pytest.mark.parametrize("server_settings", [PROFILES])
async def test_profiles_listed_and_chosen_through_rest(
    jp_fetch: Any, service: Any, containers: InMemoryContainerManager
) -> None:
    bob = ProfileApi(jp_fetch, "bob")
    alice = ProfileApi(jp_fetch, "alice")
    carol = ProfileApi(jp_fetch, "carol", groups="staff,ml")

    code, listed = await bob.profiles()
    assert code == 200
    assert [p["slug"] for p in listed["profiles"]] == ["python", "plain"]
    assert listed["profiles"][0] == {
        "slug": "python",
        "display_name": "Python data science",
        "description": "numpy and friends",
        "image": "example/python:1",
        "limits": {"cpus": 2.0, "memory": "4g", "pids": 1024},
        "default": False,
    }
    assert [p["slug"] for p in (await alice.profiles())[1]["profiles"]] == [
        "python",
        "plain",
        "gpu",
    ]
    assert [p["slug"] for p in (await carol.profiles())[1]["profiles"]] == [
        "python",
        "plain",
        "gpu",
    ]

    code, made = await bob.create_in("python")
    assert (code, made["profile"]) == (201, "python"), made
    resources = containers.containers[made["container_name"]].resources
    assert resources == ContainerResources("example/python:1", "4g", 2.0, 1024, None)

    code, made = await bob.create_in(...)
    assert (code, made["profile"]) == (201, "plain")  # the default
    code, made = await carol.create_in("gpu")
    assert (code, made["profile"]) == (201, "gpu")

    code, refused = await bob.create_in("gpu")
    assert code == 403
    assert refused["message"] == "You may not use the profile 'gpu'."
    code, refused = await bob.create_in("cobol")
    assert code == 400
    assert refused["field"] == "profile"
    assert "Unknown profile 'cobol'" in refused["message"]
    assert "python, plain" in refused["message"]  # what bob may use, not gpu
    code, refused = await bob.create_in(3)
    assert (code, refused["field"]) == (400, "profile")
    # Nothing was made by the refusals; the workspace lists its profile.
    code, mine = await Api(jp_fetch, "bob").call("GET")
    assert sorted(w["profile"] for w in mine["workspaces"]) == ["plain", "python"]
    assert len(containers.containers) == 3


@pytest.mark.parametrize("server_settings", [PROFILES])
async def test_ensure_recreates_the_container_from_its_profile(
    jp_fetch: Any, service: Any, containers: InMemoryContainerManager
) -> None:
    bob = ProfileApi(jp_fetch, "bob")
    code, made = await bob.create_in("python")
    assert code == 201
    del containers.containers[made["container_name"]]  # as `docker rm -f`
    api = Api(jp_fetch, "bob")
    assert (await api.call("POST", f"{made['id']}/ensure"))[1]["status"] == "created"
    resources = containers.containers[made["container_name"]].resources
    assert resources is not None
    assert (resources.image, resources.memory) == ("example/python:1", "4g")


@pytest.mark.parametrize(
    "server_settings",
    [{"ServerApp": {"identity_provider_class": GroupsIdentityProvider},
      "CodeWorkspacesApp": {"profiles": [GPU]}}],
)  # fmt: skip
async def test_a_caller_with_no_open_profile_is_refused(jp_fetch: Any, service: Any) -> None:
    code, listed = await ProfileApi(jp_fetch, "bob").profiles()
    assert (code, listed) == (200, {"profiles": []})
    code, refused = await ProfileApi(jp_fetch, "bob").create_in(...)
    assert code == 403
    assert "No workspace profile" in refused["message"]


async def test_without_profiles_nothing_changes(
    jp_fetch: Any, api: Api, containers: InMemoryContainerManager
) -> None:
    response = await jp_fetch("api", "code", "profiles")
    assert (response.code, json.loads(response.body)) == (200, {"profiles": []})
    workspace = await api.create()
    assert "profile" not in workspace
    resources = containers.containers[workspace["container_name"]].resources
    assert resources == ContainerResources.of(None, containers)
    code, refused = await api.call("POST", body={"name": "x", "profile": "python"})
    assert (code, refused["field"]) == (400, "profile")


def test_an_older_store_gets_the_profile_column_empty(tmp_path: Path) -> None:
    path = tmp_path / "v2.sqlite"
    db = sqlite3.connect(path)
    for script in _MIGRATIONS[:2]:
        db.executescript(script)
    db.execute(
        "INSERT INTO code_workspaces (id, user_id, name, repo, branch, starred, container_name,"
        " ttyd_credential, created_at, updated_at)"
        " VALUES ('abc', 'alice', 'old', '', '', 0, 'code-workspace-abc', 'coder:x', 1, 2)"
    )
    db.execute("PRAGMA user_version = 2")
    db.commit()
    db.close()
    store = WorkspaceStore(str(path))
    workspace = store.get("abc")
    assert workspace is not None
    assert workspace.profile == ""
    assert "profile" not in workspace.to_json()
    store.close()


# -- on a Swarm --------------------------------------------------------------------------------


def test_a_swarm_task_gets_its_profile_s_image_and_limits() -> None:
    manager = SwarmContainerManager(image="default:1", disk_limit="")
    manager._pinned_node = lambda client, volume: "node-1"  # type: ignore[method-assign]
    manager._ensure_workspace_network = lambda *args: None  # type: ignore[method-assign]
    manager._pin = lambda *args: None  # type: ignore[method-assign]
    python, _, gpu = parse_profiles([PYTHON, PLAIN, GPU])
    client = FakeClient()
    workspace = Workspace.new("alice", "Test", "", "", profile="python")
    resources = ContainerResources.of(python, manager)
    manager._create_sync(client, workspace, "store", {}, resources)  # type: ignore[arg-type]
    task = client.api.services[0]
    assert task["ContainerSpec"]["Image"] == "example/python:1"
    assert task["Resources"]["Limits"] == {
        "MemoryBytes": 4 * 1024**3,
        "NanoCPUs": 2_000_000_000,
        "Pids": 1024,
    }
    # A profile's disk limit is refused there, as ContainerManager.disk_limit is.
    with pytest.raises(ContainerError, match="not supported on Swarm"):
        manager._create_sync(  # type: ignore[arg-type]
            client, workspace, "store", {}, ContainerResources.of(gpu, manager)
        )
