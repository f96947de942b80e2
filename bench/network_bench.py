"""Part 'network': create → prompt with a network per workspace vs one shared network, one run.

Two servers on the host, interleaved so drift on the machine hits both alike: the bench's main
server as shipped (each workspace on a network of its own, WorkspaceNetworks), and a peer with
`NetworkPolicy.isolate_workspaces = False`, whose workspaces share one bridge as every
workspace did before networks per workspace (inter-container traffic on costs nothing at
create). Rows: POST create until a command's output comes back through the relay, and DELETE
(which now removes the workspace's network too).
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

import docker
import docker.errors

from jupyter_popebot_code.core.store import WorkspaceStore

from . import docker_env, stats
from .report import table
from .server import BenchServer
from .swarm_bench import _create_to_prompt

SHARED_NETWORK = f"{docker_env.NETWORK}-shared"
ROWS = {
    "create_to_prompt": "create → prompt (POST create, relay, `echo` answered)",
    "delete": "delete (DELETE answering 204)",
}


def bench_networks(
    client: docker.DockerClient,
    own: BenchServer,
    workdir: Path,
    image: str,
    creates: int,
    budget_s: float,
) -> dict[str, Any]:
    """`creates` workspaces made and deleted on each server, alternating which goes first."""
    (workdir / "shared").mkdir(parents=True, exist_ok=True)
    shared = BenchServer(
        workdir / "shared",
        SHARED_NETWORK,
        image,
        ("--NetworkPolicy.isolate_workspaces=False",),
    )
    servers = {"own network": own, "shared network": shared}
    samples: dict[str, dict[str, list[float]]] = {
        name: {row: [] for row in ROWS} for name in servers
    }
    try:
        shared.start()
        deadline = time.monotonic() + budget_s
        for index in range(creates):
            order = list(servers.items())
            for name, server in order if index % 2 == 0 else reversed(order):
                seconds, workspace_id = _create_to_prompt(server)
                samples[name]["create_to_prompt"].append(seconds)
                started = time.perf_counter()
                deleted = server.api("DELETE", f"api/code/workspaces/{workspace_id}")
                samples[name]["delete"].append(time.perf_counter() - started)
                if deleted.status_code != 204:
                    raise RuntimeError(f"delete answered {deleted.status_code}: {deleted.text}")
            if time.monotonic() > deadline:
                break
    finally:
        shared.stop()
        _remove_shared(client, shared.db_path)
    summary = {
        name: {row: stats.summarize(values) for row, values in rows.items()}
        for name, rows in samples.items()
    }
    ratios = {
        row: stats.ratio(
            summary["own network"][row]["p50_ms"], summary["shared network"][row]["p50_ms"]
        )
        for row in ROWS
    }
    return {"servers": summary, "ratio_p50": ratios}


def _remove_shared(client: docker.DockerClient, db_path: Path) -> None:
    store_ids = set()
    if db_path.exists():
        store = WorkspaceStore(str(db_path))
        store_ids.add(store.store_id)
        store.close()
    docker_env.cleanup(client, store_ids)
    for network in client.networks.list(names=[SHARED_NETWORK]):
        if network.name == SHARED_NETWORK:
            with contextlib.suppress(docker.errors.APIError):
                network.remove()


def network_table(results: dict[str, Any]) -> str:
    rows = []
    for row, label in ROWS.items():
        own = results["servers"]["own network"][row]
        shared = results["servers"]["shared network"][row]
        ratio = results["ratio_p50"][row]
        rows.append(
            [
                label,
                f"{own['p50_ms']:.0f} / {own['p90_ms']:.0f} (n={own['n']})",
                f"{shared['p50_ms']:.0f} / {shared['p90_ms']:.0f} (n={shared['n']})",
                f"{ratio:.2f}" if ratio is not None else "-",
            ]
        )
    return table(
        ["row", "own network p50 / p90 ms", "shared network p50 / p90 ms", "own / shared (p50)"],
        rows,
    )
