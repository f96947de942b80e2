"""A real JupyterHub with the code-workspaces service: isolation, Docker only in the service.

Two real unix users outside the `docker` group, their servers started by LocalProcessSpawner,
everything through configurable-http-proxy on loopback with the users' own API tokens.
"""

from __future__ import annotations

import json
import logging
import os
import pwd
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import docker
import pytest
import requests
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from jupyter_popebot_code.backends.docker.manager import ContainerManager
from jupyter_popebot_code.core.service import WorkspaceService
from jupyter_popebot_code.core.store import Workspace, WorkspaceStore, volume_name
from jupyter_popebot_code.core.validation import WorkspaceValidator
from jupyter_popebot_code.errors import HubError
from jupyter_popebot_code.hub.sync import HubSync

from .conftest import TEST_NETWORK
from .hub_fixture import (
    ALICE,
    BASE_URL,
    BOB,
    BOSS,
    DOCKER_SOCKET,
    IDLE_TIMEOUT,
    SERVICE,
    SERVICE_USER,
    Hub,
    page_config,
    running_hub,
)
from .preview_client import start_app

pytestmark = pytest.mark.timeout(900)

ACCESS = f"access:services!service={SERVICE}"
# Connecting to the Docker socket, as a user's own code would.
DOCKER_PROBE = (
    "import socket; s = socket.socket(socket.AF_UNIX); "
    f"s.connect({DOCKER_SOCKET!r}); print('DOCKER-' + 'REACHED')"
)


@pytest.fixture(scope="module")
def hub(workspace_image: str, docker_client: docker.DockerClient) -> Iterator[Hub]:
    if os.geteuid() != 0:
        pytest.fail("the hub tests create unix users and run JupyterHub as root")
    with running_hub(workspace_image, docker_client) as running:
        for user in (ALICE, BOB):
            running.start_server(user)
        running.tokens = {
            ALICE: running.token_for(ALICE, [ACCESS, f"access:servers!user={ALICE}"]),
            BOB: running.token_for(BOB, [ACCESS]),
            BOSS: running.token_for(BOSS, [ACCESS]),
        }
        yield running


def workspace_of(hub: Hub, user: str) -> dict[str, Any]:
    """One of the user's workspaces: the first listed, or a new one (tests can run alone)."""
    listed = hub.service(hub.tokens[user], "GET").json()["workspaces"]
    if listed:
        return listed[0]  # type: ignore[no-any-return]
    created = hub.service(hub.tokens[user], "POST", json={"name": f"{user}'s"})
    assert created.status_code == 201, created.text
    return created.json()  # type: ignore[no-any-return]


def ws_url(hub: Hub, workspace_id: str) -> str:
    return f"{hub.service_url.replace('http', 'ws', 1)}api/ws/code/{workspace_id}"


@contextmanager
def open_terminal(
    hub: Hub, workspace_id: str, token: str, in_query: bool
) -> Iterator[ClientConnection]:
    """The relay through the proxy, with the token as a browser (?token=) or a script sends it."""
    if in_query:
        # Browsers send Sec-Fetch-Mode: websocket, which the hub's auth requires for ?token=.
        url, headers = f"{ws_url(hub, workspace_id)}?token={token}", {"Sec-Fetch-Mode": "websocket"}
    else:
        url, headers = ws_url(hub, workspace_id), {"Authorization": f"token {token}"}
    with connect(url, subprotocols=["tty"], additional_headers=headers, open_timeout=60) as ws:
        ws.send(json.dumps({"AuthToken": "", "columns": 80, "rows": 24}).encode())
        yield ws


def read_until(ws: ClientConnection, needle: str, timeout: float = 60) -> str:
    seen, deadline = "", time.monotonic() + timeout
    while needle not in seen:
        frame = ws.recv(timeout=max(0.1, deadline - time.monotonic()))
        if isinstance(frame, bytes) and frame[:1] == b"0":
            seen += frame[1:].decode("utf-8", "replace")
    return seen


def refused_status(hub: Hub, workspace_id: str, token: str, in_query: bool) -> int:
    with pytest.raises(InvalidStatus) as refused, open_terminal(hub, workspace_id, token, in_query):
        pass
    return refused.value.response.status_code


def test_only_the_service_can_use_docker(hub: Hub) -> None:
    for user in (ALICE, BOB):
        groups = subprocess.run(["id", "-nG", user], capture_output=True, text=True).stdout
        assert "docker" not in groups.split()
        probe = subprocess.run(
            ["runuser", "-u", user, "--", str(hub.env_dir / "venv/bin/python"), "-c", DOCKER_PROBE],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert "PermissionError" in probe.stderr, probe
    # The service runs as its own user, the one in the docker group.
    owners = {
        int(os.stat(f"/proc/{pid}").st_uid)
        for pid in os.listdir("/proc")
        if pid.isdigit() and _cmdline(pid).count("jupyter_popebot_code.hub")
    }
    assert owners == {pwd.getpwnam(SERVICE_USER).pw_uid}


def _cmdline(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def test_a_users_own_server_is_a_client_without_docker(hub: Hub) -> None:
    token = hub.tokens[ALICE]
    headers = {"Authorization": f"token {token}"}
    base = f"{hub.url}/user/{ALICE}/"
    # Client mode: the user's server serves no workspaces and tells the page where they are.
    assert (
        requests.get(f"{base}api/code/workspaces", headers=headers, timeout=30).status_code == 404
    )
    lab = requests.get(f"{base}lab", headers=headers, timeout=60)
    assert lab.status_code == 200, lab.text[:500]
    config = page_config(lab.text)
    assert config["codeWorkspacesServiceUrl"] == f"{BASE_URL}services/{SERVICE}/"
    assert config["hubUser"] == ALICE

    # The user's own terminal (JupyterLab's, through the proxy) cannot open the Docker socket.
    created = requests.post(f"{base}api/terminals", headers=headers, timeout=30)
    assert created.status_code == 200, created.text
    name = created.json()["name"]
    url = f"{base.replace('http', 'ws', 1)}terminals/websocket/{name}"
    with connect(url, additional_headers=headers, open_timeout=30) as ws:
        ws.send(json.dumps(["set_size", 24, 300]))
        # Markers the shell computes, so the echoed command line never matches them.
        ws.send(json.dumps(["stdin", f'python3 -c "{DOCKER_PROBE}"; echo PROBE-$((40+2))\r']))
        seen, deadline = "", time.monotonic() + 60
        while "PROBE-42" not in seen:
            message = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if message[0] == "stdout":
                seen += message[1]
        assert "PermissionError" in seen
        assert "DOCKER-REACHED" not in seen
    requests.delete(f"{base}api/terminals/{name}", headers=headers, timeout=30)


def test_the_page_token_of_a_users_jupyterlab_can_use_the_service(hub: Hub) -> None:
    """What the front end does in client mode: the page's own hub token, from a browser login."""
    lab = hub.browser_login(ALICE, f"{BASE_URL}user/{ALICE}/lab")
    assert lab.url.endswith(f"/user/{ALICE}/lab"), lab.url
    config = page_config(lab.text)
    token = config["token"]
    assert token
    assert config["codeWorkspacesServiceUrl"] == f"{BASE_URL}services/{SERVICE}/"
    mine = workspace_of(hub, ALICE)
    listed = hub.service(token, "GET")
    assert listed.status_code == 200, listed.text
    assert mine["id"] in {ws["id"] for ws in listed.json()["workspaces"]}
    # The WebSocket as a browser opens it: ?token= with Sec-Fetch-Mode: websocket.
    with open_terminal(hub, mine["id"], token, in_query=True) as ws:
        ws.send(b"0echo page-$((7*6))\r")
        read_until(ws, "page-42")


def test_jupyterlab_through_the_hub_in_chromium(hub: Hub) -> None:
    """Each user logs in through the hub's page in Chromium, creates a workspace from the launcher
    tile of their own JupyterLab and types in its terminal; screenshots go to test-artifacts/ui/.

    Before the test that deletes a user from the hub (tests of a module run in file order).
    """
    labextension = Path(__file__).resolve().parent.parent / "labextension"
    result = subprocess.run(
        [
            str(labextension / "node_modules" / ".bin" / "playwright"),
            "test",
            "--config",
            "ui-tests/playwright.hub.config.ts",
        ],
        cwd=labextension,
        env={
            **os.environ,
            "HUB_URL": f"{hub.url}/",
            "HUB_USERS": f"{ALICE},{BOB}",
            "HUB_PASSWORD": hub.password,
            "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1",
        },
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "2 passed" in result.stdout, result.stdout[-2000:]


def test_each_user_sees_only_their_own_workspaces(hub: Hub) -> None:
    alice, bob = hub.tokens[ALICE], hub.tokens[BOB]
    created = hub.service(alice, "POST", json={"name": "alice's"})
    assert created.status_code == 201, created.text
    mine = created.json()
    assert hub.service(bob, "POST", json={"name": "bob's"}).status_code == 201

    listed = hub.service(bob, "GET").json()["workspaces"]
    names = [ws["name"] for ws in listed]
    # Bob's own (this test's, and any an earlier test made), nothing of Alice's.
    assert "bob's" in names
    assert not [name for name in names if "alice" in name], names
    assert mine["id"] not in {ws["id"] for ws in listed}
    for method, path in (("GET", ""), ("POST", "/stop"), ("POST", "/ensure"), ("DELETE", "")):
        answer = hub.service(bob, method, f"/{mine['id']}{path}")
        assert answer.status_code == 404, (method, path, answer.text)
    assert hub.service(alice, "GET", f"/{mine['id']}").status_code == 200
    # No token, or a token without the access scope: nothing.
    assert requests.get(f"{hub.service_url}api/code/workspaces", timeout=30).status_code in (
        302,
        403,
    )
    no_access = hub.token_for(BOB, [f"read:users:name!user={BOB}"])
    assert hub.service(no_access, "GET").status_code == 403


def test_secrets_live_in_the_service_under_the_hub_user(
    hub: Hub, docker_client: docker.DockerClient
) -> None:
    def secrets(user: str, method: str, name: str = "", **kwargs: Any) -> requests.Response:
        return requests.request(
            method,
            f"{hub.service_url}api/code/secrets/{name}",
            headers={"Authorization": f"token {hub.tokens[user]}"},
            timeout=60,
            **kwargs,
        )

    workspace = workspace_of(hub, ALICE)
    value = "hub-secret-" + os.urandom(8).hex()
    put = secrets(ALICE, "PUT", "HUB_TOKEN", json={"value": value})
    assert put.status_code in (200, 201), put.text
    assert value not in put.text
    assert [s["name"] for s in secrets(ALICE, "GET").json()["secrets"]] == ["HUB_TOKEN"]
    assert secrets(BOB, "GET").json() == {"secrets": []}
    assert secrets(BOB, "DELETE", "HUB_TOKEN").status_code == 404
    assert hub.service(hub.tokens[ALICE], "POST", f"/{workspace['id']}/ensure").status_code == 200
    container = docker_client.containers.get(workspace["container_name"])
    shell = container.exec_run(
        ["bash", "-lc", 'printf %s "$HUB_TOKEN"'], user="coder", environment={"TTYD_CREDENTIAL": ""}
    )
    assert shell.output.decode() == value
    assert secrets(ALICE, "DELETE", "HUB_TOKEN").status_code == 204


def test_the_service_answers_nothing_but_workspaces(hub: Hub) -> None:
    headers = {"Authorization": f"token {hub.tokens[ALICE]}"}
    for method, path in (
        ("GET", "api/contents"),
        ("POST", "api/kernels"),
        ("GET", "api/sessions"),
        ("POST", "api/terminals"),
    ):
        answer = requests.request(method, f"{hub.service_url}{path}", headers=headers, timeout=30)
        assert answer.status_code in (403, 404), (path, answer.status_code)


def test_the_relay_through_the_hub(hub: Hub) -> None:
    alice, bob = hub.tokens[ALICE], hub.tokens[BOB]
    workspace = workspace_of(hub, ALICE)
    assert refused_status(hub, workspace["id"], bob, in_query=True) == 403
    assert refused_status(hub, workspace["id"], bob, in_query=False) == 403
    for in_query in (True, False):
        with open_terminal(hub, workspace["id"], alice, in_query) as ws:
            ws.send(b"0echo hello-$((6*7))\r")
            read_until(ws, "hello-42")


def test_previews_through_the_hub(hub: Hub, docker_client: docker.DockerClient) -> None:
    alice, bob = hub.tokens[ALICE], hub.tokens[BOB]
    workspace = workspace_of(hub, ALICE)
    assert hub.service(alice, "POST", f"/{workspace['id']}/ensure").status_code == 200
    start_app(docker_client, workspace["container_name"], 8080)
    ports = hub.service(alice, "GET", f"/{workspace['id']}/ports").json()
    url = next(p["url"] for p in ports["ports"] if p["port"] == 8080)
    assert url.startswith(f"{BASE_URL}services/{SERVICE}/code/preview/{workspace['id']}/")
    origin = hub.url.removesuffix(BASE_URL.rstrip("/"))
    assert hub.service(bob, "GET", f"/{workspace['id']}/ports").status_code == 404

    def get(token: str | None, mode: str) -> requests.Response:
        headers = {"Sec-Fetch-Mode": mode}
        if token:
            headers["Authorization"] = f"token {token}"
        return requests.get(f"{origin}{url}headers", headers=headers, timeout=60)

    page = get(alice, "navigate")
    assert page.status_code == 200, page.text
    seen = page.json()
    assert seen["url"] == "/headers"
    assert "authorization" not in seen["headers"]
    assert get(bob, "navigate").status_code == 403
    # The sandboxed page's own requests carry no hub cookie: the key admits them.
    anonymous = get(None, "no-cors")
    assert anonymous.status_code == 200, anonymous.text[:3000]
    assert get(None, "navigate").status_code == 401


def test_idle_workspaces_stop_and_unattended_output_keeps_one_running(
    hub: Hub, docker_client: docker.DockerClient
) -> None:
    alice = hub.tokens[ALICE]
    agent, prompt = (
        hub.service(alice, "POST", json={"name": name}).json() for name in ("agent", "prompt")
    )
    with open_terminal(hub, agent["id"], alice, in_query=False) as ws:
        ws.send(b"0while true; do echo tick-$((1+1)); sleep 1; done\r")
        read_until(ws, "tick-2")
    with open_terminal(hub, prompt["id"], alice, in_query=False) as ws:
        ws.send(b"0echo ready-$((2+2))\r")
        read_until(ws, "ready-4")
    # Checked every IDLE_TIMEOUT / 4 s: stopped within the timeout plus a check, plus slack.
    deadline = time.monotonic() + IDLE_TIMEOUT + 30
    while docker_client.containers.get(prompt["container_name"]).status != "exited":
        assert time.monotonic() < deadline, "the idle workspace was not stopped"
        time.sleep(0.5)
    time.sleep(5)
    assert docker_client.containers.get(agent["container_name"]).status == "running"
    # Stopped, not removed: the next ensure starts it again.
    ensured = hub.service(alice, "POST", f"/{prompt['id']}/ensure")
    assert (ensured.status_code, ensured.json()["status"]) == (200, "started")
    for workspace in (agent, prompt):  # the owner's own stop
        stopped = hub.service(alice, "POST", f"/{workspace['id']}/stop")
        assert (stopped.status_code, stopped.json()["status"]) == (200, "stopped")


def test_hub_admins_see_and_stop_every_workspace(hub: Hub, docker_client: Any) -> None:
    boss, alice = hub.tokens[BOSS], hub.tokens[ALICE]
    for user in (ALICE, BOB):
        workspace_of(hub, user)
    assert hub.service(alice, "GET", params={"all": "true"}).status_code == 403
    answer = hub.service(boss, "GET", params={"all": "true"})
    assert answer.status_code == 200, answer.text
    owners = {ws["owner"] for ws in answer.json()["workspaces"]}
    assert owners == {ALICE, BOB}
    bobs = next(ws for ws in answer.json()["workspaces"] if ws["owner"] == BOB)
    stopped = hub.service(boss, "POST", f"/{bobs['id']}/stop")
    assert (stopped.status_code, stopped.json()["status"]) == (200, "stopped")
    assert docker_client.containers.get(bobs["container_name"]).status == "exited"


def server_activity_age(hub: Hub, user: str) -> float:
    """Seconds since the hub's last_activity of the user's server."""
    model = hub.hub_api("GET", f"users/{user}").json()
    stamp = model["servers"][""]["last_activity"].replace("Z", "+00:00")
    return time.time() - datetime.fromisoformat(stamp).timestamp()


def test_terminal_typing_is_the_users_activity_for_the_culler(hub: Hub) -> None:
    """jupyterhub-idle-culler culls bob's idle server, not alice's: she types in a workspace."""
    alice = hub.tokens[ALICE]
    workspace = workspace_of(hub, ALICE)
    timeout = 20
    n = 0

    def type_a_line(ws: ClientConnection) -> None:
        nonlocal n
        ws.send(f"0echo typed-{n}\r".encode())
        read_until(ws, f"typed-{n}")
        n += 1
        time.sleep(1)

    with open_terminal(hub, workspace["id"], alice, in_query=False) as ws:
        # The service reports alice's typing (every HubSync.activity_interval = 2 s) as her
        # server's activity, though she never uses the server itself.
        deadline = time.monotonic() + 30
        while server_activity_age(hub, ALICE) > 5:
            assert time.monotonic() < deadline, "the hub never heard of alice's typing"
            type_a_line(ws)
        culler = subprocess.Popen(
            [str(hub.env_dir / "venv" / "bin" / "python"), "-m", "jupyterhub_idle_culler",
             f"--url={hub.url}/hub/api", f"--timeout={timeout}", "--cull-every=3"],
            env={**os.environ, "JUPYTERHUB_API_TOKEN": hub.admin_token},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 90
            while hub.server_ready(BOB):
                assert time.monotonic() < deadline, "the culler never culled bob's idle server"
                type_a_line(ws)
            # Bob's is gone; alice, typing all along, keeps hers through more culls.
            for _ in range(timeout // 2):
                type_a_line(ws)
            assert hub.server_ready(ALICE)
            assert server_activity_age(hub, ALICE) < 10
        finally:
            culler.terminate()
            culler.wait(timeout=30)


def test_deleting_a_hub_user_removes_their_containers(
    hub: Hub, docker_client: docker.DockerClient
) -> None:
    for user in (ALICE, BOB):
        workspace_of(hub, user)
    everything = hub.service(hub.tokens[BOSS], "GET", params={"all": "true"}).json()["workspaces"]
    bobs = [ws for ws in everything if ws["owner"] == BOB]
    alices = [ws for ws in everything if ws["owner"] == ALICE]
    assert bobs
    assert alices
    reply = hub.hub_api("DELETE", f"users/{BOB}")
    assert reply.status_code == 204, reply.text

    # Each workspace goes in turn: container, volume (a disk image is unmounted first), record.
    deadline = time.monotonic() + 60
    while True:
        listed = hub.service(hub.tokens[BOSS], "GET", params={"all": "true"}).json()
        owners = {ws["owner"] for ws in listed["workspaces"]}
        containers_left = [ws for ws in bobs if _exists(docker_client, ws["container_name"])]
        if owners == {ALICE} and not containers_left:
            break
        assert time.monotonic() < deadline, f"bob's workspaces were not removed: {owners}"
        time.sleep(0.5)
    for ws in bobs:
        with pytest.raises(docker.errors.NotFound):
            docker_client.volumes.get(volume_name(ws["id"]))
    for ws in alices:
        docker_client.containers.get(ws["container_name"])  # still there (maybe idle-stopped)


def _exists(docker_client: docker.DockerClient, name: str) -> bool:
    try:
        docker_client.containers.get(name)
    except docker.errors.NotFound:
        return False
    return True


@pytest.mark.parametrize("keep_data", [False, True])
async def test_clean_up_needs_a_token_that_can_see_users(
    hub: Hub, tmp_path: Any, keep_data: bool
) -> None:
    """A 404 proves a deletion only to a token that may list and read users; others do nothing."""
    store = WorkspaceStore(str(tmp_path / "workspaces.sqlite"))
    ghost = Workspace.new("pbh-never-existed", "ghost's", "", "")
    alices = Workspace.new(ALICE, "alice's", "", "")
    for workspace in (ghost, alices):
        store.insert(workspace)
    service = WorkspaceService(
        store=store,
        containers=ContainerManager(network=TEST_NETWORK),
        validator=WorkspaceValidator("https://example.invalid/{repo}.git", ("https",)),
        log=logging.getLogger("test"),
    )
    try:
        # Alice's token may read only alice: to it every other user is a 404.
        blind = HubSync(service, api_url=f"{hub.url}/hub/api", api_token=hub.tokens[ALICE])
        with pytest.raises(HubError, match="lacks list:users"):
            await blind.remove_deleted()
        assert store.get(ghost.id) is not None

        sync = HubSync(
            service,
            api_url=f"{hub.url}/hub/api",
            api_token=hub.admin_token,
            keep_deleted_users_data=keep_data,
        )
        assert await sync.remove_deleted() == ["pbh-never-existed"]
        assert (store.get(ghost.id) is not None) == keep_data
        assert store.get(alices.id) is not None
    finally:
        await service.close()
