"""Personal secrets against the real engine and image: a private repository over HTTP.

The git server (tests/http_git.py: git's http-backend behind a local server that wants a token)
listens on the test network's gateway, which workspaces reach only because the network policy
allows that one destination. A user whose token is a `git_host` secret clones and pushes; a user
without it cannot, and finds no trace of the other's token anywhere in their own workspace.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from .conftest import USER_HEADER, Api, HeaderIdentityProvider, ensure_internal_network, wait_for
from .http_git import HttpGitServer, serve_http_git
from .terminal_client import WsFetch, terminal

TOKEN = "glpat-" + secrets.token_urlsafe(24)


@pytest.fixture
def http_git(tmp_path: Path, docker_client: docker.DockerClient) -> Iterator[HttpGitServer]:
    network = ensure_internal_network(docker_client)
    gateway = network.attrs["IPAM"]["Config"][0]["Gateway"]
    with serve_http_git(tmp_path, gateway, TOKEN) as server:
        yield server


@pytest.fixture
def server_settings(http_git: HttpGitServer) -> dict[str, Any]:
    return {
        "ServerApp": {"identity_provider_class": HeaderIdentityProvider},
        "CodeWorkspacesApp": {"allowed_repo_schemes": ["https", "http"]},
        "NetworkPolicy": {"allowed_destinations": [http_git.host]},
    }


async def put_secret(
    jp_fetch: Callable[..., Any], user: str, name: str, body: dict[str, Any]
) -> int:
    response = await jp_fetch(
        "api", "code", "secrets", name,
        method="PUT", body=json.dumps(body), headers={USER_HEADER: user}, raise_error=False,
    )  # fmt: skip
    assert TOKEN not in response.body.decode()
    return int(response.code)


def as_coder(container: Any, script: str) -> str:
    """A new login shell of the workspace user, as a new terminal window would start."""
    result = container.exec_run(
        ["bash", "-lc", script], user="coder", environment={"TTYD_CREDENTIAL": ""}
    )
    return result.output.decode(errors="replace")  # type: ignore[no-any-return]


async def clone_status(container: Any) -> str:
    def status() -> str:
        result = container.exec_run(["cat", "/tmp/workspace-clone/status"], user="coder")
        return result.output.decode().strip() if result.exit_code == 0 else ""

    return str(await wait_for(status, timeout=120))


async def test_a_private_repository_clones_and_pushes_with_the_owners_token_only(
    jp_fetch: Callable[..., Any],
    jp_ws_fetch: WsFetch,
    service: Any,
    http_git: HttpGitServer,
    docker_client: docker.DockerClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    body = {"value": TOKEN, "git_host": http_git.host}
    assert await put_secret(jp_fetch, "alice", "GITLAB_TOKEN", body) == 201
    alice, bob = Api(jp_fetch, "alice"), Api(jp_fetch, "bob")
    hers = await alice.create(name="private", repo=http_git.url)
    container = docker_client.containers.get(hers["container_name"])
    assert await clone_status(container) == "ok", as_coder(
        container, "cat /tmp/workspace-clone/log"
    )
    assert "private repository" in as_coder(container, "cat ~/workspace/README.md")
    assert as_coder(container, 'printf %s "$GITLAB_TOKEN"') == TOKEN

    # A push from the terminal reaches the server with the same token, asked of no one.
    async with terminal(jp_ws_fetch, hers["id"], user="alice") as term:
        await term.read_until("$ ", timeout=120)
        term.type(
            "cd ~/workspace && echo change > pushed.txt && git add pushed.txt && "
            "git -c user.name=A -c user.email=a@example.com commit -qm push && "
            "git push -q origin HEAD:refs/heads/pushed && echo pushed-$((6*7))\r"
        )
        await term.read_until("pushed-42", timeout=120)
    assert "pushed" in http_git.branches()
    assert any(method == "POST" and "receive-pack" in path and ok for method, path, ok in
               http_git.requests)  # fmt: skip

    # Bob has no token: git's own message in his terminal, and no trace of Alice's anywhere.
    his = await bob.create(name="not mine", repo=http_git.url)
    theirs = docker_client.containers.get(his["container_name"])
    assert (await clone_status(theirs)).startswith("failed")
    async with terminal(jp_ws_fetch, his["id"], user="bob") as term:
        shown = await term.read_until("failed (git exit code", timeout=120)
    assert "terminal prompts disabled" in shown or "Authentication failed" in shown, shown
    trace = as_coder(
        theirs,
        "env; cat /run/workspace-secrets/* 2>&1; git config --list --show-origin; "
        "cat ~/.git-credentials ~/.bash_history 2>&1; grep -r . /tmp 2>/dev/null; "
        "printf 'protocol=http\\nhost=%s\\n\\n' " + http_git.host + " | git credential fill 2>&1",
    )
    assert TOKEN not in trace
    assert "GITLAB_TOKEN" not in trace

    # Kept out of the clone's config, the history, labels, inspect, logs and the store file.
    assert TOKEN not in as_coder(container, "cat ~/workspace/.git/config ~/.bash_history 2>&1")
    for each in (container, theirs):
        each.reload()
        assert TOKEN not in json.dumps(each.attrs)
        assert TOKEN not in each.logs().decode(errors="replace")
    db = Path(service.store.path)
    assert all(TOKEN.encode() not in p.read_bytes() for p in db.parent.glob(db.name + "*"))
    assert "personal secrets of alice" in caplog.text  # the server's log is captured
    assert TOKEN not in caplog.text


async def test_a_changed_secret_reaches_a_running_workspaces_new_shells(
    jp_fetch: Callable[..., Any], jp_ws_fetch: WsFetch, docker_client: docker.DockerClient,
    service: Any,
) -> None:  # fmt: skip
    alice = Api(jp_fetch, "alice")
    workspace = await alice.create(name="running")
    container = docker_client.containers.get(workspace["container_name"])
    assert as_coder(container, 'printf "[%s]" "${API_KEY-unset}"') == "[unset]"
    first, second = secrets.token_hex(16), secrets.token_hex(16)
    assert await put_secret(jp_fetch, "alice", "API_KEY", {"value": first}) == 201
    assert as_coder(container, 'printf "[%s]" "$API_KEY"') == f"[{first}]"
    assert await put_secret(jp_fetch, "alice", "API_KEY", {"value": second}) == 200
    async with terminal(jp_ws_fetch, workspace["id"], user="alice") as term:
        await term.read_until("$ ", timeout=120)
        term.type('echo "[$(printf %s "$API_KEY" | sha256sum | cut -c1-12)]"-$((6*7))\r')
        shown = await term.read_until("]-42", timeout=60)
    assert f"[{hashlib.sha256(second.encode()).hexdigest()[:12]}]" in shown
    # Deleted: gone from new shells; and a restart behind the server's back gets them again.
    response = await jp_fetch(
        "api", "code", "secrets", "API_KEY", method="DELETE", headers={USER_HEADER: "alice"}
    )
    assert response.code == 204
    assert as_coder(container, 'printf "[%s]" "${API_KEY-unset}"') == "[unset]"
    assert await put_secret(jp_fetch, "alice", "API_KEY", {"value": first}) == 201
    container.restart(timeout=5)
    assert (await alice.call("POST", f"{workspace['id']}/ensure"))[0] == 200
    assert as_coder(container, 'printf "[%s]" "$API_KEY"') == f"[{first}]"
    files = as_coder(
        container, "stat -c '%U:%G %a' /run/workspace-secrets /run/workspace-secrets/*"
    )
    assert files.split("\n")[:3] == ["root:coder 750", "root:coder 440", "root:coder 440"], files
