"""Part 'swarm': create → prompt and ensure (stopped → running), Swarm vs single engine, one run.

Opt-in (`--only swarm`): scripts/swarm-cluster.sh makes a swarm of the bench's own (a
Docker-in-Docker manager and two workers, `popebot-code-bench-swarm-*`) and the project's
registry; scripts/swarm-server.sh deploys the server image on the manager as the docs tell
operators to (an overlay per workspace, which the server joins, ttyd reached by service name; the
node firewall required on the workers), reached through its published port. The single-engine
server runs on the host (its containers on the bench's bridge network, ttyd reached by address).
Iterations alternate between the two, so drift on the machine hits both alike.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests
from websockets.sync.client import connect

from jupyter_popebot_code.backends.docker.manager import MANAGED_BY_LABEL

from . import overlay_bench, stats
from .report import table
from .server import BenchServer

ROOT = Path(__file__).resolve().parent.parent
CLUSTER_SCRIPT = ROOT / "scripts" / "swarm-cluster.sh"
SERVER_SCRIPT = ROOT / "scripts" / "swarm-server.sh"
# SWARM_PREFIX: a cluster of its own, so runs of other checkouts never meet.
PREFIX = os.environ.get("SWARM_PREFIX", "popebot-code-bench-swarm")
STORE_VOLUME = "jupyter-popebot-code-store"
PROMPT_TIMEOUT_S = 120.0
WORKSPACE_IMAGE = "jupyter-popebot-code-workspace:latest"
# The server image to deploy: build it from this checkout first (scripts/build-server-image.sh).
SERVER_IMAGE = os.environ.get("BENCH_SERVER_IMAGE", "jupyter-popebot-code-server:latest")


def _script(script: Path, *args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        ["bash", str(script), *args],
        capture_output=True,
        text=True,
        timeout=1800,
        env={**os.environ, **(env or {})},
    )
    if done.returncode != 0:
        raise RuntimeError(f"{script.name} {' '.join(args)}: {done.stderr[-2000:]}")
    return done.stdout


CLUSTER_ENV = {"SWARM_PREFIX": PREFIX, "SERVER_IMAGE": SERVER_IMAGE}


class DeployedServer:
    """The server scripts/swarm-server.sh runs on the manager, with BenchServer's API calls."""

    def __init__(self, settings: dict[str, str]) -> None:
        self.env = {
            "DOCKER_HOST": settings["SWARM_MANAGER_HOST"],
            "SERVER_IMAGE": settings["SWARM_SERVER_IMAGE"],
            "WORKSPACE_IMAGE": settings["SWARM_REGISTRY_IMAGE"],
            "FIREWALL_IMAGE": settings["SWARM_FIREWALL_IMAGE"],
            "REGISTRY_ADDRESS": settings["SWARM_REGISTRY_ADDRESS"],
        }
        self.ws_base_url = f"ws://{settings['SWARM_MANAGER_ADDRESS']}:8888/"
        self.base_url = f"http://{settings['SWARM_MANAGER_ADDRESS']}:8888/"
        self.token = ""
        self.http = requests.Session()

    def up(self) -> None:
        # As the single-engine bench server: the per-user running cap would refuse the creates.
        _script(
            SERVER_SCRIPT,
            "up",
            "--CodeWorkspacesApp.max_running_workspaces_per_user=0",
            env=self.env,
        )
        self.token = _script(SERVER_SCRIPT, "token", env=self.env).strip()

    def down(self) -> None:
        _script(SERVER_SCRIPT, "down", env=self.env)

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"token {self.token}"}
        return self.http.request(
            method, self.base_url + path, headers=headers, timeout=120, **kwargs
        )


@contextmanager
def _swarm_server(manager: docker.DockerClient, settings: dict[str, str]) -> Iterator[Any]:
    """The deployed server, from a fresh store; it, its store and its workspaces go after."""
    server = DeployedServer(settings)
    server.down()
    with contextlib.suppress(docker.errors.NotFound):
        manager.volumes.get(STORE_VOLUME).remove(force=True)
    try:
        server.up()
        yield server
    finally:
        server.down()
        for service in manager.services.list(filters={"label": MANAGED_BY_LABEL}):
            with contextlib.suppress(docker.errors.NotFound):
                service.remove()
        for config in manager.configs.list(filters={"label": MANAGED_BY_LABEL}):
            with contextlib.suppress(docker.errors.NotFound):
                config.remove()
        with contextlib.suppress(docker.errors.NotFound):
            manager.volumes.get(STORE_VOLUME).remove(force=True)


def _manager_dockerd_rss(client: docker.DockerClient, manager: str) -> Callable[[], float]:
    """The manager engine's dockerd resident memory (MiB), read from this host's /proc."""

    def rss() -> float:
        top = client.api.top(manager)
        pid_at = top["Titles"].index("PID")
        command_at = top["Titles"].index("CMD")
        [pid] = [row[pid_at] for row in top["Processes"] if row[command_at].startswith("dockerd")]
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS in dockerd's /proc status")

    return rss


def _prompt(server: Any, workspace_id: str) -> None:
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


def _create_to_prompt(server: Any) -> tuple[float, str]:
    started = time.perf_counter()
    created = server.api("POST", "api/code/workspaces", json={"name": "bench swarm", "repo": ""})
    if created.status_code != 201:
        raise RuntimeError(f"create answered {created.status_code}: {created.text}")
    workspace_id = str(created.json()["id"])
    _prompt(server, workspace_id)
    return time.perf_counter() - started, workspace_id


def _ensure_stopped(server: Any, workspace_id: str) -> float:
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
    _script(CLUSTER_SCRIPT, "up", env=CLUSTER_ENV)
    settings = dict(
        line.split("=", 1) for line in _script(CLUSTER_SCRIPT, "env", env=CLUSTER_ENV).split()
    )
    manager = docker.DockerClient(base_url=settings["SWARM_MANAGER_HOST"], timeout=120)
    try:
        with _swarm_server(manager, settings) as swarm:
            servers: dict[str, Any] = {"single engine": single, "swarm": swarm}
            samples: dict[str, dict[str, list[float]]] = {
                name: {"create_to_prompt": [], "ensure_stopped": []} for name in servers
            }
            made: dict[str, list[str]] = {name: [] for name in servers}
            nodes: set[str] = set()
            deadline = time.monotonic() + budget_s

            def each(step: Callable[[str, Any], None], count: int) -> None:
                for index in range(count):
                    order = list(servers.items())
                    for name, server in order if index % 2 == 0 else reversed(order):
                        step(name, server)
                    if time.monotonic() > deadline:
                        break

            def create(name: str, server: Any) -> None:
                seconds, workspace_id = _create_to_prompt(server)
                samples[name]["create_to_prompt"].append(seconds)
                made[name].append(workspace_id)

            def ensure(name: str, server: Any) -> None:
                workspace_id = made[name][len(samples[name]["ensure_stopped"]) % len(made[name])]
                samples[name]["ensure_stopped"].append(_ensure_stopped(server, workspace_id))

            each(create, creates)
            each(ensure, ensures)
            for workspace_id in made["swarm"]:
                service = manager.api.inspect_service(f"code-workspace-{workspace_id}")
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
            # On the manager, with an image it has (the server's).
            results["overlays"] = overlay_bench.bench_overlays(
                manager,
                settings["SWARM_SERVER_IMAGE"],
                overlays,
                overlay_block,
                budget_s,
                _manager_dockerd_rss(client, settings["SWARM_MANAGER"]),
            )
        return results
    finally:
        manager.close()
        _script(CLUSTER_SCRIPT, "down", env=CLUSTER_ENV)


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
