"""ContainerManager's listing cache (fast tier): shared fetches, reuse, and invalidation.

`statuses()` here is ContainerManager's own code; only the blocking fetch under it is counted.
The docker tier checks the same against the engine (test_listing_* in tests/test_api.py).
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any
from unittest import mock

import pytest

from jupyter_popebot_code.containers import ContainerManager
from jupyter_popebot_code.store import Workspace

from ..memory_containers import InMemoryContainerManager

STORE = "store-under-test"


def _workspace() -> Workspace:
    return Workspace.new("alice", "ws", "", "")


async def _until(predicate: Any, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


async def test_concurrent_listings_share_one_fetch(memory: InMemoryContainerManager) -> None:
    memory.status_cache_seconds = 0  # no reuse: only sharing can save fetches
    await memory.create(_workspace(), STORE, {})
    memory.fetch_gate = gate = threading.Event()
    listings = asyncio.gather(*(memory.statuses(STORE) for _ in range(5)))
    try:
        await _until(lambda: memory.status_fetches >= 1)
        await asyncio.sleep(0.1)  # every listing has asked by now
    finally:
        gate.set()
    answers = await listings
    assert memory.status_fetches == 1
    assert all(answer == answers[0] for answer in answers)
    assert list(answers[0].values()) == ["running"]


async def test_a_listing_is_reused_until_this_server_changes_a_container(
    memory: InMemoryContainerManager,
) -> None:
    memory.status_cache_seconds = 3600
    workspace = _workspace()
    assert workspace.container_name
    await memory.create(workspace, STORE, {})
    assert await memory.statuses(STORE) == {workspace.container_name: "running"}
    memory.set_status(workspace.container_name, "exited")  # behind the server's back
    assert await memory.statuses(STORE) == {workspace.container_name: "running"}
    assert memory.status_fetches == 1
    await memory.start(workspace.container_name)
    memory.set_status(workspace.container_name, "paused")
    assert await memory.statuses(STORE) == {workspace.container_name: "paused"}
    assert memory.status_fetches == 2


async def test_without_a_cache_every_listing_asks(memory: InMemoryContainerManager) -> None:
    memory.status_cache_seconds = 0
    workspace = _workspace()
    assert workspace.container_name
    await memory.create(workspace, STORE, {})
    await memory.statuses(STORE)
    memory.set_status(workspace.container_name, "exited")
    assert await memory.statuses(STORE) == {workspace.container_name: "exited"}
    assert memory.status_fetches == 2


class CountingManager(ContainerManager):
    """The real manager over a recording client: counts listings, records the SDK calls made."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.client = mock.MagicMock(name="docker-client")
        self.fetches = 0
        self.fetch_gate: threading.Event | None = None

    def _docker(self) -> Any:
        return self.client

    def _statuses_sync(self, client: Any, store_id: str) -> dict[str, str]:
        self.fetches += 1
        if self.fetch_gate is not None and not self.fetch_gate.wait(timeout=10):
            raise AssertionError("fetch_gate was never opened")
        return {"code-workspace-x": f"answer {self.fetches}"}


@pytest.fixture
def counting() -> Any:
    manager = CountingManager(status_cache_seconds=3600)
    yield manager
    manager.close()


@pytest.mark.parametrize("change", ["create", "start", "unpause", "remove"])
async def test_every_change_of_the_real_manager_refreshes_the_listing(
    counting: CountingManager, change: str
) -> None:
    first = await counting.statuses(STORE)
    assert await counting.statuses(STORE) == first
    assert counting.fetches == 1
    if change == "create":
        await counting.create(_workspace(), STORE, {})
    else:
        await getattr(counting, change)("code-workspace-x")
    assert counting.client.mock_calls  # the change went to the (recording) engine
    assert await counting.statuses(STORE) == {"code-workspace-x": "answer 2"}


async def test_a_listing_begun_before_a_change_is_not_reused_after_it(
    counting: CountingManager,
) -> None:
    counting.fetch_gate = gate = threading.Event()
    early = asyncio.ensure_future(counting.statuses(STORE))
    try:
        await _until(lambda: counting.fetches == 1)
        await counting.start("code-workspace-x")
    finally:
        gate.set()
    assert await early == {"code-workspace-x": "answer 1"}
    assert await counting.statuses(STORE) == {"code-workspace-x": "answer 2"}


async def test_the_real_manager_shares_concurrent_listings(counting: CountingManager) -> None:
    counting.status_cache_seconds = 0
    counting.fetch_gate = gate = threading.Event()
    listings = asyncio.gather(*(counting.statuses(STORE) for _ in range(5)))
    try:
        await _until(lambda: counting.fetches >= 1)
        await asyncio.sleep(0.1)
    finally:
        gate.set()
    assert len(set(map(str, await listings))) == 1
    assert counting.fetches == 1
