"""Previews: our proxy beside jupyter-server-proxy and straight to the app, in the same run.

The app is the preview tests' node server (tests/preview_app/app.js), started in the bench's
workspace on port 8080. Three paths to it, interleaved (the order rotates every round):

- `proxy`: our preview URL (`code/preview/{id}/{key}/8080/`, from the ports listing);
- `jsp`: jupyter-server-proxy in the same Jupyter server, arbitrary-host mode
  (`proxy/{container ip}:8080/`, allowed by `JSP_CONFIG` for the workspace's address);
- `hop`: a bare TCP forwarder in a process of its own (`bench.tcp_hop`: the proxy's splice loop
  without HTTP or a Jupyter server), the bound of any proxy that adds one process to the path;
- `direct`: `http://{container ip}:8080/` from the host.

and `GET api` (jupyter_server's cheapest route) for the server's own floor. Every HTTP path uses
one keep-alive `requests.Session`; WebSockets use one `websockets` (sync) client per path.
"""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

import docker
import requests
from websockets.sync.client import connect

from . import docker_env
from .cpu import CpuProbe, container_cpu_file
from .server import BenchServer
from .stats import ratio, summarize

APP_SOURCE = Path(__file__).resolve().parent.parent / "tests" / "preview_app" / "app.js"
APP_PORT = 8080
MB = 1_000_000
CHUNK = 1024 * 1024
PATHS = ("proxy", "jsp", "hop", "direct")
# Written into the bench server's config dir: jupyter-server-proxy may reach the addresses the
# bench lists in `hosts_file` once the workspace runs (it is on a network of its own, whose
# subnet is not known before the server starts).
JSP_CONFIG = """
from pathlib import Path

_HOSTS = Path({hosts_file!r})
_allowed = set()


def _bench_workspace(handler, host):
    if not _allowed and _HOSTS.exists():
        _allowed.update(_HOSTS.read_text().split())
    return host in _allowed


c.ServerApp.jpserver_extensions.update({{"jupyter_server_proxy": True}})
c.ServerProxy.host_allowlist = _bench_workspace
"""
JSP_HOSTS = "jsp-hosts.txt"


def jsp_config(workdir: Path) -> str:
    return JSP_CONFIG.format(hosts_file=str(workdir / JSP_HOSTS))


def start_app(client: docker.DockerClient, container_name: str) -> None:
    """Copy the test app into the workspace volume and run it on 0.0.0.0:APP_PORT."""
    data = APP_SOURCE.read_bytes()
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        info = tarfile.TarInfo("preview-app.js")
        info.size = len(data)
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(data))
    container = client.containers.get(container_name)
    # The root file system is read-only: the workspace volume is where `docker cp` reaches.
    container.put_archive("/home/coder/workspace", archive.getvalue())
    container.exec_run(
        ["node", "/home/coder/workspace/preview-app.js", str(APP_PORT)], detach=True, user="coder"
    )


def _download(session: requests.Session, url: str, expected: int) -> float:
    """Seconds to receive the whole body (checked for size)."""
    started = time.perf_counter()
    received = 0
    with session.get(url, stream=True, timeout=300) as reply:
        reply.raise_for_status()
        for chunk in reply.iter_content(CHUNK):
            received += len(chunk)
    elapsed = time.perf_counter() - started
    if received != expected:
        raise RuntimeError(f"{url}: got {received} bytes, expected {expected}")
    return elapsed


def _get(session: requests.Session, url: str) -> float:
    started = time.perf_counter()
    reply = session.get(url, timeout=60)
    elapsed = time.perf_counter() - started
    if reply.status_code != 200:
        raise RuntimeError(f"{url} answered {reply.status_code}: {reply.text[:200]}")
    return elapsed


def _echo_trips(url: str, headers: dict[str, str], trips: int) -> list[float]:
    """Round trips of a 32-byte text message through the app's WebSocket echo."""
    samples = []
    with connect(url, additional_headers=headers, compression=None, open_timeout=30) as ws:
        ws.recv(timeout=30)  # the app's hello
        message = "x" * 32
        for _ in range(trips):
            started = time.perf_counter()
            ws.send(message)
            if ws.recv(timeout=30) != message:
                raise RuntimeError(f"{url}: the echo differs")
            samples.append(time.perf_counter() - started)
    return samples


def _rotated(index: int) -> list[str]:
    shift = index % len(PATHS)
    return list(PATHS[shift:] + PATHS[:shift])


def bench_preview(
    server: BenchServer,
    client: docker.DockerClient,
    workspace_id: str,
    container: str,
    *,
    download_mib: int,
    rounds: int,
    requests_count: int,
    budget_s: float,
    echo_trips: int = 200,
) -> dict[str, Any]:
    start_app(client, container)
    host = docker_env.container_ip(client, container)
    (server.workdir / JSP_HOSTS).write_text(host + "\n")  # jupyter-server-proxy may reach it
    docker_env.wait_for_port(host, APP_PORT)
    listed = server.api("GET", f"api/code/workspaces/{workspace_id}/ports").json()
    preview_path = next(p["url"] for p in listed["ports"] if p["port"] == APP_PORT)
    hop = subprocess.Popen(
        [sys.executable, "-m", "bench.tcp_hop", host, str(APP_PORT)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    try:
        assert hop.stdout is not None
        bases = {
            "proxy": server.url(preview_path),
            "jsp": server.url(f"proxy/{host}:{APP_PORT}/"),
            "hop": f"http://127.0.0.1:{hop.stdout.readline().strip()}/",
            "direct": f"http://{host}:{APP_PORT}/",
        }
        return _measure(
            server,
            client,
            container,
            bases,
            hop.pid,
            download_mib=download_mib,
            rounds=rounds,
            requests_count=requests_count,
            budget_s=budget_s,
            echo_trips=echo_trips,
        )
    finally:
        hop.kill()
        hop.wait()


def _measure(
    server: BenchServer,
    client: docker.DockerClient,
    container: str,
    bases: dict[str, str],
    hop_pid: int,
    *,
    download_mib: int,
    rounds: int,
    requests_count: int,
    budget_s: float,
    echo_trips: int,
) -> dict[str, Any]:
    sessions = {name: requests.Session() for name in PATHS}
    for name in ("proxy", "jsp"):
        sessions[name].headers.update(server.auth_headers)
    api_session = requests.Session()
    api_session.headers.update(server.auth_headers)
    size = download_mib * 1024 * 1024
    downloads: dict[str, list[float]] = {name: [] for name in PATHS}
    # Who spent the CPU of each path's downloads (the hop's process in the server's column).
    container_file = container_cpu_file(client.containers.get(container).id)
    probes = {
        name: CpuProbe(hop_pid if name == "hop" else server.pid, container_file) for name in PATHS
    }
    download_cpu: dict[str, dict[str, float]] = {name: {} for name in PATHS}
    latencies: dict[str, list[float]] = {name: [] for name in (*PATHS, "api")}
    deadline = time.monotonic() + budget_s
    for name in PATHS:  # warm-up: connections, the server's code paths, the app's JIT
        _download(sessions[name], bases[name] + "big?mb=8", 8 * 1024 * 1024)
        for _ in range(20):
            _get(sessions[name], bases[name] + "progress")
    for _ in range(20):
        _get(api_session, server.url("api"))
    for round_index in range(rounds):
        for name in _rotated(round_index):
            url = f"{bases[name]}big?mb={download_mib}"
            before = probes[name].snapshot()
            downloads[name].append(_download(sessions[name], url, size))
            for key, spent in CpuProbe.spent(before, probes[name].snapshot()).items():
                download_cpu[name][key] = download_cpu[name].get(key, 0.0) + (spent or 0.0)
    for index in range(requests_count):
        if time.monotonic() > deadline:
            break
        for name in _rotated(index):
            latencies[name].append(_get(sessions[name], bases[name] + "progress"))
        latencies["api"].append(_get(api_session, server.url("api")))
    echoes = _bench_echo(server, bases, echo_trips, deadline)
    results: dict[str, Any] = {
        "download_mib": download_mib,
        "server_rss_mib": server.rss_bytes() / 2**20,
        "api": {"latency": summarize(latencies["api"])},
    }
    for name in PATHS:
        median = sorted(downloads[name])[len(downloads[name]) // 2]
        results[name] = {
            "throughput_mb_s_median": size / MB / median,
            "throughput_mb_s_best": size / MB / min(downloads[name]),
            "download_seconds": downloads[name],
            "download_cpu": _cpu_per_gb(download_cpu[name], sum(downloads[name]), size * rounds),
            "latency": summarize(latencies[name]),
            "echo": summarize(echoes[name]),
        }
    results["ratios"] = _ratios(results)
    results["verdicts"] = _verdicts(results)
    return results


def _bench_echo(
    server: BenchServer, bases: dict[str, str], trips: int, deadline: float
) -> dict[str, list[float]]:
    """WebSocket echo round trips per path: a warm-up session, then rounds in rotated order."""
    urls = {name: "ws" + base.removeprefix("http") + "ws" for name, base in bases.items()}
    headers = {"proxy": server.auth_headers, "jsp": server.auth_headers, "hop": {}, "direct": {}}
    samples: dict[str, list[float]] = {name: [] for name in PATHS}
    for name in PATHS:
        _echo_trips(urls[name], headers[name], 20)
    for round_index in range(5):
        if time.monotonic() > deadline:
            break
        for name in _rotated(round_index):
            samples[name] += _echo_trips(urls[name], headers[name], max(1, trips // 5))
    return samples


def _cpu_per_gb(spent: dict[str, float], seconds: float, size: int) -> dict[str, float]:
    """CPU seconds per GB (10^9 bytes) of each party, and the machine's busy cores meanwhile."""
    gigabytes = size / 1e9
    return {
        "server_cpu_s_per_gb": spent["server_cpu_s"] / gigabytes,
        "client_cpu_s_per_gb": spent["client_cpu_s"] / gigabytes,
        "container_cpu_s_per_gb": spent["container_cpu_s"] / gigabytes,
        "machine_busy_cores": spent["machine_busy_s"] / seconds,
    }


def _ratios(results: dict[str, Any]) -> dict[str, Any]:
    proxy = results["proxy"]
    out: dict[str, Any] = {}
    for peer_name in ("direct", "jsp", "hop"):
        peer = results[peer_name]
        out[peer_name] = {
            "throughput": ratio(proxy["throughput_mb_s_median"], peer["throughput_mb_s_median"]),
            "latency_p50": ratio(proxy["latency"]["p50_ms"], peer["latency"]["p50_ms"]),
            "latency_p90": ratio(proxy["latency"]["p90_ms"], peer["latency"]["p90_ms"]),
            "echo_p50": ratio(proxy["echo"]["p50_ms"], peer["echo"]["p50_ms"]),
            "echo_p90": ratio(proxy["echo"]["p90_ms"], peer["echo"]["p90_ms"]),
        }
    return out


def _verdicts(results: dict[str, Any]) -> dict[str, bool]:
    """The targets of issue 18: near the floor, near the app's own speed, ahead of the peer."""
    proxy, jsp, direct = results["proxy"], results["jsp"], results["direct"]
    floor = results["api"]["latency"]["p50_ms"] + direct["latency"]["p50_ms"]

    def ahead(key: str, stat: str) -> bool:
        return bool(proxy[key][stat] < jsp[key][stat])

    return {
        "get_p50_within_0.5ms_of_api_plus_direct": proxy["latency"]["p50_ms"] <= floor + 0.5,
        "download_at_least_0.8x_direct": proxy["throughput_mb_s_median"]
        >= 0.8 * direct["throughput_mb_s_median"],
        "ahead_of_jsp_get_p50": ahead("latency", "p50_ms"),
        "ahead_of_jsp_get_p90": ahead("latency", "p90_ms"),
        "ahead_of_jsp_download": proxy["throughput_mb_s_median"] > jsp["throughput_mb_s_median"],
        "ahead_of_jsp_echo_p50": ahead("echo", "p50_ms"),
        "ahead_of_jsp_echo_p90": ahead("echo", "p90_ms"),
    }
