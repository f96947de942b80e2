"""Workspace profiles on the real engine: the container runs its profile's image and limits.

The profile's image is built by scripts/build-profile-image.sh from tests/profile_image (the
test image with one file more), with no network, so it differs from the default image in a way a
process inside can see.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import Iterator
from typing import Any

import docker
import docker.errors
import pytest

from jupyter_popebot_code.backends.docker.manager import OWNER_LABEL

from .conftest import IMAGE, ROOT, TEST_NETWORK, USER_HEADER, Api, wait_for
from .profile_identity import GROUPS_HEADER, GroupsIdentityProvider

PROFILE_IMAGE = f"jupyter-popebot-code-workspace:{TEST_NETWORK}-profile"
PROFILES = [
    {
        "slug": "small",
        "display_name": "Small",
        "description": "the default image, tightly limited",
        "image": IMAGE,
        "default": True,
        "limits": {"cpus": 0.5, "memory": "256m", "pids": 128},
    },
    {
        "slug": "marked",
        "display_name": "Marked",
        "description": "an image of its own",
        "image": PROFILE_IMAGE,
        "limits": {"cpus": 1.5, "memory": "768m", "pids": 300},
        "allowed_groups": ["builders"],
    },
]
SETTINGS = {
    "ServerApp": {"identity_provider_class": GroupsIdentityProvider},
    "CodeWorkspacesApp": {"profiles": PROFILES},
}


@pytest.fixture(scope="module")
def profile_image(workspace_image: str, docker_client: docker.DockerClient) -> Iterator[str]:
    """The marked image, built on the test image by the operator's script."""
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "build-profile-image.sh"), PROFILE_IMAGE,
         str(ROOT / "tests" / "profile_image")],
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "WORKSPACE_IMAGE": workspace_image,
             "PROFILE_BUILD_NETWORK": "none"},
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    yield PROFILE_IMAGE
    # A container of another run may still use it: then it stays, and the next build reuses it.
    with contextlib.suppress(docker.errors.APIError):
        docker_client.images.remove(PROFILE_IMAGE)


def container_of(docker_client: docker.DockerClient, workspace: dict[str, Any]) -> Any:
    return docker_client.containers.get(workspace["container_name"])


def marker(container: Any) -> str:
    result = container.exec_run(["cat", "/etc/popebot-profile-test"], user="coder")
    return str(result.output.decode().strip()) if result.exit_code == 0 else ""


async def create(fetch: Any, user: str, groups: str, profile: str | None) -> tuple[int, Any]:
    body: dict[str, Any] = {"name": f"{profile}"}
    if profile is not None:
        body["profile"] = profile
    response = await fetch(
        "api", "code", "workspaces", method="POST", body=json.dumps(body),
        headers={USER_HEADER: user, GROUPS_HEADER: groups}, raise_error=False,
    )  # fmt: skip
    return response.code, json.loads(response.body)


@pytest.mark.parametrize("server_settings", [SETTINGS])
async def test_a_workspace_runs_its_profile_s_image_and_limits_and_keeps_them(
    profile_image: str, jp_fetch: Any, service: Any, docker_client: docker.DockerClient
) -> None:
    code, marked = await create(jp_fetch, "alice", "builders", "marked")
    assert (code, marked.get("profile")) == (201, "marked"), marked
    container = container_of(docker_client, marked)
    assert container.attrs["Config"]["Image"] == profile_image
    host = container.attrs["HostConfig"]
    assert (host["NanoCpus"], host["Memory"], host["PidsLimit"]) == (
        1_500_000_000,
        768 * 1024**2,
        300,
    )
    assert host["MemorySwap"] == 768 * 1024**2
    assert marker(container) == "marked"

    # The default profile: the default image, with its own limits.
    code, small = await create(jp_fetch, "alice", "builders", None)
    assert (code, small.get("profile")) == (201, "small"), small
    host = container_of(docker_client, small).attrs["HostConfig"]
    assert (host["NanoCpus"], host["Memory"], host["PidsLimit"]) == (
        500_000_000,
        256 * 1024**2,
        128,
    )
    assert marker(container_of(docker_client, small)) == ""

    # Gone behind the server's back: ensure makes it again from the workspace's profile.
    old_id = container.id
    container.remove(force=True)
    alice = Api(jp_fetch, "alice")

    async def missing() -> bool:
        _, described = await alice.call("GET", marked["id"])
        return bool(described["container"]["status"] == "missing")

    await wait_for(missing, timeout=10, interval=0.05)
    code, reply = await alice.call("POST", f"{marked['id']}/ensure")
    assert (code, reply["status"]) == (200, "created"), reply
    again = container_of(docker_client, marked)
    assert again.id != old_id
    assert again.attrs["Config"]["Image"] == profile_image
    assert again.attrs["HostConfig"]["NanoCpus"] == 1_500_000_000
    assert again.attrs["HostConfig"]["PidsLimit"] == 300
    assert marker(again) == "marked"
    assert (await alice.call("GET", marked["id"]))[1]["profile"] == "marked"


@pytest.mark.parametrize("server_settings", [SETTINGS])
async def test_a_restricted_profile_is_refused_to_others(
    profile_image: str, jp_fetch: Any, service: Any, docker_client: docker.DockerClient
) -> None:
    code, refused = await create(jp_fetch, "bob", "staff", "marked")
    assert code == 403
    assert refused["message"] == "You may not use the profile 'marked'."
    code, refused = await create(jp_fetch, "bob", "staff", "huge")
    assert (code, refused["field"]) == (400, "profile")
    # Nothing was made for bob.
    label = f"{OWNER_LABEL}=bob"
    assert docker_client.containers.list(all=True, filters={"label": label}) == []
    response = await jp_fetch(
        "api", "code", "profiles", headers={USER_HEADER: "bob", GROUPS_HEADER: "staff"}
    )
    assert [p["slug"] for p in json.loads(response.body)["profiles"]] == ["small"]
