"""When each workspace and each owner was last used: in memory, and now and then in the store.

The idle stopper reads `last_activity`, hub sync `owner_activity`; terminal traffic writes them
without ever waiting for SQLite.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor

from .store import WorkspaceStore


class ActivityLog:
    def __init__(
        self,
        store: WorkspaceStore,
        db_thread: ThreadPoolExecutor,
        interval: float,
        log: logging.Logger,
    ) -> None:
        self.store = store
        self._db_thread = db_thread
        self.interval = interval
        self.log = log
        self._recorded: dict[str, float] = {}
        # Workspace id -> epoch seconds of its latest known activity (terminal traffic, ensure,
        # terminal output); read by the idle stopper, lost on restart (last_used_at is not).
        self.last_activity: dict[str, float] = {}
        # Owner -> epoch seconds of their latest terminal traffic (reported to JupyterHub).
        self.owner_activity: dict[str, float] = {}

    def mark_active(self, workspace_id: str, when: float | None = None) -> None:
        """Remember activity in memory only (for the idle stopper); never goes backwards."""
        when = time.time() if when is None else when
        if when > self.last_activity.get(workspace_id, 0.0):
            self.last_activity[workspace_id] = when

    def record(self, workspace_id: str, when: float | None = None) -> None:
        """Note terminal use; written at most once per interval per workspace.

        The write is not awaited: a terminal frame never waits for SQLite.
        """
        now = time.time() if when is None else when
        self.mark_active(workspace_id, now)
        if now - self._recorded.get(workspace_id, 0.0) < self.interval:
            return
        self._recorded[workspace_id] = now
        written = self._db_thread.submit(self.store.record_use, workspace_id, now)
        written.add_done_callback(self._log_failure)

    def note_owner(self, owner: str) -> None:
        self.owner_activity[owner] = time.time()

    def forget(self, workspace_id: str) -> None:
        self._recorded.pop(workspace_id, None)
        self.last_activity.pop(workspace_id, None)

    def _log_failure(self, written: Future[None]) -> None:
        if not written.cancelled() and written.exception() is not None:
            self.log.warning("Could not record terminal activity: %s", written.exception())
