"""Idle stop: a workspace container nobody has used for `idle_timeout` seconds is stopped.

Activity is what the service already knows (terminal traffic through the relay in either
direction, ensure) plus output in the container's terminal session, which the image's session
keeper stamps on a file (tmux on its windows) whether a browser is attached or not: a coding
agent writing output unattended keeps its workspace running, a shell sitting at its prompt does
not. A container is never removed here; the next ensure starts it again with its volume (the
files) intact; its processes, terminal session and recent output end with the stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from .. import metrics
from ..errors import ContainerError, DockerUnavailable
from .service import WorkspaceService
from .store import Workspace

# A check never waits longer than this, so a container stops within idle_timeout + 60 s.
MAX_CHECK_INTERVAL = 60.0
MIN_CHECK_INTERVAL = 0.5


def check_interval(idle_timeout: float, configured: float) -> float:
    """Seconds between checks: at most `configured`, a quarter of the timeout, and 60 s."""
    return max(MIN_CHECK_INTERVAL, min(configured, idle_timeout / 4, MAX_CHECK_INTERVAL))


class IdleStopper:
    """Checks the running workspaces of one store periodically and stops the idle ones."""

    def __init__(
        self,
        service: WorkspaceService,
        idle_timeout: float,
        interval: float,
        close_terminals: Callable[[str, str], None],
        log: logging.Logger,
    ) -> None:
        self.service = service
        self.idle_timeout = idle_timeout
        self.interval = check_interval(idle_timeout, interval)
        # (workspace id, reason): closes that workspace's open terminals before its stop.
        self.close_terminals = close_terminals
        self.log = log
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.idle_timeout > 0 and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        # The app logs the timeout and where it comes from at start.
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.check()
            except (DockerUnavailable, ContainerError) as err:
                self.log.info("Idle check skipped: %s", err)
            except Exception:
                # One bad check must not end idle stopping for the server's lifetime.
                self.log.exception("Idle check failed")

    async def check(self) -> list[str]:
        """One pass over the running workspaces; answers the ids it stopped."""
        stopped = []
        for workspace in await self.service.running_workspaces():
            if await self._check_one(workspace):
                stopped.append(workspace.id)
        return stopped

    async def _check_one(self, workspace: Workspace) -> bool:
        service = self.service
        name = workspace.container_name
        assert name
        output_at = await service.containers.terminal_activity(name)
        if output_at is not None:
            # Recorded like terminal traffic, so last_used_at shows unattended output too.
            service.record_activity(workspace.id, output_at)
        now = time.time()
        last = max(service.last_activity.get(workspace.id, 0.0), workspace.last_used_at or 0.0)
        if now - last < self.idle_timeout:
            return False
        # Nothing known (e.g. after a restart of this server): the container's start counts.
        state = await service.containers.state(name)
        if state is None or (state.started_at and now - state.started_at < self.idle_timeout):
            return False
        last = max(last, state.started_at or 0.0)
        reason = f"workspace stopped after {self.idle_timeout:g} s without activity"
        stopped = await service.stop_if_idle(
            workspace.id, last, lambda: self.close_terminals(workspace.id, reason)
        )
        if stopped:
            metrics.IDLE_STOPS.inc()
            self.log.info(
                "Stopped idle code workspace %s of %s (last activity %.0f s ago)",
                workspace.id,
                workspace.user_id,
                now - last,
            )
        return stopped
