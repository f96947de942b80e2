"""Recently read workspaces with their preview keys, so a page load reads the store once.

A page load is dozens of requests to one workspace; each used to read its record from the store
(a thread hop) and hash its key. The record and the expected key are kept a few seconds; a deleted
workspace is forgotten at once (`PreviewProxy.close_workspace`), and the owner of a workspace
never changes, so what is kept cannot authorize more than the store would.
"""

from __future__ import annotations

import time

from ..core.store import Workspace

# Seconds a workspace's record and key are reused by the next requests.
_RECORD_SECONDS = 5.0
_MAX_RECORDS = 4096


class WorkspaceRecords:
    """Recently read workspaces with their preview keys: one store read per page load."""

    def __init__(self) -> None:
        self._kept: dict[str, tuple[float, Workspace, bytes]] = {}

    def get(self, workspace_id: str) -> tuple[Workspace, bytes] | None:
        entry = self._kept.get(workspace_id)
        if entry is None:
            return None
        if time.monotonic() - entry[0] > _RECORD_SECONDS:
            del self._kept[workspace_id]
            return None
        return entry[1], entry[2]

    def put(self, workspace: Workspace, key: str) -> None:
        if len(self._kept) >= _MAX_RECORDS:
            self._kept.clear()
        self._kept[workspace.id] = (time.monotonic(), workspace, key.encode())

    def forget(self, workspace_id: str) -> None:
        self._kept.pop(workspace_id, None)
