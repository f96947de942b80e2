"""The workspace store on disk: private to the server's user, and never waited on by the loop."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
from pathlib import Path
from typing import Any

import pytest

from .conftest import Api


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def loose_store(tmp_path: Path) -> Path:
    """A store folder and file made world-readable by an older version or a careless umask."""
    folder = tmp_path / "store"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    path = folder / "workspaces.sqlite"
    sqlite3.connect(path).close()
    path.chmod(0o644)
    return path


@pytest.fixture
def server_settings(loose_store: Path) -> dict[str, Any]:
    return {"CodeWorkspacesApp": {"db_path": str(loose_store)}}


async def test_the_store_is_private_to_the_servers_user(api: Api, loose_store: Path) -> None:
    await api.create()  # written through, so SQLite has made its -wal and -shm files
    assert mode(loose_store.parent) == 0o700
    for path in loose_store.parent.iterdir():
        assert mode(path) == 0o600, path


async def test_a_locked_database_never_stalls_other_requests(
    api: Api, jp_fetch: Any, loose_store: Path
) -> None:
    workspace = await api.create(name="before")
    # Another process holds the write lock, as a backup or a second server would for a while.
    holder = sqlite3.connect(loose_store, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    finished: list[str] = []

    async def rename() -> None:
        assert (await api.call("PATCH", workspace["id"], body={"name": "after"}))[0] == 200
        finished.append("rename")

    renaming = asyncio.ensure_future(rename())
    await asyncio.sleep(0.5)  # the rename now waits for the lock
    status = await jp_fetch("api", "status")
    assert status.code == 200
    finished.append("status")
    holder.execute("COMMIT")
    holder.close()
    await asyncio.wait_for(renaming, 30)
    # The loop answered while the rename waited on SQLite; it did not wait with it.
    assert finished == ["status", "rename"]
