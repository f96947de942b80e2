"""A Jupyter server with the extension, started as a subprocess on loopback for one bench run."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import requests

READY_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 30.0
OWNER = "bench"


def free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class BenchServer:
    """`jupyter server` in a private temp dir; its own DB, runtime dir and Docker network."""

    def __init__(
        self,
        workdir: Path,
        network: str,
        image: str,
        extra_args: tuple[str, ...] = (),
        launcher: tuple[str, ...] = (),
        host: str = "127.0.0.1",
    ) -> None:
        self.workdir = workdir
        self.extra_args = extra_args
        # A command the server runs under (e.g. nsenter into a container's network), and the
        # address it listens on and is reached at there.
        self.launcher = launcher
        self.host = host
        self.network = network
        self.image = image
        self.db_path = workdir / "workspaces.sqlite"
        self.log_path = workdir / "server.log"
        self.port = free_loopback_port()
        self.token = secrets.token_hex(24)
        self.base_url = f"http://{host}:{self.port}/"
        self.ws_base_url = f"ws://{host}:{self.port}/"
        self.process: subprocess.Popen[bytes] | None = None
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"token {self.token}"
        # Python config for the server (jupyter_server_config.py in its private config dir).
        self.config_py = ""

    @property
    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"}

    def start(self) -> None:
        for folder in ("root", "config", "runtime"):
            (self.workdir / folder).mkdir(exist_ok=True)
        if self.config_py:
            (self.workdir / "config" / "jupyter_server_config.py").write_text(self.config_py)
        env = {
            **os.environ,
            # A private config dir keeps the user's ~/.jupyter settings out of the measurement.
            "JUPYTER_CONFIG_DIR": str(self.workdir / "config"),
            "JUPYTER_RUNTIME_DIR": str(self.workdir / "runtime"),
            "SHELL": "/bin/bash",
        }
        command = [
            *self.launcher,
            sys.executable, "-m", "jupyter_server",
            "--no-browser",
            "--allow-root",  # the CI machines run everything as root
            f"--ip={self.host}",
            f"--port={self.port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.workdir / 'root'}",
            f"--CodeWorkspacesApp.db_path={self.db_path}",
            "--CodeWorkspacesApp.owner_source=server",
            f"--CodeWorkspacesApp.owner_name={OWNER}",
            f"--ContainerManager.network={self.network}",
            f"--ContainerManager.image={self.image}",
            # The server runs on the host, not on the Docker network: reach ttyd by address.
            "--ContainerManager.connect_via=ip",
            # Disk images cost a helper container per start (bench/disk_bench.py measures it);
            # the peers compared here have none.
            "--ContainerManager.disk_limit=",
            # The bench opens hundreds of terminals and seeds thousands of workspaces for one
            # owner: the per-user and server-wide safety limits would refuse them.
            "--TerminalRelay.max_connections_per_workspace=0",
            "--TerminalRelay.max_connections_per_user=0",
            "--CodeWorkspacesApp.max_workspaces_per_user=0",
            "--CodeWorkspacesApp.max_running_workspaces_per_user=0",
            "--CodeWorkspacesApp.max_running_workspaces=0",
            *self.extra_args,
        ]  # fmt: skip
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.workdir
        )
        log.close()
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"jupyter server exited early; see {self.log_path}")
            try:
                if self.http.get(self.url("api/status"), timeout=2).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"jupyter server not ready in {READY_TIMEOUT_S:g} s")
            time.sleep(0.2)

    def stop(self) -> None:
        self.http.close()
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=STOP_TIMEOUT_S)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def url(self, path: str) -> str:
        return self.base_url + path.lstrip("/")

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 120)
        return self.http.request(method, self.url(path), **kwargs)

    def rss_bytes(self) -> int:
        """Resident set size of the server process, from /proc."""
        status = Path(f"/proc/{self.pid}/status").read_text()
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS in /proc status")

    def ttyd_credential(self, workspace_id: str) -> str:
        """The container's ttyd credential, read from the server's store (it never leaves it)."""
        with closing(sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True)) as db:
            row = db.execute(
                "SELECT ttyd_credential FROM code_workspaces WHERE id = ?", (workspace_id,)
            ).fetchone()
        if row is None:
            raise LookupError(workspace_id)
        return str(row[0])
