"""The record of workspaces: a SQLite file that survives restarts and migrates in place."""

from __future__ import annotations

import base64
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from typing import Any

from .sqlite import write_transaction

CONTAINER_PREFIX = "code-workspace-"

# Each entry upgrades the schema by one version; PRAGMA user_version records how far a file is.
_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE code_workspaces (
        id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        name TEXT NOT NULL,
        repo TEXT NOT NULL DEFAULT '',
        branch TEXT NOT NULL DEFAULT '',
        starred INTEGER NOT NULL DEFAULT 0,
        container_name TEXT UNIQUE,
        ttyd_credential TEXT NOT NULL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE INDEX code_workspaces_by_user ON code_workspaces (user_id, starred, updated_at);
    CREATE TABLE store_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
    """
    ALTER TABLE code_workspaces ADD COLUMN last_used_at REAL;
    """,
    # The slug of the workspace's profile (CodeWorkspacesApp.profiles); '' for none.
    """
    ALTER TABLE code_workspaces ADD COLUMN profile TEXT NOT NULL DEFAULT '';
    """,
)
SCHEMA_VERSION = len(_MIGRATIONS)


# Parameters per statement, under SQLite's historic limit of 999.
_PARAMETERS_PER_QUERY = 500


def new_workspace_id() -> str:
    """80 random bits, lower-case base32: URL-safe and valid in container, volume and DNS names."""
    return base64.b32encode(secrets.token_bytes(10)).decode("ascii").lower()


def volume_name(workspace_id: str) -> str:
    """The Docker volume holding a workspace's files (named like its container)."""
    return f"{CONTAINER_PREFIX}{workspace_id}"


def new_ttyd_credential() -> str:
    return f"coder:{secrets.token_urlsafe(24)}"


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class Workspace:
    """One user's code workspace as recorded; `ttyd_credential` never leaves the server."""

    id: str
    user_id: str
    name: str
    repo: str
    branch: str
    starred: bool
    container_name: str | None
    ttyd_credential: str
    created_at: float
    updated_at: float
    last_used_at: float | None = None
    # Slug of the profile it was made with ('' without profiles); a recreate uses it again.
    profile: str = ""

    @property
    def volume_name(self) -> str:
        return volume_name(self.id)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "repo": self.repo,
            "branch": self.branch,
            "starred": self.starred,
            "container_name": self.container_name,
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
            "last_used_at": _iso(self.last_used_at),
            # Only with profiles: without them the reply is as it always was.
            **({"profile": self.profile} if self.profile else {}),
        }

    @classmethod
    def new(cls, user_id: str, name: str, repo: str, branch: str, profile: str = "") -> Workspace:
        workspace_id = new_workspace_id()
        now = time.time()
        return cls(
            id=workspace_id,
            user_id=user_id,
            name=name,
            repo=repo,
            branch=branch,
            starred=False,
            container_name=f"{CONTAINER_PREFIX}{workspace_id}",
            ttyd_credential=new_ttyd_credential(),
            created_at=now,
            updated_at=now,
            profile=profile,
        )


def _make_private(path: str) -> None:
    """Create (or tighten) the store as 0600 in a 0700 folder: it holds ttyd credentials.

    SQLite gives its -wal and -shm files the database file's mode.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, mode=0o700, exist_ok=True)
    os.chmod(folder, 0o700)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    for name in (path, f"{path}-wal", f"{path}-shm"):
        if os.path.exists(name):
            os.chmod(name, 0o600)


_COLUMNS = tuple(Workspace.__dataclass_fields__)
# Column names come from the dataclass, never from input; values always go through placeholders.
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM code_workspaces"  # noqa: S608


def _row_to_workspace(row: sqlite3.Row) -> Workspace:
    values = dict(row)
    values["starred"] = bool(values["starred"])
    return Workspace(**values)


class WorkspaceStore:
    """Thread-safe access to the workspace table; every call is one short transaction."""

    def __init__(self, path: str) -> None:
        self.path = path
        _make_private(path)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA busy_timeout = 5000")
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = NORMAL")
        self._migrate()
        self.store_id = self._store_id()

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        return write_transaction(self._lock, self._db)

    def _migrate(self) -> None:
        with self._transaction() as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise RuntimeError(
                    f"{self.path} has schema version {version}, newer than this "
                    f"jupyter-popebot-code understands ({SCHEMA_VERSION}): upgrade the package."
                )
            for script in _MIGRATIONS[version:]:
                for statement in filter(str.strip, script.split(";")):
                    db.execute(statement)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _store_id(self) -> str:
        """A random id for this file, put on its containers so stores never touch each other's."""
        with self._transaction() as db:
            row = db.execute("SELECT value FROM store_meta WHERE key = 'store_id'").fetchone()
            if row:
                return str(row[0])
            store_id = secrets.token_hex(8)
            db.execute("INSERT INTO store_meta (key, value) VALUES ('store_id', ?)", (store_id,))
            return store_id

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def list_for_user(self, user_id: str) -> list[Workspace]:
        """The user's workspaces, starred first, then most recently updated."""
        with self._lock:
            rows = self._db.execute(
                f"{_SELECT} WHERE user_id = ? ORDER BY starred DESC, updated_at DESC, id",
                (user_id,),
            ).fetchall()
        return [_row_to_workspace(row) for row in rows]

    def list_all(self) -> list[Workspace]:
        """Every owner's workspaces, by owner, then as list_for_user orders them."""
        with self._lock:
            rows = self._db.execute(
                f"{_SELECT} ORDER BY user_id, starred DESC, updated_at DESC, id"
            ).fetchall()
        return [_row_to_workspace(row) for row in rows]

    def owners(self) -> list[str]:
        """Everyone who owns at least one workspace."""
        with self._lock:
            rows = self._db.execute(
                "SELECT DISTINCT user_id FROM code_workspaces ORDER BY user_id"
            ).fetchall()
        return [str(row[0]) for row in rows]

    def count_for_user(self, user_id: str) -> int:
        with self._lock:
            row = self._db.execute(
                "SELECT COUNT(*) FROM code_workspaces WHERE user_id = ?", (user_id,)
            ).fetchone()
        return int(row[0])

    def get(self, workspace_id: str) -> Workspace | None:
        with self._lock:
            row = self._db.execute(f"{_SELECT} WHERE id = ?", (workspace_id,)).fetchone()
        return _row_to_workspace(row) if row else None

    def by_container_names(self, names: list[str]) -> list[Workspace]:
        """The workspaces whose containers have these names (container_name is indexed)."""
        found: list[Workspace] = []
        with self._lock:
            for start in range(0, len(names), _PARAMETERS_PER_QUERY):
                chunk = names[start : start + _PARAMETERS_PER_QUERY]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"{_SELECT} WHERE container_name IN ({marks}) ORDER BY id", chunk
                ).fetchall()
                found += [_row_to_workspace(row) for row in rows]
        return found

    def insert(self, workspace: Workspace) -> None:
        values = asdict(workspace)
        values["starred"] = int(workspace.starred)
        placeholders = ", ".join(f":{column}" for column in _COLUMNS)
        with self._transaction() as db:
            db.execute(
                f"INSERT INTO code_workspaces ({', '.join(_COLUMNS)}) VALUES ({placeholders})",  # noqa: S608
                values,
            )

    def _update(
        self, workspace_id: str, change: Callable[[Workspace], Workspace]
    ) -> Workspace | None:
        with self._transaction() as db:
            row = db.execute(f"{_SELECT} WHERE id = ?", (workspace_id,)).fetchone()
            if row is None:
                return None
            updated = change(_row_to_workspace(row))
            db.execute(
                "UPDATE code_workspaces SET name = ?, starred = ?, updated_at = ? WHERE id = ?",
                (updated.name, int(updated.starred), updated.updated_at, workspace_id),
            )
            return updated

    def rename(self, workspace_id: str, name: str) -> Workspace | None:
        return self._update(workspace_id, lambda ws: replace(ws, name=name, updated_at=time.time()))

    def toggle_star(self, workspace_id: str) -> Workspace | None:
        return self._update(
            workspace_id, lambda ws: replace(ws, starred=not ws.starred, updated_at=time.time())
        )

    def record_use(self, workspace_id: str, when: float) -> None:
        """Set last_used_at to `when` unless a later use is already recorded."""
        with self._transaction() as db:
            db.execute(
                "UPDATE code_workspaces SET last_used_at = ? "
                "WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)",
                (when, workspace_id, when),
            )

    def delete(self, workspace_id: str) -> bool:
        with self._transaction() as db:
            cursor = db.execute("DELETE FROM code_workspaces WHERE id = ?", (workspace_id,))
            return cursor.rowcount > 0
