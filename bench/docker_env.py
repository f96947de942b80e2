"""The bench's Docker side: its network, seeded workspaces, and removal of all it made."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docker
import docker.errors

from jupyter_popebot_code.backends.docker.manager import (
    MANAGED_BY_LABEL,
    STORE_LABEL,
    TTYD_PORT,
    workspace_labels,
)
from jupyter_popebot_code.core.store import _COLUMNS, Workspace, WorkspaceStore

# POPEBOT_BENCH_NETWORK: another network, so two benches on one engine never sweep each other's.
NETWORK = os.environ.get("POPEBOT_BENCH_NETWORK", "popebot-code-bench")
BENCH_LABEL = "org.jupyter.popebot-code.bench"
# Few threads: the engine serializes most of the work anyway, and the machine has 2 cores.
SEED_THREADS = 4


def docker_client() -> docker.DockerClient:
    client = docker.from_env(timeout=120)
    client.ping()
    return client


def ensure_network(client: docker.DockerClient) -> None:
    """The bench's own bridge network, so cleanup can never touch a real workspace."""
    if not client.networks.list(names=[NETWORK]):
        client.networks.create(
            NETWORK, driver="bridge", labels={MANAGED_BY_LABEL: "bench", BENCH_LABEL: "1"}
        )


def seed_store(
    db_path: Path, owner: str, count: int, prefix: str = "bench workspace"
) -> tuple[str, list[Workspace]]:
    """Put `count` workspace records straight into the server's store; every 10th is starred."""
    store = WorkspaceStore(str(db_path))
    try:
        workspaces = []
        for index in range(count):
            workspace = Workspace.new(owner, f"{prefix} {index}", "", "")
            if index % 10 == 0:
                workspace = dataclasses.replace(workspace, starred=True)
            store.insert(workspace)
            workspaces.append(workspace)
        return store.store_id, workspaces
    finally:
        store.close()


def seed_owners(
    db_path: Path, owner: str, owners: int, per_owner: int
) -> tuple[str, list[Workspace]]:
    """`owners` owners with `per_owner` records each, `owner` among them, in one transaction.

    Returns the store id and every record, `owner`'s first. Inserted in bulk: 100,000 single
    inserts (a transaction each) would take minutes and measure nothing the server does.
    """
    store = WorkspaceStore(str(db_path))
    try:
        names = [owner] + [f"owner-{index:05d}" for index in range(1, owners)]
        workspaces = []
        for name in names:
            for index in range(per_owner):
                workspace = Workspace.new(name, f"bench workspace {index}", "", "")
                if index % 10 == 0:
                    workspace = dataclasses.replace(workspace, starred=True)
                workspaces.append(workspace)
        rows = []
        for workspace in workspaces:
            values = dataclasses.asdict(workspace)
            values["starred"] = int(workspace.starred)
            rows.append(values)
        placeholders = ", ".join(f":{column}" for column in _COLUMNS)
        sql = f"INSERT INTO code_workspaces ({', '.join(_COLUMNS)}) VALUES ({placeholders})"
        with store._transaction() as db:
            db.executemany(sql, rows)
        return store.store_id, workspaces
    finally:
        store.close()


def seed_containers(
    client: docker.DockerClient, image: str, store_id: str, workspaces: list[Workspace]
) -> float:
    """A created (not started) container per record, labelled as the server labels its own.

    Returns the seconds it took. Not started: 1,000 running shells would measure the machine.
    """

    def create(workspace: Workspace) -> None:
        labels = {**workspace_labels(workspace, store_id), BENCH_LABEL: "1"}
        client.api.create_container(
            image,
            name=workspace.container_name,
            labels=labels,
            environment={"TTYD_CREDENTIAL": workspace.ttyd_credential},
            host_config=client.api.create_host_config(network_mode=NETWORK, init=True),
        )

    started = time.perf_counter()
    with ThreadPoolExecutor(SEED_THREADS) as pool:
        for index, _ in enumerate(pool.map(create, workspaces), 1):
            if index % 1000 == 0:
                print(f"  {index} containers in {time.perf_counter() - started:.0f} s", flush=True)
    return time.perf_counter() - started


def remove_containers(client: docker.DockerClient, names: list[str]) -> None:
    def remove(name: str) -> None:
        with contextlib.suppress(docker.errors.NotFound):
            client.api.remove_container(name, force=True)

    with ThreadPoolExecutor(SEED_THREADS) as pool:
        list(pool.map(remove, names))


def cleanup(client: docker.DockerClient, store_ids: set[str]) -> dict[str, int]:
    """Remove every container and volume of the given stores and of the bench network, then it."""
    names: set[str] = set()
    for store_id in store_ids:
        found = client.api.containers(all=True, filters={"label": [f"{STORE_LABEL}={store_id}"]})
        names.update(c["Names"][0].lstrip("/") for c in found)
    # Leftovers of an earlier, interrupted run are recognised by the bench network.
    for container in client.api.containers(all=True, filters={"network": [NETWORK]}):
        names.add(container["Names"][0].lstrip("/"))
    remove_containers(client, sorted(names))
    volumes: set[str] = set()
    for store_id in store_ids:
        found = client.api.volumes(filters={"label": [f"{STORE_LABEL}={store_id}"]})
        volumes.update(v["Name"] for v in (found.get("Volumes") or []))
    # Workspace volumes are named like their containers.
    listed = client.api.volumes().get("Volumes") or []
    volumes.update(v["Name"] for v in listed if v["Name"] in names)
    for volume in sorted(volumes):
        with contextlib.suppress(docker.errors.NotFound):
            client.api.remove_volume(volume, force=True)
    removed_network = 0
    for network in client.networks.list(names=[NETWORK]):
        network.reload()
        if not network.attrs.get("Containers"):
            network.remove()
            removed_network += 1
    return {"containers": len(names), "volumes": len(volumes), "networks": removed_network}


def container_ip(client: docker.DockerClient, container_name: str) -> str:
    attrs = client.api.inspect_container(container_name)
    address = attrs["NetworkSettings"]["Networks"][NETWORK]["IPAddress"]
    if not address:
        raise RuntimeError(f"{container_name} has no address on {NETWORK}")
    return str(address)


def wait_for_port(host: str, port: int = TTYD_PORT, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            socket.create_connection((host, port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def start_plain_terminal(
    client: docker.DockerClient, image: str, store_id: str, workspace: Workspace
) -> None:
    """The workspace image with ttyd serving a plain login shell (no tmux) for this record.

    tmux renders output into its screen and, when a client falls behind, sends a redraw instead
    of every byte, so a stream through it measures tmux, not the transport. Without it, the
    relay, straight-to-ttyd and terminado paths all carry the same pty bytes.
    """
    labels = {**workspace_labels(workspace, store_id), BENCH_LABEL: "1"}
    client.api.create_container(
        image,
        name=workspace.container_name,
        labels=labels,
        environment={"TTYD_CREDENTIAL": workspace.ttyd_credential},
        entrypoint=["/bin/sh", "-c"],
        command=['exec ttyd --writable --port 7681 --credential "$TTYD_CREDENTIAL" bash -l'],
        host_config=client.api.create_host_config(network_mode=NETWORK, init=True),
    )
    client.api.start(workspace.container_name)
