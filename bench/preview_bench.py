"""Previews: throughput and request latency through the proxy vs straight to the app's port.

The app is the preview tests' node server (tests/preview_app/app.js), started in the bench's
workspace on port 8080. Both paths use one keep-alive `requests.Session`; the proxy opens a new
connection to the app per request (no upstream keep-alive), which is part of what is measured.
"""

from __future__ import annotations

import io
import tarfile
import time
from pathlib import Path
from typing import Any

import docker
import requests

from . import docker_env
from .server import BenchServer
from .stats import ratio, summarize

APP_SOURCE = Path(__file__).resolve().parent.parent / "tests" / "preview_app" / "app.js"
APP_PORT = 8080
MB = 1_000_000
CHUNK = 1024 * 1024


def start_app(client: docker.DockerClient, container_name: str) -> None:
    """Copy the test app into the workspace and run it on 0.0.0.0:APP_PORT."""
    data = APP_SOURCE.read_bytes()
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        info = tarfile.TarInfo("preview-app.js")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    container = client.containers.get(container_name)
    container.put_archive("/tmp", archive.getvalue())
    container.exec_run(["node", "/tmp/preview-app.js", str(APP_PORT)], detach=True)


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
) -> dict[str, Any]:
    start_app(client, container)
    host = docker_env.container_ip(client, container)
    docker_env.wait_for_port(host, APP_PORT)
    listed = server.api("GET", f"api/code/workspaces/{workspace_id}/ports").json()
    preview_path = next(p["url"] for p in listed["ports"] if p["port"] == APP_PORT)
    bases = {"proxy": server.url(preview_path), "direct": f"http://{host}:{APP_PORT}/"}
    sessions = {name: requests.Session() for name in bases}
    sessions["proxy"].headers.update(server.auth_headers)
    size = download_mib * 1024 * 1024
    downloads: dict[str, list[float]] = {name: [] for name in bases}
    latencies: dict[str, list[float]] = {name: [] for name in bases}
    deadline = time.monotonic() + budget_s
    for name in bases:  # warm-up: connections, the server's code paths, the app's JIT
        _download(sessions[name], bases[name] + "big?mb=8", 8 * 1024 * 1024)
        for _ in range(20):
            _get(sessions[name], bases[name] + "progress")
    for round_index in range(rounds):
        # Alternate which path goes first, so drift on a shared machine hits both alike.
        order = list(bases) if round_index % 2 == 0 else list(reversed(bases))
        for name in order:
            url = f"{bases[name]}big?mb={download_mib}"
            downloads[name].append(_download(sessions[name], url, size))
    for index in range(requests_count):
        if time.monotonic() > deadline:
            break
        order = list(bases) if index % 2 == 0 else list(reversed(bases))
        for name in order:
            latencies[name].append(_get(sessions[name], bases[name] + "progress"))
    server_rss_mib = server.rss_bytes() / 2**20
    results: dict[str, Any] = {"download_mib": download_mib, "server_rss_mib": server_rss_mib}
    for name in bases:
        best = min(downloads[name])
        median = sorted(downloads[name])[len(downloads[name]) // 2]
        results[name] = {
            "throughput_mb_s_median": size / MB / median,
            "throughput_mb_s_best": size / MB / best,
            "download_seconds": downloads[name],
            "latency": summarize(latencies[name]),
        }
    proxy, direct = results["proxy"], results["direct"]
    results["ratios"] = {
        "throughput": ratio(proxy["throughput_mb_s_median"], direct["throughput_mb_s_median"]),
        "latency_p50": ratio(proxy["latency"]["p50_ms"], direct["latency"]["p50_ms"]),
        "latency_p90": ratio(proxy["latency"]["p90_ms"], direct["latency"]["p90_ms"]),
    }
    return results
