"""The SQLite store on its own: migrations in place and concurrent use from many threads."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from jupyter_popebot_code.core.store import _MIGRATIONS, SCHEMA_VERSION, Workspace, WorkspaceStore


def test_an_old_schema_is_migrated_in_place_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "v1.sqlite"
    db = sqlite3.connect(path)
    db.executescript(_MIGRATIONS[0])
    db.execute(
        "INSERT INTO code_workspaces (id, user_id, name, repo, branch, starred, container_name,"
        " ttyd_credential, created_at, updated_at)"
        " VALUES ('abc', 'alice', 'old', 'o/r', 'main', 1, 'code-workspace-abc', 'coder:x', 1, 2)"
    )
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()

    store = WorkspaceStore(str(path))
    workspace = store.get("abc")
    assert workspace is not None
    assert (workspace.name, workspace.starred, workspace.last_used_at) == ("old", True, None)
    store.record_use("abc", 42.0)
    assert store.get("abc").last_used_at == 42.0  # type: ignore[union-attr]
    store.close()
    check = sqlite3.connect(path)
    assert check.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    check.close()


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.sqlite"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(RuntimeError, match="upgrade the package"):
        WorkspaceStore(str(path))


def test_the_store_id_is_stable_across_opens(tmp_path: Path) -> None:
    first = WorkspaceStore(str(tmp_path / "s.sqlite"))
    store_id = first.store_id
    first.close()
    second = WorkspaceStore(str(tmp_path / "s.sqlite"))
    assert second.store_id == store_id
    second.close()


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    store = WorkspaceStore(str(tmp_path / "c.sqlite"))
    created: list[str] = []
    errors: list[BaseException] = []

    def work(user: str) -> None:
        try:
            for n in range(50):
                workspace = Workspace.new(user, f"{user}-{n}", "", "")
                store.insert(workspace)
                created.append(workspace.id)
                store.toggle_star(workspace.id)
                store.rename(workspace.id, f"{user}-{n}-renamed")
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=work, args=(f"user{t}",)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    listed = {ws.id for t in range(8) for ws in store.list_for_user(f"user{t}")}
    assert listed == set(created)
    assert len(created) == 400
    listed = store.list_for_user("user3")
    assert len(listed) == 50
    assert all(w.starred and w.name.endswith("-renamed") for w in listed)
    store.close()


def test_ids_are_url_safe_and_distinct() -> None:
    ids = {Workspace.new("u", "n", "", "").id for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) == 16 and i.isalnum() and i.islower() for i in ids)


def test_workspaces_are_found_by_container_name_past_the_parameter_limit(tmp_path: Path) -> None:
    store = WorkspaceStore(str(tmp_path / "ws.sqlite"))
    made = [Workspace.new("alice", f"ws{i}", "", "") for i in range(1200)]
    for workspace in made:
        store.insert(workspace)
    wanted = [ws.container_name or "" for ws in made[::2]] + ["code-workspace-unknown"]
    found = store.by_container_names(wanted)
    assert sorted(ws.id for ws in found) == sorted(ws.id for ws in made[::2])
    assert store.by_container_names([]) == []
