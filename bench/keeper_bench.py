"""Issue 18 §1: session keepers side by side, each the only difference between two terminals.

Every candidate runs in its own container of one image, as the workspace user, with ttyd serving
`<keeper> bash -l` and the same CPU limit the server gives a workspace; the bench reaches each
ttyd straight (so nothing but the keeper differs) and JupyterLab's terminal in the same rounds.
A candidate whose program is not in the image is left out (dtach and abduco are not in the
workspace image: build the bench's candidates image, see bench/README.md).
"""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import docker

from jupyter_popebot_code.core.store import Workspace

from . import docker_env
from .cpu import CpuProbe, container_cpu_file
from .server import BenchServer
from .terminal_bench import SESSION_GAP_S, run_paths, seq_output_bytes
from .terminal_clients import TerminadoSession, TerminalSession, ttyd_session


@dataclass(frozen=True)
class Keeper:
    name: str
    command: str  # run by `sh -c` before `bash -l`; a reattach finds the same shell
    needs: str  # the program that must be in the image
    keeps_screen: bool  # a reattach shows the earlier output without typing


# The first is the floor (no keeper: a closed tab ends the shell).
KEEPERS = (
    Keeper("none (bash only)", "exec", "bash", keeps_screen=False),
    Keeper("tmux (shipped before)", "exec tmux -u new-session -A -s workspace", "tmux", True),
    Keeper(
        "tmux, history-limit 2000",
        r"exec tmux -u start-server \; set -g history-limit 2000 \; new-session -A -s workspace",
        "tmux",
        True,
    ),
    Keeper(
        "workspace-session (shipped)", "exec workspace-session attach", "workspace-session", True
    ),
    Keeper("dtach -r winch", "exec dtach -A /tmp/bench-dtach -r winch", "dtach", False),
    Keeper("abduco", "exec abduco -A workspace", "abduco", False),
)


def _has(client: docker.DockerClient, image: str, program: str) -> bool:
    output = client.containers.run(
        image, ["sh", "-c", f"command -v {shlex.quote(program)} || true"], entrypoint=[],
        remove=True, user="coder",
    )  # fmt: skip
    return bool(output.strip())


def start_keeper(
    client: docker.DockerClient,
    image: str,
    store_id: str,
    workspace: Workspace,
    keeper: Keeper,
    nano_cpus: int,
) -> str:
    """A container of `image` with ttyd serving `keeper` around a login shell; its address."""
    labels = {**docker_env.workspace_labels(workspace, store_id), docker_env.BENCH_LABEL: "1"}
    shell = f"{keeper.command} bash -l"
    client.api.create_container(
        image,
        name=workspace.container_name,
        labels=labels,
        user="coder",
        working_dir="/home/coder",
        environment={"TTYD_CREDENTIAL": workspace.ttyd_credential},
        entrypoint=["/bin/sh", "-c"],
        command=[
            'exec ttyd --writable --port 7681 --credential "$TTYD_CREDENTIAL"'
            f" --terminal-type xterm-256color sh -c {shlex.quote(shell)}"
        ],
        host_config=client.api.create_host_config(
            network_mode=docker_env.NETWORK, init=True, nano_cpus=nano_cpus
        ),
    )
    client.api.start(workspace.container_name)
    host = docker_env.container_ip(client, workspace.container_name)
    docker_env.wait_for_port(host)
    return host


def bench_keepers(
    server: BenchServer,
    client: docker.DockerClient,
    image: str,
    store_id: str,
    records: list[Workspace],
    *,
    rounds: int,
    lines: int,
    trips: int,
    cpu_limit: float,
    timeout_s: float,
) -> dict[str, Any]:
    """Each keeper present in `image` (one record each), straight to its ttyd, and terminado."""
    keepers = [k for k in KEEPERS if _has(client, image, k.needs)]
    makers: dict[str, Callable[[], TerminalSession]] = {}
    probes: dict[str, CpuProbe] = {}
    for keeper, workspace in zip(keepers, records, strict=False):
        host = start_keeper(client, image, store_id, workspace, keeper, int(cpu_limit * 1e9))
        container_id = client.api.inspect_container(workspace.container_name)["Id"]
        probes[keeper.name] = CpuProbe(server.pid, container_cpu_file(container_id))
        credential = workspace.ttyd_credential
        makers[keeper.name] = lambda host=host, credential=credential: ttyd_session(
            host, credential
        )
    makers["terminado"] = lambda: TerminadoSession(
        server.base_url, server.ws_base_url, server.token
    )
    probes["terminado"] = CpuProbe(server.pid, None)
    paths = asyncio.run(run_paths(makers, probes, rounds, lines, trips, timeout_s))
    megabytes = seq_output_bytes(lines) / 1e6
    peer = paths["terminado"]
    rows = {}
    for keeper in keepers:
        run = paths[keeper.name]
        container_cpu = run["container_cpu_s_median"]
        rows[keeper.name] = {
            **run,
            "keeps_screen": keeper.keeps_screen,
            "container_cpu_s_per_mb": None if container_cpu is None else container_cpu / megabytes,
            "time_vs_terminado": run["seconds_median"] / peer["seconds_median"],
            "echo_p50_minus_terminado_ms": run["echo"]["p50_ms"] - peer["echo"]["p50_ms"],
        }
    return {
        "image": image,
        "cpu_limit": cpu_limit,
        "workload": {"seq_lines": lines, "echo_trips": trips, "rounds": rounds},
        "session_gap_s": SESSION_GAP_S,
        "keepers": rows,
        "terminado": peer,
    }
