"""Prometheus metrics on /metrics, against the real engine: scraped and parsed as Prometheus would.

Counters are process-wide (prometheus_client's default registry, shared by every server the
suite starts in this process), so each check is a difference between two scrapes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from .conftest import Api, wait_for
from .docker_proxy import DockerSocketProxy
from .metrics_client import Scrape, scrape
from .terminal_client import WsFetch, terminal

IDLE_TIMEOUT = 5.0
IDLE = {"CodeWorkspacesApp": {"idle_timeout": IDLE_TIMEOUT, "idle_check_interval": 0.5}}
STOP_WITHIN = IDLE_TIMEOUT + 30


def grown(before: Scrape, after: Scrape, name: str, **labels: str) -> float:
    return after.value(name, **labels) - before.value(name, **labels)


async def scraped_when(
    fetch: Callable[..., Any], check: Callable[[Scrape], bool], timeout: float = 30.0
) -> Scrape:
    """Scrape until `check` holds (gauges follow Docker's event stream, a moment late)."""
    found: list[Scrape] = []

    async def holds() -> bool:
        found[:] = [await scrape(fetch)]
        return check(found[0])

    await wait_for(holds, timeout=timeout)
    return found[0]


@pytest.mark.parametrize("server_settings", [IDLE])
async def test_a_create_a_terminal_session_and_an_idle_stop_are_measured(
    api: Api, jp_fetch: Callable[..., Any], jp_ws_fetch: WsFetch
) -> None:
    before = await scraped_when(jp_fetch, lambda s: s.value("container_states_live") == 1)

    workspace = await api.create("measured")
    created = await scraped_when(
        jp_fetch,
        lambda s: grown(before, s, "workspaces_by_state", state="running") == 1,
    )
    assert grown(before, created, "workspace_operations_total", operation="create", outcome="ok")
    assert grown(before, created, "create_duration_seconds_count") == 1
    assert grown(before, created, "create_duration_seconds_sum") > 0

    async with terminal(jp_ws_fetch, workspace["id"]) as term:
        await term.read_until("$ ")
        term.type("echo measured-$((6*7))\r")
        await term.read_until("measured-42")
        during = await scrape(jp_fetch)
        assert grown(created, during, "terminal_connections") == 1
        # The relay brings the container up first: an ensure that found it running.
        assert grown(
            created, during, "workspace_operations_total", operation="ensure", outcome="running"
        )
        assert grown(created, during, "ensure_duration_seconds_count", outcome="running")
        for direction in ("to_browser", "from_browser"):
            relayed = grown(
                created, during, "relayed_bytes_total", channel="terminal", direction=direction
            )
            assert relayed >= len("echo measured-$((6*7))")
    after_terminal = await scraped_when(
        jp_fetch, lambda s: s.value("terminal_connections") == before.value("terminal_connections")
    )

    stopped = await scraped_when(
        jp_fetch,
        lambda s: (
            grown(after_terminal, s, "idle_stops_total") == 1
            and grown(before, s, "workspaces_by_state", state="running") == 0
        ),
        timeout=STOP_WITHIN,
    )
    assert grown(before, stopped, "workspaces_by_state", state="exited") == 1
    # No user name or workspace id in any label: their number would be unbounded.
    for text in (workspace["id"], workspace["container_name"], api.user or "", "coder"):
        assert all(text not in value for value in stopped.label_values() if text)


@pytest.mark.parametrize("server_settings", [{"CodeWorkspacesApp": {"max_workspaces_per_user": 1}}])
async def test_quota_refusals_and_failed_operations_are_counted(
    api: Api, jp_fetch: Callable[..., Any]
) -> None:
    before = await scrape(jp_fetch)
    await api.create("the one allowed")
    code, _ = await api.call("POST", body={"name": "one too many"})
    assert code == 403
    code, _ = await api.call("DELETE", "no-such-workspace")
    assert code == 404
    after = await scrape(jp_fetch)
    assert grown(before, after, "quota_refusals_total", limit="workspaces_per_user") == 1
    assert grown(before, after, "quota_refusals_total", limit="running_per_user") == 0
    for outcome, expected in (("ok", 1), ("quota_exceeded", 1)):
        assert (
            grown(before, after, "workspace_operations_total", operation="create", outcome=outcome)
            == expected
        )
    assert (
        grown(before, after, "workspace_operations_total", operation="delete", outcome="not_found")
        == 1
    )


@pytest.fixture
def server_settings(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The parametrized settings; an engine test adds the socket it can cut."""
    settings: dict[str, Any] = dict(getattr(request, "param", {}))
    if "engine" in request.fixturenames:
        engine: DockerSocketProxy = request.getfixturevalue("engine")
        settings["ContainerManager"] = {"docker_host": engine.url}
    return settings


async def test_an_unreachable_engine_is_counted_and_the_states_are_not_reported(
    engine: DockerSocketProxy, api: Api, jp_fetch: Callable[..., Any]
) -> None:
    engine.stop()
    before = await scraped_when(jp_fetch, lambda s: s.value("container_states_live") == 0)
    code, _ = await api.call("POST", body={"name": "during outage"})
    assert code == 503
    after = await scrape(jp_fetch)
    assert grown(before, after, "engine_errors_total", kind="unavailable") >= 1
    assert grown(
        before, after, "workspace_operations_total", operation="create",
        outcome="engine_unavailable",
    ) == 1  # fmt: skip
    # Stale states are left out rather than reported as current.
    assert not any(name.endswith("workspaces_by_state") for name, _ in after.samples)
