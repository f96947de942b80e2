"""A real JupyterHub on loopback: configurable-http-proxy, LocalProcessSpawner, real unix users.

The hub runs as root (it must, to start servers as other users); the code-workspaces service
runs as its own unix user, the only one in the `docker` group, or (service_user=None) as the
hub's own user, root. The environment comes from scripts/hub-env.sh (a virtual environment every
user can run).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import requests

from jupyter_popebot_code.backends.docker.manager import STORE_LABEL
from jupyter_popebot_code.core.store import WorkspaceStore

from .conftest import (
    ROOT,
    TEST_DISK_DIR,
    TEST_NETWORK,
    TEST_POOL,
    remove_labelled,
    remove_test_disks,
)
from .server_process import free_port

SERVICE = "code-workspaces"
# Unix users the tests create (and remove): short, and prefixed so they cannot be anyone's.
ALICE, BOB, SERVICE_USER = "pbh-alice", "pbh-bob", "pbh-codesvc"
# A hub admin who never starts a server, so needs no unix account.
BOSS = "pbh-boss"
DOCKER_SOCKET = "/var/run/docker.sock"
# The hub under a prefix, as many deployments are: URLs handed to pages must carry it.
BASE_URL = "/jhub/"
# Short, so the idle test is quick; tests that need a container running ensure it or type.
IDLE_TIMEOUT = 15


def hub_environment() -> Path:
    """Build (or find current) the hub environment with scripts/hub-env.sh."""
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "hub-env.sh")],
        capture_output=True, text=True, timeout=1800, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise AssertionError(f"scripts/hub-env.sh failed:\n{result.stderr[-4000:]}")
    return Path(result.stdout.strip().splitlines()[-1])


@contextmanager
def unix_users() -> Iterator[None]:
    """Two plain users and the service's user (in the docker group); removed afterwards."""
    names = (ALICE, BOB, SERVICE_USER)
    for name in names:
        _remove_user(name)  # left over by an interrupted run
    try:
        for name in (ALICE, BOB):
            subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", name], check=True)
        subprocess.run(
            ["useradd", "--create-home", "--shell", "/bin/bash", "--groups", "docker",
             SERVICE_USER],
            check=True,
        )  # fmt: skip
        yield
    finally:
        for name in names:
            _remove_user(name)


def _remove_user(name: str) -> None:
    if subprocess.run(["id", name], capture_output=True, check=False).returncode == 0:
        subprocess.run(["userdel", "--remove", name], capture_output=True, check=False)


@dataclass
class Hub:
    """A running hub: its public URL, an admin token, and helpers for its REST API."""

    url: str
    admin_token: str
    env_dir: Path
    work_dir: Path
    service_db: Path
    password: str
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def service_url(self) -> str:
        return f"{self.url}/services/{SERVICE}/"

    def hub_api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return requests.request(
            method,
            f"{self.url}/hub/api/{path}",
            headers={"Authorization": f"token {self.admin_token}"},
            timeout=60,
            **kwargs,
        )

    def token_for(self, user: str, scopes: list[str]) -> str:
        """A new API token of `user` holding `scopes`."""
        reply = self.hub_api("POST", f"users/{user}/tokens", json={"scopes": scopes})
        assert reply.status_code in (200, 201), reply.text
        return str(reply.json()["token"])

    def browser_login(self, user: str, next_path: str) -> requests.Response:
        """Log in as a browser does (form, cookies, OAuth redirects); answers the final page."""
        session = requests.Session()
        form = session.get(f"{self.url}/hub/login", timeout=30)
        xsrf = re.search(r'name="_xsrf" value="([^"]+)"', form.text)
        assert xsrf, form.text[:2000]
        page = session.post(
            f"{self.url}/hub/login",
            params={"next": next_path},
            data={"username": user, "password": self.password, "_xsrf": xsrf.group(1)},
            timeout=60,
        )
        assert page.status_code == 200, (page.url, page.status_code)
        return page

    def start_server(self, user: str) -> None:
        reply = self.hub_api("POST", f"users/{user}/server")
        assert reply.status_code in (201, 202), reply.text
        self.wait_server(user, ready=True)

    def server_ready(self, user: str) -> bool:
        reply = self.hub_api("GET", f"users/{user}")
        if reply.status_code != 200:
            return False
        server = (reply.json().get("servers") or {}).get("")
        return bool(server and server.get("ready"))

    def wait_server(self, user: str, ready: bool, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while self.server_ready(user) != ready:
            assert time.monotonic() < deadline, f"{user}'s server not ready={ready} in {timeout} s"
            time.sleep(0.5)

    def service(self, token: str, method: str, path: str = "", **kwargs: Any) -> requests.Response:
        """A call of the workspaces API through the proxy, as the token's owner."""
        return requests.request(
            method,
            f"{self.service_url}api/code/workspaces{path}",
            headers={"Authorization": f"token {token}"},
            timeout=120,
            **kwargs,
        )


def _config(
    hub_dir: Path,
    env_dir: Path,
    ports: dict[str, int],
    admin_token: str,
    password: str,
    service_user: str | None,
) -> str:
    venv = env_dir / "venv"
    user_option = f'user="{service_user}",' if service_user else ""
    return f"""
from jupyter_popebot_code.hub import configure_jupyterhub

c = get_config()
c.JupyterHub.bind_url = "http://127.0.0.1:{ports["public"]}{BASE_URL}"
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {ports["hub"]}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{ports["proxy_api"]}"
c.ConfigurableHTTPProxy.command = ["{env_dir}/proxy/node_modules/.bin/configurable-http-proxy"]
c.JupyterHub.db_url = "sqlite:///{hub_dir}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "{hub_dir}/jupyterhub_cookie_secret"
c.JupyterHub.pid_file = "{hub_dir}/jupyterhub.pid"
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = "{password}"
c.Authenticator.allowed_users = {{"{ALICE}", "{BOB}", "{BOSS}"}}
c.Authenticator.admin_users = {{"{BOSS}"}}
c.JupyterHub.spawner_class = "localprocess"
c.Spawner.cmd = ["{venv}/bin/jupyterhub-singleuser"]
c.Spawner.default_url = "/lab"
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120
c.Spawner.environment = {{"PATH": "{venv}/bin:/usr/local/bin:/usr/bin:/bin"}}

# The test's own admin: creates tokens, starts and deletes users, culls.
c.JupyterHub.services = [{{"name": "pbh-test-admin", "api_token": "{admin_token}"}}]
c.JupyterHub.load_roles = [{{
    "name": "pbh-test-admin",
    "services": ["pbh-test-admin"],
    "scopes": ["admin:users", "admin:servers", "tokens", "list:users", "read:users:activity"],
}}]

configure_jupyterhub(
    c,
    {user_option}
    port={ports["service"]},
    config_file="{hub_dir}/service_config.py",
)
"""


def _service_config(service_dir: Path, image: str, idle_timeout: float | None) -> str:
    idle = "" if idle_timeout is None else f"c.CodeWorkspacesApp.idle_timeout = {idle_timeout}"
    return f"""
c = get_config()
c.CodeWorkspacesApp.db_path = "{service_dir}/workspaces.sqlite"
{idle}
c.ContainerManager.image = "{image}"
c.ContainerManager.network = "{TEST_NETWORK}"
c.WorkspaceNetworks.pool = "{TEST_POOL}"
c.WorkspaceNetworks.internal = True
c.ContainerManager.disk_dir = "{TEST_DISK_DIR}"
c.HubSync.deleted_user_check_interval = 2
c.HubSync.activity_interval = 2
"""


@contextmanager
def running_hub(
    image: str,
    docker_client: docker.DockerClient,
    service_user: str | None = SERVICE_USER,
    idle_timeout: float | None = IDLE_TIMEOUT,
) -> Iterator[Hub]:
    """A hub whose service runs as `service_user` (None: the hub's user, root) with
    `idle_timeout` (None: the service's default)."""
    env_dir = hub_environment()
    hub_dir = Path(tempfile.mkdtemp(prefix="popebot-hub-test-"))
    hub_dir.chmod(0o755)  # the service's user reads its config file here
    service_dir = hub_dir / "service-data"
    ports = {name: free_port() for name in ("public", "hub", "proxy_api", "service")}
    admin_token = secrets.token_hex(16)
    password = secrets.token_urlsafe(12)
    hub = None
    process = None
    with unix_users():
        try:
            service_dir.mkdir(mode=0o700)
            if service_user:
                shutil.chown(service_dir, service_user, service_user)
            (hub_dir / "service_config.py").write_text(
                _service_config(service_dir, image, idle_timeout)
            )
            (hub_dir / "jupyterhub_config.py").write_text(
                _config(hub_dir, env_dir, ports, admin_token, password, service_user)
            )
            log = open(hub_dir / "jupyterhub.log", "ab")  # noqa: SIM115 (closed below)
            process = subprocess.Popen(
                [str(env_dir / "venv" / "bin" / "jupyterhub"), "-f", "jupyterhub_config.py",
                 "--debug"],
                cwd=hub_dir,
                env={"PATH": f"{env_dir}/venv/bin:/usr/local/bin:/usr/bin:/bin",
                     "HOME": os.environ.get("HOME", "/root"), "LANG": "C.UTF-8"},
                stdout=log, stderr=log, start_new_session=True,
            )  # fmt: skip
            hub = Hub(
                url=f"http://127.0.0.1:{ports['public']}{BASE_URL.rstrip('/')}",
                admin_token=admin_token,
                env_dir=env_dir,
                work_dir=hub_dir,
                service_db=service_dir / "workspaces.sqlite",
                password=password,
            )
            _wait_up(hub, process)
            yield hub
        finally:
            if process is not None:
                _stop(process)
                log.close()
            if hub is not None and hub.service_db.exists():
                _remove_workspaces(hub.service_db, docker_client)
            if os.environ.get("POPEBOT_KEEP_HUB_LOGS"):
                print(f"hub files kept in {hub_dir}")
            else:
                shutil.rmtree(hub_dir, ignore_errors=True)


def _wait_up(hub: Hub, process: subprocess.Popen[bytes]) -> None:
    """Until the hub answers through the proxy and the service answers through the hub."""
    deadline = time.monotonic() + 120
    log = hub.work_dir / "jupyterhub.log"
    while True:
        assert process.poll() is None, f"jupyterhub exited:\n{log.read_text()[-6000:]}"
        assert time.monotonic() < deadline, f"the hub did not start:\n{log.read_text()[-6000:]}"
        try:
            up = hub.hub_api("GET", "").status_code == 200
            # Without a token the service redirects to the hub's login: it is up.
            service = requests.get(hub.service_url, timeout=5, allow_redirects=False)
            if up and service.status_code in (302, 200):
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.5)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the hub, which stops the servers and the service it started; wait for it."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _remove_workspaces(db_path: Path, docker_client: docker.DockerClient) -> None:
    store = WorkspaceStore(str(db_path))
    label = f"{STORE_LABEL}={store.store_id}"
    store.close()
    remove_labelled(docker_client, label)
    for network in docker_client.networks.list(filters={"label": label}):
        network.remove()
    remove_test_disks()


def page_config(html: str) -> dict[str, Any]:
    """JupyterLab's page config, from the JSON script element of a /lab page."""
    start = html.index('id="jupyter-config-data"')
    start = html.index(">", start) + 1
    end = html.index("</script>", start)
    return json.loads(html[start:end])  # type: ignore[no-any-return]
