"""Keystroke echo on the three terminal paths taking turns, with the server's run-queue wait.

`python -m bench.echo_hops [--trips N] [--hogs N] [--image TAG]` starts a bench server and one
workspace, opens a relay, a straight-to-ttyd and a JupyterLab (terminado) session at once, and
types one letter on each in turn, so all three see the same neighbours' load: the terminal
part's echo columns without its throughput rounds, for a quick before/after of a change. Per
trip it also reads the run-queue wait of the server's event-loop thread
(`/proc/<pid>/task/<pid>/schedstat`, field 2): the time the relay and terminado spent ready to
run but waiting for a core. Set POPEBOT_BENCH_NETWORK.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from . import docker_env
from .__main__ import create_workspace
from .server import BenchServer
from .stats import summarize
from .terminal_bench import measure_echo_in_turns
from .terminal_clients import TerminadoSession, TerminalSession, relay_session, ttyd_session

TIMEOUT_S = 30.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trips", type=int, default=100, help="round trips per path")
    parser.add_argument("--hogs", type=int, default=0, help="busy loops started meanwhile")
    parser.add_argument("--image", default="jupyter-popebot-code-workspace:latest")
    args = parser.parse_args()
    client = docker_env.docker_client()
    server = BenchServer(
        Path(tempfile.mkdtemp(prefix="popebot-echo-hops-")), docker_env.NETWORK, args.image
    )
    docker_env.ensure_network(client)
    store_id, _ = docker_env.seed_store(server.db_path, "bench", 0)
    hogs: list[subprocess.Popen[bytes]] = []
    try:
        server.start()
        workspace = create_workspace(server)
        host = docker_env.container_ip(client, workspace["container_name"])
        docker_env.wait_for_port(host)
        credential = server.ttyd_credential(workspace["id"])
        makers: dict[str, Callable[[], TerminalSession]] = {
            "relay": lambda: relay_session(server.ws_base_url, server.token, workspace["id"]),
            "ttyd": lambda: ttyd_session(host, credential),
            "terminado": lambda: TerminadoSession(
                server.base_url, server.ws_base_url, server.token
            ),
        }
        load = os.getloadavg()
        hogs = [
            subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.hogs)
        ]
        samples, waits = asyncio.run(
            measure_echo_in_turns(makers, args.trips, TIMEOUT_S, server.pid)
        )
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait(timeout=10)
        server.stop()
        docker_env.cleanup(client, {store_id})
    print(f"load average {load[0]:.1f} -> {os.getloadavg()[0]:.1f}, {args.hogs} hogs")
    print("path       echo p50 ms  p90 ms  server run-queue wait per trip p50 / mean ms")
    for kind, trips in samples.items():
        echo, wait = summarize(trips), summarize(waits[kind] or [0.0])
        print(
            f"{kind:10s} {echo['p50_ms']:11.2f} {echo['p90_ms']:7.2f}  "
            f"{wait['p50_ms']:.2f} / {wait['mean_ms']:.2f}"
        )


if __name__ == "__main__":
    main()
