"""Shared fixtures: a Jupyter server with the extension, the real Docker engine and image.

Two tiers (docs/testing.md): every test whose fixtures reach the engine (ENGINE_FIXTURES) is
marked `docker` at collection; `pytest -m "not docker"` runs the rest with no engine at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ipaddress
import json
import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import pytest
from docker.models.networks import Network
from jupyter_server.auth.identity import IdentityProvider, User
from tornado.httpclient import HTTPResponse

from jupyter_popebot_code.backends.docker.manager import MANAGED_BY_LABEL, STORE_LABEL
from jupyter_popebot_code.network.firewall import ICC_OPTION, IptablesFirewall

from .docker_proxy import DockerSocketProxy

pytest_plugins = ["pytest_jupyter.jupyter_server"]

ROOT = Path(__file__).resolve().parent.parent
IMAGE = os.environ.get("POPEBOT_TEST_IMAGE", "jupyter-popebot-code-workspace:latest")
# Tests keep their containers on their own network, so cleanup can never touch a real workspace;
# POPEBOT_TEST_NETWORK lets two checkouts run their suites on one engine side by side.
TEST_NETWORK = os.environ.get("POPEBOT_TEST_NETWORK", "popebot-code-test")
SIDECAR_PREFIX = f"{TEST_NETWORK}-sidecar-"


def _test_pool() -> str:
    """A /22 of 10.160.0.0/11 picked by the test network's name: 64 workspace networks each."""
    index = int.from_bytes(hashlib.sha256(TEST_NETWORK.encode()).digest()[:4]) % 2048
    return str(ipaddress.IPv4Network((int(ipaddress.IPv4Address("10.160.0.0")) + index * 1024, 22)))


# The pool of the workspaces' own networks (WorkspaceNetworks.pool), one per test network, so
# two suites on one engine never share one and clean-up finds exactly this suite's networks.
TEST_POOL = os.environ.get("POPEBOT_TEST_POOL") or _test_pool()
# What every server of the suite is told: its workspaces' networks are internal like TEST_NETWORK.
TEST_NETWORK_ARGS = (f"--WorkspaceNetworks.pool={TEST_POOL}", "--WorkspaceNetworks.internal=True")
# Disk images of workspaces with a disk limit (ContainerManager.disk_dir), one folder per network.
TEST_DISK_DIR = f"/var/tmp/{TEST_NETWORK}-disks"
USER_HEADER = "X-Test-User"
# Fixtures that talk to the real engine; a test that uses any of them (even indirectly) is `docker`.
ENGINE_FIXTURES = frozenset({"docker_client", "workspace_image", "engine", "test_network"})
# tests/test_workspace_image.py runs bare containers on a network of its own, named likewise.
IMAGE_TEST_NETWORK = f"{TEST_NETWORK}-image"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    docker_mark = pytest.mark.docker
    for item in items:
        if ENGINE_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(docker_mark)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """Offline guard: while an engine test's containers still exist, none may have a route out."""
    result = yield
    client = getattr(item, "funcargs", {}).get("docker_client")
    if isinstance(client, docker.DockerClient):
        routed = _containers_with_a_route_out(client)
        assert not routed, f"test containers on networks that are not internal: {routed}"
    return result


class HeaderIdentityProvider(IdentityProvider):
    """Test identity: the user named in a header (like a proxy login), else the token's user."""

    def get_user(self, handler: Any) -> User | None:  # type: ignore[override]
        name = handler.request.headers.get(USER_HEADER)
        if name:
            # A header is a bearer credential like a token: no XSRF cookie is involved.
            handler._token_authenticated = True
            return User(username=name)
        return super().get_user(handler)  # type: ignore[return-value]


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    """The real engine; a missing engine is a failure, never a skip."""
    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except docker.errors.DockerException as err:
        pytest.fail(f"No Docker engine: {err}. Run scripts/ensure-docker.sh first.")
    _remove_test_containers(client)
    remove_test_disks()
    ensure_internal_network(client)
    yield client
    _remove_test_containers(client)
    remove_test_disks()
    _remove_test_firewall(client)
    client.close()


def remove_test_disks() -> None:
    """Unmount and delete this network's disk images (the tests run as root on the Docker host)."""
    folder = Path(TEST_DISK_DIR)
    if not folder.is_dir():
        return
    # Mount points first: an image file is deleted once no loop device holds it.
    for entry in sorted(folder.iterdir(), key=lambda path: not path.is_dir()):
        if entry.is_dir():
            if os.path.ismount(entry):
                subprocess.run(["umount", str(entry)], check=True)
            subprocess.run(["chattr", "-i", str(entry)], check=True)
            entry.rmdir()
        else:
            entry.unlink()


def _remove_test_firewall(client: docker.DockerClient) -> None:
    """The servers leave their rules installed on purpose; the test network's go with the run."""
    firewall = IptablesFirewall()
    for network in client.networks.list(names=[TEST_NETWORK]):
        if network.name == TEST_NETWORK:
            firewall.remove(network.id)
    # Chains of test networks removed during the run (their bridges are gone).
    firewall.remove_stale({network.id for network in client.networks.list()})


def remove_container(client: docker.DockerClient, container_id: str) -> None:
    """Force-remove a container and wait until it is gone.

    Gone already (NotFound) is what we want; one whose removal is in progress (409: the server
    or an interrupted run removing it) is waited for, so its volume can go next.
    """
    try:
        client.api.remove_container(container_id, force=True)
    except docker.errors.NotFound:
        return
    except docker.errors.APIError as err:
        if err.status_code != 409:
            raise
    for _ in range(300):
        try:
            client.api.inspect_container(container_id)
        except docker.errors.NotFound:
            return
        time.sleep(0.1)
    raise AssertionError(f"container {container_id[:12]} was never removed")


def remove_labelled(client: docker.DockerClient, label: str) -> None:
    """Every container, then every volume, with this label (a test's store)."""
    for container in client.containers.list(all=True, sparse=True, filters={"label": label}):
        remove_container(client, container.id)
    for volume in client.volumes.list(filters={"label": label}):
        with contextlib.suppress(docker.errors.NotFound):
            volume.remove(force=True)


def _remove_test_containers(client: docker.DockerClient) -> None:
    # A container listed here may be gone by the time it is removed (its test's own clean-up,
    # or the server deleting it): gone is what we want. Sparse lists, because a full list
    # inspects each container and fails when one goes between the list and its inspect.
    for sidecar in client.containers.list(all=True, sparse=True, filters={"name": SIDECAR_PREFIX}):
        remove_container(client, sidecar.id)
    pool_networks = {n.name for n in suite_pool_networks(client)}
    managed = client.containers.list(all=True, sparse=True, filters={"label": MANAGED_BY_LABEL})
    for container in managed:
        networks = set(container.attrs["NetworkSettings"]["Networks"] or {})
        if networks & (pool_networks | {TEST_NETWORK}):
            remove_container(client, container.id)
            name = container.attrs["Names"][0].lstrip("/")
            for volume in client.volumes.list(filters={"name": name}):
                with contextlib.suppress(docker.errors.NotFound):
                    volume.remove(force=True)
    for network in suite_pool_networks(client):
        with contextlib.suppress(docker.errors.NotFound):
            network.remove()


def suite_pool_networks(client: docker.DockerClient) -> list[Network]:
    """The workspace networks of this suite: ours, with a subnet in TEST_POOL."""
    pool = ipaddress.IPv4Network(TEST_POOL)
    found = []
    for network in client.networks.list(filters={"label": MANAGED_BY_LABEL}):
        subnets = [c.get("Subnet", "") for c in network.attrs.get("IPAM", {}).get("Config") or []]
        if any(":" not in s and ipaddress.IPv4Network(s).subnet_of(pool) for s in subnets if s):
            found.append(network)
    return found


def _network_named(client: docker.DockerClient, name: str) -> Network | None:
    # The engine's name filter matches substrings: pick the exact name.
    for network in client.networks.list(names=[name]):
        if network.name == name:
            network.reload()
            return network
    return None


def ensure_internal_network(client: docker.DockerClient) -> Network:
    """The test network, as an `internal` bridge: containers reach its gateway and nothing else.

    Inter-container traffic is off as on the networks the server makes.

    The git daemon listens on the gateway, so clones work; any other address is unreachable.
    A non-internal one (made by ContainerManager after a test removed it, or by an older suite)
    is replaced; it holds no container by now (_remove_test_containers ran, or the test did it).
    """
    network = _network_named(client, TEST_NETWORK)
    if (
        network is not None
        and network.attrs.get("Internal")
        and (network.attrs.get("Options") or {}).get(ICC_OPTION) == "false"
    ):
        return network
    if network is not None:
        attached = list(network.attrs.get("Containers") or {})
        if attached:
            pytest.fail(f"{TEST_NETWORK} is not as expected and has containers: {attached}")
        network.remove()
    network = client.networks.create(
        TEST_NETWORK,
        driver="bridge",
        internal=True,
        options={ICC_OPTION: "false"},  # as the server makes it (NetworkPolicy)
        labels={MANAGED_BY_LABEL: "tests"},
    )
    network.reload()
    return network


def _containers_with_a_route_out(client: docker.DockerClient) -> list[str]:
    """This suite's networks that are not internal, and containers on them or on routed ones."""
    internal: dict[str, bool] = {}

    def is_internal(name: str) -> bool:
        if name not in internal:
            found = _network_named(client, name)
            internal[name] = bool(found and found.attrs.get("Internal"))
        return internal[name]

    routed = []
    pool_networks = [n.name for n in suite_pool_networks(client) if n.name is not None]
    for network_name in (TEST_NETWORK, IMAGE_TEST_NETWORK, *pool_networks):
        network = _network_named(client, network_name)
        if network is None:
            continue
        if not is_internal(network_name):
            routed.append(f"network {network_name}")
        for container_id in network.attrs.get("Containers") or {}:
            try:
                container = client.containers.get(container_id)
            except docker.errors.NotFound:
                continue  # removed meanwhile
            for name in container.attrs["NetworkSettings"]["Networks"] or {}:
                if not is_internal(name):
                    routed.append(f"{container.name} on {name}")
    return routed


@pytest.fixture(scope="session")
def test_network(docker_client: docker.DockerClient) -> Network:
    """The internal network every server of the suite puts its workspace containers on."""
    return ensure_internal_network(docker_client)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[DockerSocketProxy]:
    """A Docker socket in front of the real engine that the test can cut and restore."""
    proxy = DockerSocketProxy(tmp_path / "docker.sock")
    proxy.start()
    yield proxy
    proxy.close()


@pytest.fixture(scope="session")
def workspace_image(docker_client: docker.DockerClient) -> str:
    """The workspace image, built (or found current) by scripts/build-image.sh."""
    try:
        result = subprocess.run(
            ["bash", str(ROOT / "scripts" / "build-image.sh")],
            # The tag the tests use is the tag the script builds (POPEBOT_TEST_IMAGE).
            env={**os.environ, "WORKSPACE_IMAGE": IMAGE},
            capture_output=True,
            text=True,
            timeout=3600,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("scripts/build-image.sh did not finish within an hour")
    if result.returncode != 0:
        pytest.fail(f"scripts/build-image.sh failed:\n{result.stderr[-4000:]}")
    docker_client.images.get(IMAGE)
    return IMAGE


@pytest.fixture
def server_settings() -> dict[str, Any]:
    """Per-test overrides of the extension's options, read by jp_server_config."""
    return {}


@pytest.fixture
def jp_server_config(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    workspace_image: str,
    test_network: Network,
    server_settings: dict[str, Any],
) -> dict[str, Any]:
    """A server on the real engine (tests/unit/conftest.py overrides this for the fast tier)."""
    config: dict[str, Any] = {
        "ServerApp": {"jpserver_extensions": {"jupyter_popebot_code": True}},
        "CodeWorkspacesApp": {"db_path": str(tmp_path / "workspaces.sqlite")},
        "ContainerManager": {
            "image": workspace_image,
            "network": TEST_NETWORK,
            "extra_env": {"POPEBOT_TEST": "1"},
            "disk_dir": TEST_DISK_DIR,
            # Unset, a multi-user server (these are) gives every volume a 10g disk image: a
            # helper container per start. tests/test_disk_limits.py tests limits and the default.
            "disk_limit": "",
        },
        # Each workspace's own network: in this suite's pool, internal like TEST_NETWORK.
        "WorkspaceNetworks": {"pool": TEST_POOL, "internal": True},
    }
    if "git_server" in request.fixturenames:
        # The git daemon listens on the gateway, which the firewall blocks unless allowed.
        git: GitServer = request.getfixturevalue("git_server")
        allowed = [git.base_url.removeprefix("git://")]
        config["NetworkPolicy"] = {"allowed_destinations": allowed}
    for section, values in server_settings.items():
        config.setdefault(section, {}).update(values)
    return config


@pytest.fixture
def service(jp_serverapp: Any, docker_client: docker.DockerClient) -> Iterator[Any]:
    """The running server's WorkspaceService; its containers and volumes go with the test."""
    service = jp_serverapp.web_app.settings["jupyter_popebot_code"].service
    yield service
    label = f"{STORE_LABEL}={service.store.store_id}"
    remove_labelled(docker_client, label)
    for network in docker_client.networks.list(filters={"label": label}):
        with contextlib.suppress(docker.errors.NotFound):
            network.remove()
    remove_test_disks()


@dataclass
class GitServer:
    """A real `git daemon` serving `repo.git`, with `main` and `branch` holding FEATURE.txt."""

    base_url: str
    branch: str
    feature_text: str

    @property
    def url(self) -> str:
        return f"{self.base_url}/repo.git"


@contextmanager
def serve_git_repository(
    root: Path, listen: str, branch: str = "feature", feature_text: str = "on feature"
) -> Iterator[GitServer]:
    """Create a repository under `root` and serve it with `git daemon` on address `listen`."""
    source, served = root / "source", root / "served"
    git = ["git", "-c", "user.name=Test", "-c", "user.email=test@example.com"]

    def run(*args: str) -> None:
        subprocess.run([*git, *args], check=True, timeout=30)

    run("init", "-q", "-b", "main", str(source))
    (source / "README.md").write_text("on main\n")
    run("-C", str(source), "add", ".")
    run("-C", str(source), "commit", "-qm", "main")
    run("-C", str(source), "checkout", "-qb", branch)
    (source / "FEATURE.txt").write_text(feature_text + "\n")
    run("-C", str(source), "add", ".")
    run("-C", str(source), "commit", "-qm", "feature")
    run("clone", "-q", "--bare", str(source), str(served / "repo.git"))
    with socket.socket() as probe:
        probe.bind((listen, 0))
        port = probe.getsockname()[1]
    daemon = subprocess.Popen(
        ["git", "daemon", "--reuseaddr", "--export-all", f"--base-path={served}",
         f"--listen={listen}", f"--port={port}", str(served)]
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection((listen, port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or daemon.poll() is not None:
                    raise
                time.sleep(0.1)
        yield GitServer(f"git://{listen}:{port}", branch, feature_text)
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)


@pytest.fixture
def git_server(tmp_path: Path, docker_client: docker.DockerClient) -> Iterator[GitServer]:
    """A git server on the test network's gateway: the one place workspace containers can reach.

    Every repository a started container clones in the suite is this one (tests must never
    reach another host); repository forms naming other hosts are checked in the fast tier.
    """
    # Not the session's Network object: a test may have replaced the network since.
    network = ensure_internal_network(docker_client)
    gateway = network.attrs["IPAM"]["Config"][0]["Gateway"]
    with serve_git_repository(tmp_path, gateway) as server:
        yield server


class Api:
    """A small client of the REST API through jp_fetch, answering (status, JSON)."""

    def __init__(self, fetch: Callable[..., Any], user: str | None = None) -> None:
        self._fetch = fetch
        self.user = user

    def as_user(self, user: str) -> Api:
        return Api(self._fetch, user)

    async def call(
        self, method: str, path: str = "", body: Any = None, raw_body: bytes | None = None
    ) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json"}
        if self.user:
            headers[USER_HEADER] = self.user
        if raw_body is None and body is not None:
            raw_body = json.dumps(body).encode()
        if raw_body is None and method in ("POST", "PATCH", "PUT"):
            raw_body = b""
        parts = ["api", "code", "workspaces", *filter(None, path.split("/"))]
        response: HTTPResponse = await self._fetch(
            *parts, method=method, body=raw_body, headers=headers, raise_error=False
        )
        payload = json.loads(response.body) if response.body else None
        return response.code, payload

    async def create(self, name: str = "Test", repo: str = "", branch: str = "") -> dict[str, Any]:
        code, workspace = await self.call(
            "POST", body={"name": name, "repo": repo, "branch": branch}
        )
        assert code == 201, workspace
        return workspace  # type: ignore[no-any-return]


@pytest.fixture
def api(jp_fetch: Callable[..., Any], service: Any) -> Api:
    return Api(jp_fetch)


async def wait_for(
    predicate: Callable[[], Any], timeout: float = 60.0, interval: float = 0.25
) -> Any:
    """Poll a (possibly async) predicate until it is truthy; fail after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(interval)
