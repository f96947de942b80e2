"""Part 'swarm': create → prompt and ensure (stopped → running), Swarm vs single engine, one run.

Opt-in (`--only swarm`): scripts/swarm-cluster.sh makes this engine a swarm manager with two
Docker-in-Docker workers and the project's registry, and the part makes it leave again at the end
when the script made it a manager. Two servers run side by side: the single-engine one on the
host (its containers on the bench's bridge network, ttyd reached by address), the Swarm one in a
sidecar container's network namespace, as shipped: an overlay per workspace, which the server
joins (ttyd reached by service name), and the node firewall required on the workers. Iterations
alternate between the two, so drift on the machine hits both alike.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import docker
import docker.errors
from websockets.sync.client import connect

from jupyter_popebot_code.backends.docker.manager import MANAGED_BY_LABEL, STORE_LABEL
from jupyter_popebot_code.core.store import WorkspaceStore
from jupyter_popebot_code.network.swarm_policy import FIREWALL_SERVICE

from . import overlay_bench, stats
from .report import table
from .server import BenchServer

ROOT = Path(__file__).resolve().parent.parent
CLUSTER_SCRIPT = ROOT / "scripts" / "swarm-cluster.sh"
FRONT = "popebot-code-bench-swarm-front"
SIDECAR = "popebot-code-bench-swarm-sidecar"
WORKER_PREFIX = "popebot-swarm-node-"
PROMPT_TIMEOUT_S = 120.0
WORKSPACE_IMAGE = "jupyter-popebot-code-workspace:latest"


def _script(*args: str) -> str:
    done = subprocess.run(
        ["bash", str(CLUSTER_SCRIPT), *args], capture_output=True, text=True, timeout=1800
    )
    if done.returncode != 0:
        raise RuntimeError(f"swarm-cluster.sh {' '.join(args)}: {done.stderr[-2000:]}")
    return done.stdout


def _networks(client: docker.DockerClient) -> None:
    if not [n for n in client.networks.list(names=[FRONT]) if n.name == FRONT]:
        client.networks.create(FRONT, internal=True, labels={MANAGED_BY_LABEL: "bench"})


@contextmanager
def _swarm_server(
    client: docker.DockerClient, workdir: Path, settings: dict[str, str]
) -> Iterator[BenchServer]:
    """A server with SwarmContainerManager inside a sidecar, joining each workspace's overlay."""
    with contextlib.suppress(docker.errors.NotFound):
        client.containers.get(SIDECAR).remove(force=True)
    sidecar = client.containers.run(
        WORKSPACE_IMAGE,
        entrypoint=["sleep", "infinity"],
        name=SIDECAR,
        network=FRONT,
        detach=True,
    )
    server: BenchServer | None = None
    try:
        sidecar.reload()
        address = sidecar.attrs["NetworkSettings"]["Networks"][FRONT]["IPAddress"]
        launcher = (
            "unshare", "--mount", "--propagation", "private", "sh", "-c",
            'pid=$1; shift; mount --bind "$0" /etc/resolv.conf && '
            'exec nsenter --net=/proc/$pid/ns/net --uts=/proc/$pid/ns/uts "$@"',
            sidecar.attrs["ResolvConfPath"], str(sidecar.attrs["State"]["Pid"]),
        )  # fmt: skip
        workdir.mkdir(parents=True, exist_ok=True)
        image = settings["SWARM_REGISTRY_IMAGE"]
        server = BenchServer(
            workdir,
            FRONT,
            image,
            (
                "--CodeWorkspacesApp.container_manager_class="
                "jupyter_popebot_code.backends.swarm.SwarmContainerManager",
                f"--SwarmContainerManager.image={image}",
                "--NetworkPolicy.firewall=iptables",
                f"--SwarmNetworkPolicy.node_firewall_image={settings['SWARM_FIREWALL_IMAGE']}",
            ),
            launcher=launcher,
            host=address,
        )
        server.start()
        yield server
    finally:
        if server is not None:
            server.stop()
            _remove_swarm_store(client, server.db_path)
        sidecar.remove(force=True)


def _remove_swarm_store(client: docker.DockerClient, db_path: Path) -> None:
    if not db_path.exists():
        return
    store = WorkspaceStore(str(db_path))
    label = f"{STORE_LABEL}={store.store_id}"
    store.close()
    for service in client.services.list(filters={"label": label}):
        service.remove()
    for config in client.configs.list(filters={"label": label}):
        config.remove()
    for worker in client.containers.list(filters={"name": WORKER_PREFIX}):
        subprocess.run(
            ["docker", "exec", worker.name, "sh", "-c",
             f"docker volume ls -q --filter label={label} | xargs -r docker volume rm -f"],
            capture_output=True, timeout=120, check=False,
        )  # fmt: skip


def _prompt(server: BenchServer, workspace_id: str) -> None:
    """Open the workspace's terminal through the relay and wait for a command's output."""
    url = f"{server.ws_base_url}api/ws/code/{workspace_id}?token={server.token}"
    with connect(url, subprotocols=["tty"], open_timeout=60, close_timeout=10) as terminal:
        terminal.send(json.dumps({"AuthToken": "", "columns": 120, "rows": 30}).encode())
        terminal.send(b"0echo ready-$((40+2))\r")
        seen = ""
        deadline = time.monotonic() + PROMPT_TIMEOUT_S
        while "ready-42" not in seen:
            frame = terminal.recv(timeout=max(0.1, deadline - time.monotonic()))
            if isinstance(frame, bytes) and frame[:1] == b"0":
                seen += frame[1:].decode(errors="replace")


def _create_to_prompt(server: BenchServer) -> tuple[float, str]:
    started = time.perf_counter()
    created = server.api("POST", "api/code/workspaces", json={"name": "bench swarm", "repo": ""})
    if created.status_code != 201:
        raise RuntimeError(f"create answered {created.status_code}: {created.text}")
    workspace_id = str(created.json()["id"])
    _prompt(server, workspace_id)
    return time.perf_counter() - started, workspace_id


def _ensure_stopped(server: BenchServer, workspace_id: str) -> float:
    stopped = server.api("POST", f"api/code/workspaces/{workspace_id}/stop")
    stopped.raise_for_status()
    started = time.perf_counter()
    ensured = server.api("POST", f"api/code/workspaces/{workspace_id}/ensure")
    elapsed = time.perf_counter() - started
    if ensured.status_code != 200 or ensured.json()["status"] != "started":
        raise RuntimeError(f"ensure answered {ensured.status_code}: {ensured.text}")
    return elapsed


def bench_swarm(
    client: docker.DockerClient,
    single: BenchServer,
    workdir: Path,
    creates: int,
    ensures: int,
    budget_s: float,
    overlays: int = 0,
    overlay_block: int = 100,
) -> dict[str, Any]:
    """Create → prompt and ensure stopped → running on both backends, interleaved.

    With `overlays`, then the capacity rows (overlay_bench) on the same manager.
    """
    _script("up")
    settings = dict(line.split("=", 1) for line in _script("env").split())
    try:
        _networks(client)
        with _swarm_server(client, workdir / "swarm", settings) as swarm:
            servers = {"single engine": single, "swarm": swarm}
            samples: dict[str, dict[str, list[float]]] = {
                name: {"create_to_prompt": [], "ensure_stopped": []} for name in servers
            }
            made: dict[str, list[str]] = {name: [] for name in servers}
            nodes: set[str] = set()
            deadline = time.monotonic() + budget_s

            def each(step: Callable[[str, BenchServer], None], count: int) -> None:
                for index in range(count):
                    order = list(servers.items())
                    for name, server in order if index % 2 == 0 else reversed(order):
                        step(name, server)
                    if time.monotonic() > deadline:
                        break

            def create(name: str, server: BenchServer) -> None:
                seconds, workspace_id = _create_to_prompt(server)
                samples[name]["create_to_prompt"].append(seconds)
                made[name].append(workspace_id)

            def ensure(name: str, server: BenchServer) -> None:
                workspace_id = made[name][len(samples[name]["ensure_stopped"]) % len(made[name])]
                samples[name]["ensure_stopped"].append(_ensure_stopped(server, workspace_id))

            each(create, creates)
            each(ensure, ensures)
            for workspace_id in made["swarm"]:
                service = client.api.inspect_service(f"code-workspace-{workspace_id}")
                nodes.add(service["Spec"]["Labels"]["org.jupyter.popebot-code.node"])
            for name, server in servers.items():
                for workspace_id in made[name]:
                    server.api("DELETE", f"api/code/workspaces/{workspace_id}")
        summary = {
            name: {row: stats.summarize(values) for row, values in rows.items()}
            for name, rows in samples.items()
        }
        ratios = {
            row: stats.ratio(
                summary["swarm"][row]["p50_ms"], summary["single engine"][row]["p50_ms"]
            )
            for row in ("create_to_prompt", "ensure_stopped")
        }
        results = {"backends": summary, "ratio_p50": ratios, "swarm_nodes_used": len(nodes)}
        if overlays:
            print(f"swarm: one container attached to {overlays} overlays ...", flush=True)
            results["overlays"] = overlay_bench.bench_overlays(
                client, WORKSPACE_IMAGE, overlays, overlay_block, budget_s
            )
        return results
    finally:
        for network in client.networks.list(names=[FRONT]):
            if network.name == FRONT:
                with contextlib.suppress(docker.errors.NotFound):
                    network.remove()
        with contextlib.suppress(docker.errors.NotFound):
            client.api.remove_service(FIREWALL_SERVICE)
        _script("down")


def swarm_table(results: dict[str, Any]) -> str:
    rows = []
    labels = {
        "create_to_prompt": "create → prompt (POST create, relay, `echo` answered)",
        "ensure_stopped": "ensure stopped → running (POST ensure answering `started`)",
    }
    for row, label in labels.items():
        single = results["backends"]["single engine"][row]
        swarm = results["backends"]["swarm"][row]
        ratio = results["ratio_p50"][row]
        rows.append(
            [
                label,
                f"{single['p50_ms']:.0f} / {single['p90_ms']:.0f} (n={single['n']})",
                f"{swarm['p50_ms']:.0f} / {swarm['p90_ms']:.0f} (n={swarm['n']})",
                f"{ratio:.2f}" if ratio is not None else "-",
            ]
        )
    return (
        table(
            ["row", "single engine p50 / p90 ms", "swarm p50 / p90 ms", "swarm / single (p50)"],
            rows,
        )
        + f"\nswarm workspaces spread over {results['swarm_nodes_used']} worker nodes"
        + (
            "\n\n" + overlay_bench.overlay_table(results["overlays"])
            if "overlays" in results
            else ""
        )
    )
