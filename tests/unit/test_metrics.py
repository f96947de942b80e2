"""Who may scrape /metrics, and how operations are counted (fast tier, containers in memory).

The same metrics against the real engine, with a terminal and an idle stop: tests/test_metrics.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError

from ..conftest import USER_HEADER, Api, HeaderIdentityProvider
from ..memory_containers import InMemoryContainerManager
from ..metrics_client import scrape

NOT_SIGNED_IN = {"Authorization": "token not-the-server-token"}


async def status_of(fetch: Callable[..., Any], **headers: str) -> int:
    try:
        response = await fetch("metrics", method="GET", headers=headers)
    except HTTPClientError as refused:
        return refused.code
    return int(response.code)


async def test_only_a_signed_in_scraper_gets_the_metrics(jp_fetch: Callable[..., Any]) -> None:
    """ServerApp.authenticate_prometheus is True by default: the token (or a login) is needed."""
    assert await status_of(jp_fetch, **NOT_SIGNED_IN) == 403
    scraped = await scrape(jp_fetch)
    # Read from memory at scrape time; the in-memory manager follows no event stream.
    assert scraped.value("container_states_live") == 0
    assert scraped.value("terminal_connections") == 0
    assert scraped.value("preview_connections") == 0


@pytest.mark.parametrize("server_settings", [{"ServerApp": {"authenticate_prometheus": False}}])
async def test_authenticate_prometheus_false_opens_the_metrics(
    jp_fetch: Callable[..., Any],
) -> None:
    assert await status_of(jp_fetch, **NOT_SIGNED_IN) == 200


@pytest.mark.parametrize(
    "server_settings",
    [
        {
            "ServerApp": {"identity_provider_class": HeaderIdentityProvider},
            "CodeWorkspacesApp": {"admin_users": ["ops"]},
        }
    ],
)
async def test_least_privilege_keeps_the_metrics_for_admins(
    jp_fetch: Callable[..., Any],
) -> None:
    """WorkspaceAuthorizer treats /metrics as the server's: only admins may scrape it."""
    assert await status_of(jp_fetch, **{USER_HEADER: "alice"}) == 403
    assert await status_of(jp_fetch, **{USER_HEADER: "ops"}) == 200


async def test_ensure_stop_and_delete_are_counted_by_outcome(
    api: Api, jp_fetch: Callable[..., Any], containers: InMemoryContainerManager
) -> None:
    workspace = await api.create(name="counted")
    before = await scrape(jp_fetch)
    containers.set_status(workspace["container_name"], "exited")
    code, reply = await api.call("POST", f"{workspace['id']}/ensure")
    assert (code, reply["status"]) == (200, "started")
    assert (await api.call("POST", f"{workspace['id']}/stop"))[0] == 200
    assert (await api.call("DELETE", workspace["id"]))[0] == 204
    assert (await api.call("DELETE", workspace["id"]))[0] == 404
    after = await scrape(jp_fetch)

    def grown(operation: str, outcome: str) -> float:
        key = {"operation": operation, "outcome": outcome}
        return after.value("workspace_operations_total", **key) - before.value(
            "workspace_operations_total", **key
        )

    assert grown("ensure", "started") == 1
    assert grown("stop", "stopped") == 1
    assert grown("delete", "ok") == 1
    assert grown("delete", "not_found") == 1
    started = {"outcome": "started"}
    assert (
        after.value("ensure_duration_seconds_count", **started)
        - before.value("ensure_duration_seconds_count", **started)
        == 1
    )
