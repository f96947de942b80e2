"""Personal secrets into the owner's workspaces: at every container start, and on each change.

A container gets its owner's secrets once per start (the tmpfs they live in starts empty), right
after create or ensure brings it up, and again in every running container of the owner when a
secret is added, changed or deleted: new shells see them at once, without a restart. Only the
owner's own containers are ever written to, and values go nowhere else (not into logs or errors).
"""

from __future__ import annotations

import asyncio
import logging
import shlex
import weakref
from collections.abc import Iterable

from traitlets.config import LoggingConfigurable

from ..backends.base import WorkspaceBackend
from ..errors import ContainerError, DockerUnavailable, SecretKeyError
from .secrets import PersonalSecrets, Secret
from .service import WorkspaceService
from .store import Workspace, WorkspaceStore

ENV_HEADER = (
    "# Personal secrets of this workspace's owner, written by the Jupyter server (Code "
    "Workspace Secrets);\n# edits here are lost: change them in JupyterLab.\n"
)
# Delivered at no known start (the event stream gave no start time).
_UNKNOWN_START = -1.0


def render_payload(secrets: Iterable[Secret]) -> bytes:
    """The installer's stdin: git-credentials first, then env (the sign that they arrived)."""
    listed = list(secrets)
    env = ENV_HEADER + "".join(f"export {s.name}={shlex.quote(s.value)}\n" for s in listed)
    seen: set[str] = set()
    git_lines = []
    for secret in listed:
        if secret.git_host and secret.git_host not in seen:
            seen.add(secret.git_host)
            git_lines.append(f"{secret.git_host}\t{secret.value}\n")
    files = (("git-credentials", "".join(git_lines)), ("env", env))
    return b"".join(f"{name}\0{content}\0".encode() for name, content in files)


class SecretDelivery:
    """Keeps every running container of an owner holding that owner's current secrets."""

    def __init__(
        self,
        secrets: PersonalSecrets,
        store: WorkspaceStore,
        containers: WorkspaceBackend,
        log: logging.Logger,
    ) -> None:
        self.secrets = secrets
        self.store = store
        self.containers = containers
        self.log = log
        # Container name -> the start (epoch seconds) its secrets were written for.
        self._delivered: dict[str, float] = {}
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        # Deliveries nobody waits for (owners without secrets), by container name.
        self._background: dict[str, asyncio.Task[None]] = {}

    def _lock_for(self, owner: str) -> asyncio.Lock:
        lock = self._locks.get(owner)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[owner] = lock
        return lock

    async def container_up(self, workspace: Workspace) -> None:
        """After create or ensure: write the secrets unless this start already has them."""
        name = workspace.container_name
        if not name:
            return
        started = await self._running_since(name)
        if started is None or self._delivered.get(name) == started or name in self._background:
            return
        if await self.secrets.listing(workspace.user_id):
            await self._deliver(workspace.user_id, {name: started})
            return
        # No secrets: a shell that starts before the (empty) files are written misses nothing,
        # so the start does not wait for the write (a `docker exec`, or a job on a Swarm node);
        # only the first-start clone waits for them, in the container.
        task = asyncio.get_running_loop().create_task(
            self._deliver(workspace.user_id, {name: started})
        )
        self._background[name] = task
        task.add_done_callback(lambda _: self._background.pop(name, None))

    async def close(self) -> None:
        """Cancel the deliveries still under way (the server is stopping)."""
        tasks = list(self._background.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def owner_changed(self, owner: str) -> None:
        """After a secret of `owner` changed: rewrite them in each of their running containers."""
        workspaces = await asyncio.get_running_loop().run_in_executor(
            None, self.store.list_for_user, owner
        )
        targets: dict[str, float] = {}
        for workspace in workspaces:
            name = workspace.container_name
            if not name:
                continue
            started = await self._running_since(name, ask=True)
            if started is None:
                # Stopped or paused: it gets them when it runs again.
                self._delivered.pop(name, None)
            else:
                targets[name] = started
        await self._deliver(owner, targets)

    async def _running_since(self, name: str, ask: bool = False) -> float | None:
        """The container's start time if it runs now, else None.

        From the event stream when it is live (then a container that already got its secrets is
        taken as current unless `ask`: no Docker call on every ensure); else asked.
        """
        try:
            state = self.containers.known_running(name)
            if state is None:
                # Only while events are followed live: else (on a Swarm, always) a new start
                # of the container would keep the old start's mark and go without secrets.
                live = self.containers.status_counts() is not None
                if name in self._delivered and not ask and live:
                    return self._delivered[name]
                state = await self.containers.state(name)
        except (DockerUnavailable, ContainerError) as err:
            self.log.warning("Personal secrets not written into %s: %s", name, err)
            return None
        if state is None or state.status != "running":
            return None
        return state.started_at if state.started_at is not None else _UNKNOWN_START

    async def _deliver(self, owner: str, targets: dict[str, float]) -> None:
        if not targets:
            return
        async with self._lock_for(owner):
            # Read inside the owner's lock: the last delivery always writes the latest values.
            secrets, unreadable = await self.secrets.values(owner)
            if unreadable:
                self.log.warning(
                    "Personal secrets %s of %s do not decrypt with the configured keys; "
                    "they are left out",
                    ", ".join(unreadable),
                    owner,
                )
            payload = render_payload(secrets)
            outcomes = await asyncio.gather(
                *(self._write(name, payload) for name in targets), return_exceptions=True
            )
            for (name, started), outcome in zip(targets.items(), outcomes, strict=True):
                if outcome is None:
                    self._delivered[name] = started
                    continue
                self._delivered.pop(name, None)
                if isinstance(outcome, ContainerError):
                    # Refused by this start of the container (made before secrets had a tmpfs,
                    # an older image): not asked again until it restarts or a secret changes.
                    self._delivered[name] = started
                if isinstance(outcome, (DockerUnavailable, ContainerError)):
                    self.log.warning("Personal secrets not written into %s: %s", name, outcome)
                else:
                    self.log.error("Personal secrets not written into %s", name, exc_info=outcome)
        self.log.info(
            "Wrote %d personal secrets of %s into %d running workspaces",
            len(secrets),
            owner,
            sum(1 for outcome in outcomes if outcome is None),
        )

    async def _write(self, name: str, payload: bytes) -> None:
        await self.containers.install_secret_files(name, payload)


def open_personal_secrets(
    parent: LoggingConfigurable,
    db_path: str,
    service: WorkspaceService,
    log: logging.Logger,
) -> tuple[PersonalSecrets, SecretDelivery | None]:
    """The server's secrets (configured by `parent`), opened, and what delivers them into its
    containers (None where the backend cannot).

    A key that cannot be used stops the server (as a bad option does): secrets it could not
    read back must not be accepted.
    """
    secrets = PersonalSecrets(parent=parent, log=log)
    try:
        secrets.open(db_path)
    except SecretKeyError as exc:
        log.critical("Not starting: %s", exc)
        raise SystemExit(1) from exc
    containers = service.containers
    if not containers.enable_secret_files():
        log.warning(
            "Personal secrets are kept but not written into workspaces by %s",
            type(containers).__name__,
        )
        return secrets, None
    delivery = SecretDelivery(secrets, service.store, containers, log)
    secrets.on_change = delivery.owner_changed
    service.container_up_hooks.append(delivery.container_up)
    return secrets, delivery
