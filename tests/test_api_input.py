"""REST input hygiene against the real engine: credentials in URLs, scheme case, deep JSON."""

from __future__ import annotations

from typing import Any

import docker
import pytest

from jupyter_popebot_code.backends.docker.manager import STORE_LABEL

from .conftest import Api, GitServer, wait_for


def containers_of(client: docker.DockerClient, service: Any) -> list[Any]:
    label = f"{STORE_LABEL}={service.store.store_id}"
    return client.containers.list(all=True, filters={"label": label})


# On the container's own loopback (port 9, closed): were one accepted, its clone would fail at
# once without sending anything off this machine.
@pytest.mark.parametrize(
    "repo",
    [
        "https://alice:hunter2@127.0.0.1:9/team/repo.git",
        "https://ghp_hunter2@127.0.0.1:9/team/repo.git",
        "ssh://git:hunter2@127.0.0.1:9/team/repo.git",
    ],
)
async def test_create_with_a_credential_in_the_url_creates_nothing(
    api: Api, service: Any, docker_client: docker.DockerClient, repo: str
) -> None:
    code, reply = await api.call("POST", body={"name": "secret", "repo": repo})
    assert code == 400, reply
    assert reply["field"] == "repo"
    assert "credential helper" in reply["message"]
    assert "hunter2" not in reply["message"]
    assert await api.call("GET") == (200, {"workspaces": []})
    assert containers_of(docker_client, service) == []


async def test_upper_case_scheme_is_stored_and_cloned_in_lower_case(
    api: Api, service: Any, docker_client: docker.DockerClient, git_server: GitServer
) -> None:
    """git compares GIT_ALLOW_PROTOCOL case-sensitively: `GIT://` would be refused in the box."""
    upper = "GIT" + git_server.url[len("git") :]
    workspace = await api.create(name="upper", repo=upper)
    assert workspace["repo"] == git_server.url
    container = docker_client.containers.get(workspace["container_name"])
    env = dict(item.split("=", 1) for item in container.attrs["Config"]["Env"])
    assert env["REPO_URL"] == git_server.url

    def clone_status() -> str:
        result = container.exec_run(["cat", "/tmp/workspace-clone/status"], user="coder")
        return result.output.decode().strip() if result.exit_code == 0 else ""

    status = await wait_for(clone_status, timeout=60)
    log = container.exec_run(["cat", "/tmp/workspace-clone/log"]).output.decode()
    assert status == "ok", log
    readme = container.exec_run(["cat", "/home/coder/workspace/README.md"]).output.decode()
    assert readme.strip() == "on main"


@pytest.mark.parametrize(
    "raw_body",
    [
        pytest.param(b"[" * 16000, id="16000-open-brackets"),
        pytest.param(b'{"name": ' + b"[" * 7000 + b"]" * 7000 + b"}", id="deep-valid-json"),
        pytest.param(b'{"name": ' + b'{"a":' * 2000 + b"1" + b"}" * 2001, id="deep-objects"),
    ],
)
async def test_deeply_nested_json_is_a_400(
    api: Api, service: Any, docker_client: docker.DockerClient, raw_body: bytes
) -> None:
    assert len(raw_body) < 16 * 1024  # under the size limit: the nesting is what is refused
    for method, path in (("POST", ""), ("PATCH", "some-id")):
        code, reply = await api.call(method, path, raw_body=raw_body)
        assert code == 400, (method, reply)
        assert "nested" in reply["message"]
    assert await api.call("GET") == (200, {"workspaces": []})
    assert containers_of(docker_client, service) == []
