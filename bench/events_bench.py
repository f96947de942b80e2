"""The server's container states follow Docker's event stream, also across a dockerd restart.

dockerd is stopped (SIGTERM to the pid in /var/run/docker.pid) and started again with
scripts/ensure-docker.sh, as on this project's machines. As soon as the engine answers, the bench
stops the workspace's container behind the server's back (the `unless-stopped` policy has
restarted it) and times how long until the listing shows the state Docker reports.

It restarts the engine that every container on this machine depends on: opt-in only
(`--only events`), never part of the default run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import docker
import docker.errors

from .server import BenchServer

ROOT = Path(__file__).resolve().parent.parent
DOCKER_PID_FILE = Path("/var/run/docker.pid")
DOWN_TIMEOUT_S = 90.0
UP_TIMEOUT_S = 120.0
POLL_S = 0.02
TARGET_S = 2.0


def _listed_status(server: BenchServer, workspace_id: str) -> str | None:
    try:
        response = server.api("GET", f"api/code/workspaces/{workspace_id}", timeout=10)
    except Exception:  # the server may be slow while the engine is away
        return None
    if response.status_code != 200:
        return None
    return str(response.json()["container"]["status"])


def _engine_up() -> bool:
    try:
        probe = docker.from_env(timeout=2)
    except Exception:  # any failure means "not yet"
        return False
    try:
        return bool(probe.ping())
    except Exception:  # any failure means "not yet"
        return False
    finally:
        probe.close()


def restart_dockerd() -> dict[str, float]:
    """Stop dockerd and start it again; monotonic times of the steps."""
    pid = int(DOCKER_PID_FILE.read_text().strip())
    started = time.monotonic()
    os.kill(pid, signal.SIGTERM)
    deadline = started + DOWN_TIMEOUT_S
    while Path(f"/proc/{pid}").exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"dockerd (pid {pid}) did not stop in {DOWN_TIMEOUT_S:g} s")
        time.sleep(0.05)
    down = time.monotonic()
    starter = subprocess.Popen(["bash", str(ROOT / "scripts" / "ensure-docker.sh")], cwd=ROOT)
    try:
        deadline = down + UP_TIMEOUT_S
        while not _engine_up():
            if time.monotonic() > deadline:
                raise RuntimeError(f"the engine was not back within {UP_TIMEOUT_S:g} s")
            time.sleep(POLL_S)
        up = time.monotonic()
    finally:
        starter.wait(timeout=UP_TIMEOUT_S)
    return {"stop_requested": started, "down": down, "up": up}


def bench_events(server: BenchServer, workspace_id: str, container: str) -> dict[str, Any]:
    before = _listed_status(server, workspace_id)
    if before != "running":
        raise RuntimeError(f"the workspace should be running before the restart, is {before!r}")
    times = restart_dockerd()
    client = docker.from_env(timeout=60)
    try:
        # `unless-stopped` brings the container back with the engine; wait for that (bounded).
        deadline = time.monotonic() + 60
        while client.api.inspect_container(container)["State"]["Status"] != "running":
            if time.monotonic() > deadline:
                raise RuntimeError("the workspace container did not come back with the engine")
            time.sleep(POLL_S)
        # The server must first catch up with the restart (the container is running again),
        # or a state it kept from before could pass for the truth.
        shown_running = None
        deadline = time.monotonic() + 30
        while _listed_status(server, workspace_id) != "running":
            if time.monotonic() > deadline:
                break
            time.sleep(POLL_S)
        else:
            shown_running = time.monotonic() - times["up"]
        client.api.stop(container, timeout=1)
        stopped = time.monotonic()
        truth = client.api.inspect_container(container)["State"]["Status"]
        deadline = stopped + 30
        shown = None
        while True:
            shown = _listed_status(server, workspace_id)
            if shown == truth or time.monotonic() > deadline:
                break
            time.sleep(POLL_S)
        seen = time.monotonic()
    finally:
        client.close()
    return {
        "engine_down_s": times["up"] - times["down"],
        "running_shown_after_engine_up_s": shown_running,
        "stop_after_engine_up_s": stopped - times["up"],
        "true_state": truth,
        "listed_state": shown,
        "shown_after_engine_up_s": seen - times["up"],
        "shown_after_stop_s": seen - stopped,
        "target_s": TARGET_S,
        "ok": shown_running is not None
        and shown_running <= TARGET_S
        and shown == truth
        and seen - stopped <= TARGET_S,
    }
