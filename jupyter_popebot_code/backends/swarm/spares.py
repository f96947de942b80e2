"""Spare overlays: a few workspace networks made and joined by the server ahead of time.

Making a workspace's overlay and joining the server's container to it takes about a second on the
manager, and must be done before the workspace's task starts (a join during the start may miss the
task's name until the next gossip sync). A new workspace therefore takes a spare: an attachable
overlay (`code-spare-…`, labelled as a spare of this store) that the server joined earlier, off the
critical path. A spare is handed to exactly one workspace and goes with it when it is deleted: it
is never returned to the pool, so no two workspaces ever share a network. Which network a
workspace uses is kept in its service's labels (`NETWORK_LABEL`).

The pool works once the server started it (`start`, with its store); a backend used on its own
makes no spares. It is refilled in the background on the Docker thread pool (one filler at a
time, at most `size` spares). At start-up the spares of an earlier run that no service uses are
taken over, the rest of the pool is made; spares beyond `size` or of another `internal_networks`
are removed.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

import docker
import docker.errors

from ..docker.labels import MANAGED_BY, MANAGED_BY_LABEL, STORE_LABEL
from .overlays import NETWORK_LABEL, OverlayNetworks, find

SPARE_LABEL = "org.jupyter.popebot-code.spare-network"
SPARE_PREFIX = "code-spare-"


class SpareOverlays:
    """The pool of prepared overlays of one Swarm backend (with network_per_workspace)."""

    def __init__(
        self,
        overlays: OverlayNetworks,
        run: Callable[[Callable[[docker.DockerClient], None]], None],
        size: Callable[[], int],
        log: logging.Logger,
    ) -> None:
        self.overlays = overlays
        self._run = run  # runs fn(client) on the Docker thread pool, not waiting for it
        self._size = size
        self.log = log
        self._lock = threading.Lock()
        self._free: list[str] = []
        self._store_id = ""
        self._filling = False

    def free(self) -> list[str]:
        with self._lock:
            return list(self._free)

    def start(self, store_id: str) -> None:
        """Take over the unused spares of an earlier run, then fill the pool (background)."""
        self._store_id = store_id
        if self.overlays.settings.network_per_workspace:
            self._run(self._adopt)

    def claim(self, client: docker.DockerClient, store_id: str) -> str | None:
        """A joined spare for a new workspace, now its own; None when none is ready."""
        if store_id != self._store_id or self._size() <= 0:
            return None  # not started (a backend used on its own), or another store's workspace
        taken = None
        while taken is None:
            with self._lock:
                if not self._free:
                    break
                candidate = self._free.pop(0)
            # Removed behind our back (an operator's prune): take the next one.
            if find(client, candidate) is not None:
                taken = candidate
        self.refill()
        return taken

    def refill(self) -> None:
        """Make spares up to the pool's size in the background (one filler at a time)."""
        with self._lock:
            if self._filling or len(self._free) >= self._size() or not self._store_id:
                return
            self._filling = True
        self._run(self._fill)

    # -- on a Docker thread ----------------------------------------------------------------------

    def _fill(self, client: docker.DockerClient) -> None:
        try:
            while True:
                with self._lock:
                    if len(self._free) >= self._size():
                        return
                name = SPARE_PREFIX + secrets.token_hex(8)
                client.api.create_network(
                    name,
                    driver="overlay",
                    attachable=True,
                    internal=self.overlays.settings.internal_networks,
                    labels={
                        MANAGED_BY_LABEL: MANAGED_BY,
                        STORE_LABEL: self._store_id,
                        SPARE_LABEL: "true",
                    },
                    check_duplicate=True,
                )
                self.overlays.join(client, name)
                with self._lock:
                    self._free.append(name)
        except Exception as err:  # a spare only saves time: creates still work
            self.log.warning("Could not prepare a spare workspace network: %s", err)
        finally:
            with self._lock:
                self._filling = False

    def _adopt(self, client: docker.DockerClient) -> None:
        try:
            label = f"{STORE_LABEL}={self._store_id}"
            used = {
                (service["Spec"].get("Labels") or {}).get(NETWORK_LABEL)
                for service in client.api.services(filters={"label": label})
            }
            spares = client.api.networks(filters={"label": [label, f"{SPARE_LABEL}=true"]})
            for net in spares:
                name = net["Name"]
                if name in used or not name.startswith(SPARE_PREFIX):
                    continue
                fits = bool(net.get("Internal")) == self.overlays.settings.internal_networks
                with self._lock:
                    keep = fits and len(self._free) < self._size()
                if not keep:
                    self._remove(client, name)
                    continue
                self.overlays.join(client, name)
                with self._lock:
                    self._free.append(name)
            if spares:
                self.log.info("Took over %d spare workspace networks", len(self.free()))
        except Exception as err:  # see _fill
            self.log.warning("Could not take over the spare workspace networks: %s", err)
        self.refill()

    def _remove(self, client: docker.DockerClient, name: str) -> None:
        self.overlays.leave(client, name)
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            client.api.remove_network(name)


def submitter(
    executor: Executor, guarded: Callable[..., Any]
) -> Callable[[Callable[[docker.DockerClient], None]], None]:
    """Fire-and-forget on the engine's thread pool, with its error translation (`_guarded`)."""

    def run(fn: Callable[[docker.DockerClient], None]) -> None:
        with contextlib.suppress(RuntimeError):  # the pool is shut down: the server is stopping
            executor.submit(guarded, fn, (), {})

    return run
