"""What each owner's containers get in their environment: secrets reach only their owner."""

from __future__ import annotations

import asyncio
from typing import Any

import docker
import pytest

from .conftest import Api, HeaderIdentityProvider

MULTI_USER = {"ServerApp": {"identity_provider_class": HeaderIdentityProvider}}
OPERATORS_TOKEN = "sk-ant-oat01-operators-own"


def env_of(docker_client: docker.DockerClient, workspace: dict[str, Any]) -> dict[str, str]:
    config = docker_client.containers.get(workspace["container_name"]).attrs["Config"]
    return dict(item.split("=", 1) for item in config["Env"])


async def looked_up(owner: str, workspace_id: str) -> dict[str, str]:
    """An owner_env_hook as a vault lookup would be: asynchronous, per owner."""
    await asyncio.sleep(0)
    return {"VAULT_TOKEN": f"vault-{owner}"} if owner == "alice" else {}


@pytest.fixture
def operators_token(monkeypatch: pytest.MonkeyPatch) -> None:
    """The server's own token, as an operator's environment would hold it."""
    monkeypatch.setenv("CLAUDE_CODE_OAUTH_TOKEN", OPERATORS_TOKEN)


@pytest.mark.parametrize(
    "server_settings",
    [
        {
            **MULTI_USER,
            "ContainerManager": {
                "extra_env": {"POPEBOT_TEST": "1", "SHARED_SETTING": "everyone"},
                "owner_env": {"alice": {"GH_TOKEN": "alice-gh"}, "bob": {"GH_TOKEN": "bob-gh"}},
                "owner_env_hook": looked_up,
            },
        }
    ],
)
async def test_secrets_reach_only_their_owners_containers(
    operators_token: None, api: Api, docker_client: docker.DockerClient
) -> None:
    alice = env_of(docker_client, await api.as_user("alice").create())
    bob = env_of(docker_client, await api.as_user("bob").create())
    carol = env_of(docker_client, await api.as_user("carol").create())
    assert (alice["GH_TOKEN"], alice["VAULT_TOKEN"]) == ("alice-gh", "vault-alice")
    assert bob["GH_TOKEN"] == "bob-gh"
    assert "VAULT_TOKEN" not in bob
    assert "GH_TOKEN" not in carol
    assert {alice["SHARED_SETTING"], bob["SHARED_SETTING"], carol["SHARED_SETTING"]} == {"everyone"}
    # Many users: the server's own token is not handed out unless the operator says so.
    assert all("CLAUDE_CODE_OAUTH_TOKEN" not in env for env in (alice, bob, carol))


@pytest.mark.parametrize(
    "server_settings",
    [{**MULTI_USER, "ContainerManager": {"claude_code_oauth_token": "shared-on-purpose"}}],
)
async def test_the_operator_can_share_a_claude_token_on_purpose(
    api: Api, docker_client: docker.DockerClient
) -> None:
    for owner in ("alice", "bob"):
        env = env_of(docker_client, await api.as_user(owner).create())
        assert env["CLAUDE_CODE_OAUTH_TOKEN"] == "shared-on-purpose"


async def test_a_single_user_server_gives_its_owner_the_servers_claude_token(
    operators_token: None, api: Api, docker_client: docker.DockerClient
) -> None:
    env = env_of(docker_client, await api.create())
    assert env["CLAUDE_CODE_OAUTH_TOKEN"] == OPERATORS_TOKEN


def reserved_override(owner: str, workspace_id: str) -> dict[str, str]:
    return {"TTYD_CREDENTIAL": "coder:guessable", "REPO_URL": "git://elsewhere/x.git"}


def broken_hook(owner: str, workspace_id: str) -> Any:
    return ["not", "a", "dict"]


@pytest.mark.parametrize(
    "server_settings", [{"ContainerManager": {"owner_env_hook": reserved_override}}]
)
async def test_owner_env_cannot_replace_what_the_server_sets(
    api: Api, service: Any, docker_client: docker.DockerClient
) -> None:
    workspace = await api.create()
    env = env_of(docker_client, workspace)
    stored = service.store.get(workspace["id"])
    assert env["TTYD_CREDENTIAL"] == stored.ttyd_credential
    assert env["REPO_URL"] == ""


@pytest.mark.parametrize("server_settings", [{"ContainerManager": {"owner_env_hook": broken_hook}}])
async def test_a_broken_hook_is_a_clear_error_and_leaves_nothing(
    api: Api, service: Any, docker_client: docker.DockerClient
) -> None:
    code, reply = await api.call("POST", body={"name": "x"})
    assert code == 500
    assert "owner_env_hook must return a dict of strings" in reply["message"]
    assert await api.call("GET") == (200, {"workspaces": []})
    label = f"org.jupyter.popebot-code.store={service.store.store_id}"
    assert docker_client.containers.list(all=True, filters={"label": label}) == []
    assert docker_client.volumes.list(filters={"label": label}) == []
