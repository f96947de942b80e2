"""WorkspaceService's rules over the in-memory container manager (fast tier, no Docker).

The docker tier proves the same rules against the real engine (tests/test_api.py); here each
container state and failure can be set exactly, and races are made to happen on purpose.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from dataclasses import replace
from typing import Any

import pytest

from jupyter_popebot_code.backends.docker.manager import (
    OWNER_LABEL,
    STORE_LABEL,
    TTYD_PORT,
    WORKSPACE_LABEL,
)
from jupyter_popebot_code.core.idle import IdleStopper
from jupyter_popebot_code.core.service import WorkspaceService
from jupyter_popebot_code.core.store import Workspace
from jupyter_popebot_code.core.validation import WorkspaceSpec
from jupyter_popebot_code.errors import (
    ContainerError,
    ContainerMissing,
    ContainerNotRunning,
    DockerUnavailable,
    ServerAtCapacity,
    WorkspaceNotFound,
)

from ..memory_containers import InMemoryContainerManager

OWNER = "alice"


async def create(service: WorkspaceService, name: str = "ws", repo: str = "") -> Workspace:
    return await service.create(OWNER, WorkspaceSpec(name=name, repo=repo, branch=""))


async def until(predicate: Any, timeout: float = 5.0) -> None:
    """Yield to the loop until `predicate()` holds; fail after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


async def test_create_records_a_started_labelled_container_with_its_volume(
    workspaces: WorkspaceService, memory: InMemoryContainerManager
) -> None:
    workspace = await create(workspaces, repo="jupyter/notebook")
    assert workspace.container_name
    container = memory.containers[workspace.container_name]
    assert container.status == "running"
    assert container.labels[WORKSPACE_LABEL] == workspace.id
    assert container.labels[OWNER_LABEL] == OWNER
    assert container.labels[STORE_LABEL] == workspaces.store.store_id
    assert container.env["REPO_URL"] == "https://github.com/jupyter/notebook.git"
    assert container.env["GIT_ALLOW_PROTOCOL"] == "https:ssh:git"
    assert container.volume == workspace.volume_name in memory.volumes
    assert await workspaces.get(OWNER, workspace.id) == workspace


# -- ensure: every container state ---------------------------------------------------------------

ENSURE_MATRIX = [
    # (status set, statuses reported first, ensure's answer, the call that brought it up)
    ("running", [], "running", None),
    ("created", [], "started", "start"),
    ("exited", [], "started", "start"),
    ("paused", [], "started", "unpause"),
    ("running", ["restarting", "restarting"], "running", None),
    ("exited", ["restarting"], "started", "start"),
    ("dead", [], "created", "create"),
    ("removing", [], "created", "create"),
]


@pytest.mark.parametrize(("status", "upcoming", "answer", "call"), ENSURE_MATRIX)
async def test_ensure_brings_up_a_container_in_any_state(
    workspaces: WorkspaceService,
    memory: InMemoryContainerManager,
    status: str,
    upcoming: list[str],
    answer: str,
    call: str | None,
) -> None:
    workspace = await create(workspaces)
    assert workspace.container_name
    before = memory.containers[workspace.container_name]
    memory.set_status(workspace.container_name, status, *upcoming)
    memory.calls.clear()

    result = await workspaces.ensure(OWNER, workspace.id)

    assert result.status == answer
    after = memory.containers[workspace.container_name]
    assert after.status == "running"
    for method in ("start", "unpause", "create"):
        assert memory.calls[method] == (1 if method == call else 0), method
    # Only a recreate replaces the container (the user's processes survive everything else);
    # the volume, with the user's files, is never removed.
    assert (after is before) == (call != "create")
    assert memory.calls["remove_volume"] == 0
    assert workspace.volume_name in memory.volumes


async def test_ensure_recreates_a_missing_container_on_the_same_volume(
    workspaces: WorkspaceService, memory: InMemoryContainerManager
) -> None:
    workspace = await create(workspaces)
    assert workspace.container_name
    del memory.containers[workspace.container_name]
    result = await workspaces.ensure(OWNER, workspace.id)
    assert result.status == "created"
    assert memory.containers[workspace.container_name].volume == workspace.volume_name
    assert (await workspaces.describe(OWNER, workspace.id))[1] == "running"


async def test_ensure_gives_up_on_a_container_that_keeps_restarting(
    workspaces: WorkspaceService, memory: InMemoryContainerManager
) -> None:
    memory.restart_wait_timeout = 1.0
    workspace = await create(workspaces)
    assert workspace.container_name
    memory.set_status(workspace.container_name, "restarting")
    with pytest.raises(ContainerError, match="still restarting"):
        await workspaces.ensure(OWNER, workspace.id)
    assert memory.calls["create"] == 1  # nothing recreated behind the user's back


@pytest.mark.parametrize(
    "error", [ContainerMissing("gone meanwhile"), ContainerError("cannot start")]
)
async def test_a_container_that_will_not_start_is_recreated(
    workspaces: WorkspaceService, memory: InMemoryContainerManager, error: ContainerError
) -> None:
    workspace = await create(workspaces)
    assert workspace.container_name
    memory.set_status(workspace.container_name, "exited")
    memory.fail_next("start", error)
    result = await workspaces.ensure(OWNER, workspace.id)
    assert result.status == "created"
    assert memory.containers[workspace.container_name].status == "running"


async def test_ensure_while_the_engine_is_down_keeps_the_workspace(
    workspaces: WorkspaceService, memory: InMemoryContainerManager
) -> None:
    workspace = await create(workspaces)
    memory.engine_down = True
    with pytest.raises(DockerUnavailable):
        await workspaces.ensure(OWNER, workspace.id)
    memory.engine_down = False
    assert (await workspaces.ensure(OWNER, workspace.id)).status == "running"


async def test_ensure_without_a_container_record(
    workspaces: WorkspaceService, memory: InMemoryContainerManager
) -> None:
    imported = replace(Workspace.new(OWNER, "imported", "", ""), container_name=None)
    workspaces.store.insert(imported)
    assert (await workspaces.ensure(OWNER, imported.id)).status == "no_container"
    assert (await workspaces.describe(OWNER, imported.id))[1] == "missing"
    assert memory.calls["create"] == 0


async def test_another_owner_cannot_see_or_touch_a_workspace(
    workspaces: WorkspaceService, memory: InMemoryContainerManager
) -> None:
    workspace = await create(workspaces)
    assert await workspaces.get("bob", workspace.id) is None
    assert await workspaces.list_with_status("bob") == []
    for attempt in (
        workspaces.describe("bob", workspace.id),
        workspaces.ensure("bob", workspace.id),
        workspaces.rename("bob", workspace.id, "stolen"),
        workspaces.toggle_star("bob", workspace.id),
        workspaces.delete("bob", workspace.id),
    ):
        with pytest.raises(WorkspaceNotFound):
            await attempt
    assert await workspaces.get(OWNER, workspace.id) == workspace
    assert workspace.container_name in memory.containers


# -- per-workspace locks ---------------------------------------------------------------------------


async def test_ten_concurrent_ensures_create_exactly_one_container(
    workspaces: WorkspaceService, memory: InMemoryContainerManager
) -> None:
    workspace = await create(workspaces)
    assert workspace.container_name
    del memory.containers[workspace.container_name]
    memory.calls.clear()
    results = await asyncio.gather(*(workspaces.ensure(OWNER, workspace.id) for _ in range(10)))
    assert sorted(r.status for r in results) == ["created"] + ["running"] * 9
    assert memory.calls["create"] == 1
    assert memory.overlaps == []


async def test_locks_are_per_workspace(
    workspaces: WorkspaceService, memory: InMemoryContainerManager
) -> None:
    """Two workspaces are ensured at the same time: one slow create does not hold up another."""
    first, second = await create(workspaces, "first"), await create(workspaces, "second")
    for workspace in (first, second):
        assert workspace.container_name
        del memory.containers[workspace.container_name]
    memory.calls.clear()
    memory.gates["create"] = gate = asyncio.Event()
    both = asyncio.gather(*(workspaces.ensure(OWNER, w.id) for w in (first, second)))
    try:
        await until(lambda: memory.calls["create"] == 2)  # both inside create at once
    finally:
        gate.set()
    assert [r.status for r in await both] == ["created", "created"]


async def test_starts_in_flight_count_against_the_server_wide_cap(
    workspaces: WorkspaceService, memory: InMemoryContainerManager
) -> None:
    """Two creates held inside Docker fill a cap of 2: a third owner's create and an ensure are
    refused at once, and the two in flight were not serialised."""

    async def cap() -> int:
        return 2

    workspaces.running_cap = cap
    stopped = await create(workspaces, "stopped")
    assert stopped.container_name
    memory.set_status(stopped.container_name, "exited")
    memory.calls.clear()
    memory.gates["create"] = gate = asyncio.Event()
    spec = WorkspaceSpec(name="held", repo="", branch="")
    held = asyncio.gather(*(workspaces.create(owner, spec) for owner in ("bob", "carol")))
    try:
        await until(lambda: memory.calls["create"] == 2)  # both inside create at once
        # Made but not started yet, as between Docker's create and start: only the
        # service's own reservations say that they are coming.
        for name in list(memory.containers):
            if name != stopped.container_name:
                memory.set_status(name, "created")
        with pytest.raises(ServerAtCapacity, match=r"already runs 2 workspaces"):
            await workspaces.create("dave", spec)
        with pytest.raises(ServerAtCapacity, match=r"max_running_workspaces = 2"):
            await workspaces.ensure(OWNER, stopped.id)
    finally:
        gate.set()
    await held
    for name in list(memory.containers):
        if name != stopped.container_name:
            memory.set_status(name, "running")
    # Stopping one frees its place.
    first = (await workspaces.list_with_status("bob"))[0][0]
    await workspaces.stop("bob", first.id)
    assert (await workspaces.ensure(OWNER, stopped.id)).status == "started"


async def test_concurrent_delete_and_ensure_leave_nothing(
    workspaces: WorkspaceService, memory: InMemoryContainerManager
) -> None:
    workspace = await create(workspaces)
    assert workspace.container_name
    del memory.containers[workspace.container_name]
    ensure, delete = await asyncio.gather(
        workspaces.ensure(OWNER, workspace.id),
        workspaces.delete(OWNER, workspace.id),
        return_exceptions=True,
    )
    assert delete is None
    assert ensure is None or isinstance(ensure, WorkspaceNotFound) or ensure.status == "created"
    assert memory.containers == {}
    assert memory.volumes == {}
    assert await workspaces.list_with_status(OWNER) == []
    assert memory.overlaps == []


# -- create rolls back ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "error"),
    [
        ("create_container", ContainerError("image not found")),
        ("create", DockerUnavailable("engine down")),
    ],
)
async def test_a_failed_create_leaves_nothing(
    workspaces: WorkspaceService, memory: InMemoryContainerManager, method: str, error: Exception
) -> None:
    memory.fail_next(method, error)
    with pytest.raises(type(error)):
        await create(workspaces)
    assert await workspaces.list_with_status(OWNER) == []
    assert memory.containers == {}
    assert memory.volumes == {}


async def test_a_create_whose_record_cannot_be_written_leaves_no_container(
    workspaces: WorkspaceService, memory: InMemoryContainerManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(workspace: Workspace) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(workspaces.store, "insert", refuse)
    with pytest.raises(sqlite3.OperationalError):
        await create(workspaces)
    assert memory.containers == {}
    assert memory.volumes == {}


async def test_a_cancelled_create_leaves_nothing(
    workspaces: WorkspaceService, memory: InMemoryContainerManager
) -> None:
    memory.gates["create"] = asyncio.Event()  # never set: the create hangs after its effect
    task = asyncio.ensure_future(create(workspaces))
    await until(lambda: len(memory.containers) == 1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert memory.containers == {}
    assert memory.volumes == {}
    assert await workspaces.list_with_status(OWNER) == []


# -- delete ----------------------------------------------------------------------------------------


async def test_delete_removes_container_volume_and_record(
    workspaces: WorkspaceService, memory: InMemoryContainerManager
) -> None:
    workspace = await create(workspaces)
    await workspaces.delete(OWNER, workspace.id)
    assert memory.containers == {}
    assert memory.volumes == {}
    assert await workspaces.get(OWNER, workspace.id) is None
    with pytest.raises(WorkspaceNotFound):
        await workspaces.delete(OWNER, workspace.id)


async def test_delete_can_keep_the_volume(
    workspaces: WorkspaceService, memory: InMemoryContainerManager
) -> None:
    memory.keep_volume_on_delete = True
    workspace = await create(workspaces)
    await workspaces.delete(OWNER, workspace.id)
    assert memory.containers == {}
    assert list(memory.volumes) == [workspace.volume_name]


async def test_a_failed_delete_keeps_the_record(
    workspaces: WorkspaceService, memory: InMemoryContainerManager
) -> None:
    workspace = await create(workspaces)
    memory.fail_next("remove", DockerUnavailable("engine down"))
    with pytest.raises(DockerUnavailable):
        await workspaces.delete(OWNER, workspace.id)
    assert await workspaces.get(OWNER, workspace.id) == workspace
    assert workspace.volume_name in memory.volumes


# -- the orphan sweep ------------------------------------------------------------------------------


async def test_the_orphan_sweep_removes_only_this_stores_unrecorded_containers(
    workspaces: WorkspaceService, memory: InMemoryContainerManager
) -> None:
    kept = await create(workspaces)
    orphan = Workspace.new(OWNER, "crashed mid-create", "", "")
    elsewhere = Workspace.new(OWNER, "another server's", "", "")
    memory.add_foreign(orphan, workspaces.store.store_id, status="created")
    memory.add_foreign(elsewhere, "another-store-id")
    await workspaces.remove_orphans()
    assert set(memory.containers) == {kept.container_name, elsewhere.container_name}


async def test_the_orphan_sweep_waits_for_a_create_in_progress(
    workspaces: WorkspaceService, memory: InMemoryContainerManager
) -> None:
    """A container whose record is about to be written is not an orphan: the lock says so."""
    memory.gates["create"] = gate = asyncio.Event()
    creating = asyncio.ensure_future(create(workspaces))
    await until(lambda: len(memory.containers) == 1)
    sweep = asyncio.ensure_future(workspaces.remove_orphans())
    await until(lambda: memory.calls["workspace_ids"] == 1)
    await asyncio.sleep(0.05)
    assert not sweep.done()  # held by the workspace's lock
    gate.set()
    workspace = await creating
    await sweep
    assert list(memory.containers) == [workspace.container_name]
    assert memory.calls["remove"] == 0


async def test_the_orphan_sweep_is_skipped_while_the_engine_is_down(
    workspaces: WorkspaceService, memory: InMemoryContainerManager
) -> None:
    orphan = Workspace.new(OWNER, "crashed", "", "")
    memory.add_foreign(orphan, workspaces.store.store_id)
    memory.engine_down = True
    await workspaces.remove_orphans()  # logs and returns
    memory.engine_down = False
    assert orphan.container_name in memory.containers


# -- reading ---------------------------------------------------------------------------------------


async def test_listing_reports_each_status_and_unknown_without_the_engine(
    workspaces: WorkspaceService, memory: InMemoryContainerManager
) -> None:
    await create(workspaces, "r")
    paused, gone = await create(workspaces, "p"), await create(workspaces, "g")
    assert paused.container_name
    assert gone.container_name
    memory.set_status(paused.container_name, "paused")
    del memory.containers[gone.container_name]
    listed = {ws.name: status for ws, status in await workspaces.list_with_status(OWNER)}
    assert listed == {"r": "running", "p": "paused", "g": "missing"}
    memory.engine_down = True
    listed = {ws.name: status for ws, status in await workspaces.list_with_status(OWNER)}
    assert listed == {"r": "unknown", "p": "unknown", "g": "unknown"}


async def test_terminal_endpoint_only_for_a_running_container(
    workspaces: WorkspaceService, memory: InMemoryContainerManager
) -> None:
    workspace = await create(workspaces)
    assert workspace.container_name
    endpoint = await workspaces.terminal_endpoint(workspace)
    assert (endpoint.host, endpoint.port) == ("10.99.0.2", TTYD_PORT)
    assert endpoint.credential == workspace.ttyd_credential
    memory.set_status(workspace.container_name, "exited")
    with pytest.raises(ContainerNotRunning, match="exited") as raised:
        await workspaces.terminal_endpoint(workspace, fresh=True)
    assert raised.value.status == "exited"  # the relay keeps dialling only what comes back up


# -- defects found in review ---------------------------------------------------------------------


async def test_ensure_unpauses_again_when_docker_applies_a_late_pause(
    workspaces: WorkspaceService, memory: InMemoryContainerManager
) -> None:
    """dockerd can apply the "paused" event of a quick pause/unpause after the unpause."""
    workspace = await create(workspaces)
    assert workspace.container_name
    memory.set_status(workspace.container_name, "paused")
    memory.containers[workspace.container_name].repause = 1
    memory.calls.clear()
    result = await workspaces.ensure(OWNER, workspace.id)
    assert result.status == "started"
    assert memory.containers[workspace.container_name].status == "running"
    assert memory.calls["unpause"] == 2


async def test_ensure_reports_a_container_that_stays_paused(
    workspaces: WorkspaceService, memory: InMemoryContainerManager
) -> None:
    workspace = await create(workspaces)
    assert workspace.container_name
    memory.set_status(workspace.container_name, "paused")
    memory.containers[workspace.container_name].repause = 100
    with pytest.raises(ContainerError, match="stays paused"):
        await workspaces.ensure(OWNER, workspace.id)
    assert memory.calls["unpause"] == 5  # bounded


async def test_the_orphan_sweep_removes_the_orphans_volume_too(
    workspaces: WorkspaceService, memory: InMemoryContainerManager
) -> None:
    kept = await create(workspaces, "kept")
    orphan = Workspace.new(OWNER, "crashed", "", "")
    memory.add_foreign(orphan, workspaces.store.store_id)
    await workspaces.remove_orphans()
    assert orphan.container_name not in memory.containers
    assert orphan.volume_name not in memory.volumes
    assert kept.volume_name in memory.volumes


async def test_an_unexpected_error_in_the_orphan_sweep_never_escapes(
    workspaces: WorkspaceService, memory: InMemoryContainerManager
) -> None:
    """It runs as a start-up callback: an exception there would only be a traceback in the log."""
    memory.fail_next("workspace_ids", RuntimeError("something nobody expected"))
    await workspaces.remove_orphans()  # logs, returns


# -- idle stop: only the running workspaces are looked at ----------------------------------------


async def test_running_workspaces_costs_the_running_ones_not_every_record(
    workspaces: WorkspaceService, memory: InMemoryContainerManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = [await create(workspaces, name=f"ws{i}") for i in range(6)]
    for workspace in made[2:]:
        assert workspace.container_name
        memory.containers[workspace.container_name].status = "exited"
    # A record whose container belongs to another store is never reported as running here.
    stranger = made[1]
    assert stranger.container_name
    memory.containers[stranger.container_name].labels[STORE_LABEL] = "another-store"

    def no_full_listing() -> list[Workspace]:
        raise AssertionError("the idle check must not read every record")

    monkeypatch.setattr(workspaces.store, "list_all", no_full_listing)
    running = await workspaces.running_workspaces()
    assert [ws.id for ws in running] == [made[0].id]


async def test_the_idle_check_stops_only_idle_running_workspaces(
    workspaces: WorkspaceService, memory: InMemoryContainerManager
) -> None:
    idle, busy, stopped = [await create(workspaces, name=n) for n in ("idle", "busy", "stopped")]
    for workspace in (idle, busy, stopped):
        assert workspace.container_name
    memory.containers[stopped.container_name or ""].status = "exited"
    long_ago = time.time() - 3600
    for workspace in (idle, busy, stopped):
        workspaces.last_activity[workspace.id] = long_ago
    workspaces.mark_active(busy.id)
    closed: list[str] = []
    stopper = IdleStopper(
        workspaces,
        idle_timeout=60,
        interval=30,
        close_terminals=lambda workspace_id, reason: closed.append(workspace_id),
        log=logging.getLogger("test"),
    )
    assert await stopper.check() == [idle.id]
    assert closed == [idle.id]
    assert memory.containers[idle.container_name or ""].status == "exited"
    assert memory.containers[busy.container_name or ""].status == "running"
