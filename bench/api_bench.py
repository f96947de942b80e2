"""Issue 2 §10: ensure through the REST API against the bare Docker SDK calls, and listing."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import docker

from .server import BenchServer
from .stats import ratio, summarize

# Seconds Docker gives the container to stop before SIGKILL (untimed, between iterations).
STOP_GRACE_S = 5


def timed_loop(
    variants: dict[str, Callable[[], None]],
    iterations: int,
    warmup: int,
    budget_s: float,
    before_each: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Run each variant `iterations` times, interleaved (alternating which goes first) so drift
    on a shared machine hits all alike; only the call itself is timed. Bounded by `budget_s`."""
    names = list(variants)
    for _ in range(warmup):
        for name in names:
            if before_each:
                before_each()
            variants[name]()
    samples: dict[str, list[float]] = {name: [] for name in names}
    deadline = time.monotonic() + budget_s
    done = 0
    for iteration in range(iterations):
        if time.monotonic() > deadline:
            break
        order = names if iteration % 2 == 0 else names[::-1]
        for name in order:
            if before_each:
                before_each()
            started = time.perf_counter()
            variants[name]()
            samples[name].append(time.perf_counter() - started)
        done += 1
    return {
        "iterations": done,
        "requested": iterations,
        "budget_exhausted": done < iterations,
        **{name: summarize(values) for name, values in samples.items()},
    }


def _expect(condition: bool, what: str) -> None:
    # A wrong answer must stop the bench, never be timed as a success.
    if not condition:
        raise RuntimeError(what)


def bench_ensure(
    server: BenchServer,
    client: docker.DockerClient,
    workspace_id: str,
    container: str,
    iterations: int,
    stopped_iterations: int,
    budget_s: float,
) -> dict[str, Any]:
    ensure_url = server.url(f"api/code/workspaces/{workspace_id}/ensure")
    http = server.http

    def api_ensure(expected: str) -> Callable[[], None]:
        def call() -> None:
            response = http.post(ensure_url, data=b"", timeout=120)
            _expect(response.status_code == 200, f"ensure answered {response.status_code}")
            status = response.json()["status"]
            _expect(status == expected, f"ensure said {status!r}, expected {expected!r}")

        return call

    def sdk_inspect() -> None:
        state = client.api.inspect_container(container)["State"]["Status"]
        _expect(state == "running", f"container is {state}")

    def sdk_inspect_start() -> None:
        state = client.api.inspect_container(container)["State"]["Status"]
        _expect(state in ("exited", "created"), f"container is {state}")
        client.api.start(container)

    def http_floor() -> None:
        # jupyter_server's cheapest route: what any API call costs before it does work.
        _expect(http.get(server.url("api"), timeout=120).status_code == 200, "GET api failed")

    workspace_url = server.url(f"api/code/workspaces/{workspace_id}")

    def stop() -> None:
        client.api.stop(container, timeout=STOP_GRACE_S)
        # The server learns of a stop from Docker's event stream, a moment later: wait for it
        # (untimed), or ensure would rightly still answer "running".
        deadline = time.monotonic() + 30
        while http.get(workspace_url, timeout=120).json()["container"]["status"] == "running":
            _expect(time.monotonic() < deadline, "the server never saw the container stop")
            time.sleep(0.01)

    api_ensure("running")()  # the container is up before timing starts
    running = timed_loop(
        {"api": api_ensure("running"), "sdk": sdk_inspect, "http_floor": http_floor},
        iterations,
        warmup=20,
        budget_s=budget_s,
    )
    stopped = timed_loop(
        {"api": api_ensure("started"), "sdk": sdk_inspect_start},
        stopped_iterations,
        warmup=2,
        budget_s=budget_s,
        before_each=stop,
    )
    after = http.post(ensure_url, data=b"", timeout=120).json()["status"]
    _expect(after in ("running", "started"), f"ensure after the loop said {after!r}")
    for result in (running, stopped):
        result["ratio_p50"] = ratio(result["api"]["p50_ms"], result["sdk"]["p50_ms"])
        result["ratio_mean"] = ratio(result["api"]["mean_ms"], result["sdk"]["mean_ms"])
    # A running container costs ensure no Docker call: it is held to jupyter_server's own floor.
    running["over_floor_p50_ms"] = running["api"]["p50_ms"] - running["http_floor"]["p50_ms"]
    return {
        "running": running,
        "stopped": stopped,
        "target_ratio": 1.10,
        "target_over_floor_ms": 0.5,
    }


def bench_list(
    server: BenchServer,
    expected: int,
    total: int,
    containers: int,
    iterations: int,
    budget_s: float,
) -> dict[str, Any]:
    """One owner's listing in a store of `total` workspaces, against jupyter_server's floor."""
    list_url = server.url("api/code/workspaces")

    def api_list() -> None:
        response = server.http.get(list_url, timeout=120)
        _expect(response.status_code == 200, f"list answered {response.status_code}")
        count = len(response.json()["workspaces"])
        _expect(count == expected, f"list gave {count} workspaces, expected {expected}")

    def http_floor() -> None:
        _expect(server.http.get(server.url("api"), timeout=120).status_code == 200, "GET api")

    result = timed_loop({"api": api_list, "http_floor": http_floor}, iterations, 5, budget_s)
    result["workspaces"] = expected
    result["store_workspaces"] = total
    result["containers"] = containers
    result["response_bytes"] = len(server.http.get(list_url, timeout=120).content)
    result["target_p50_ms"] = 20.0
    result["target_p90_ms"] = 40.0
    return result


def wait_for_statuses(
    server: BenchServer, names: set[str], status: str, timeout_s: float = 300.0
) -> float:
    """Seconds until listing shows every container in `names` with `status` (events applied)."""
    started = time.monotonic()
    while True:
        workspaces = server.api("GET", "api/code/workspaces").json()["workspaces"]
        shown = {w["container_name"]: w["container"]["status"] for w in workspaces}
        if all(shown.get(name) == status for name in names):
            return time.monotonic() - started
        if time.monotonic() - started > timeout_s:
            raise RuntimeError(f"listing did not show {status!r} for all seeded containers")
        time.sleep(0.2)
