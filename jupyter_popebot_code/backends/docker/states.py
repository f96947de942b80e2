"""The states of one store's containers, kept in memory from Docker's event stream.

One thread follows `docker events` filtered by the store's label. On every (re)connection it lists
the store's containers once (the seed), then applies each event by inspecting the container it
names, so what is kept is always something Docker said, never a guess from an event's name. While
the stream is down the states are not "live", and callers ask Docker directly.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable
from datetime import datetime
from typing import Any

import docker
import docker.errors

from ..base import ContainerState
from .networks import address_on

# Reconnecting after the stream broke: first pause, and the longest (dockerd restarting).
_RECONNECT_FIRST = 0.1
_RECONNECT_MAX = 1.0
# How long a removed container is remembered as removed.
_TOMBSTONE_SECONDS = 60.0


# Docker gives nanoseconds ("2026-11-30T20:17:57.123456789Z"); Python parses up to microseconds.
_DOCKER_TIME = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def parse_docker_time(text: str | None) -> float | None:
    """Epoch seconds of a Docker timestamp; None for Docker's zero time or anything unparsable."""
    match = _DOCKER_TIME.match(text or "")
    if not match or match.group(1).startswith("0001-"):
        return None
    whole, fraction, zone = match.groups()
    fraction = (fraction or ".0")[:7]
    stamp = datetime.fromisoformat(f"{whole}{fraction}{'+00:00' if zone == 'Z' else zone}")
    return stamp.timestamp()


def state_from_inspect(attrs: dict[str, Any], network: str) -> ContainerState:
    """`network`: the shared one; a workspace on a network of its own has its address there."""
    networks = attrs.get("NetworkSettings", {}).get("Networks") or {}
    address = address_on(networks, attrs.get("Name", "").lstrip("/"), network)
    return ContainerState(
        status=attrs["State"]["Status"],
        ip_address=address,
        started_at=parse_docker_time(attrs["State"].get("StartedAt")),
    )


def state_from_summary(summary: dict[str, Any], network: str) -> ContainerState:
    """The same from one entry of a container listing (`docker ps -a`)."""
    networks = summary.get("NetworkSettings", {}).get("Networks") or {}
    address = address_on(networks, summary["Names"][0].lstrip("/"), network)
    return ContainerState(status=summary["State"], ip_address=address)


class ContainerStates:
    """Name -> state of every container labelled with one store's id, from the event stream."""

    def __init__(
        self,
        connect: Callable[[], docker.DockerClient],
        label: str,
        network: str,
        log: logging.Logger,
    ) -> None:
        self._connect = connect
        self._label = label
        self._network = network
        self.log = log
        self._lock = threading.Lock()
        self._states: dict[str, tuple[float, ContainerState | None]] = {}
        self._live = False
        self._closed = threading.Event()
        self._stream: Any = None
        self._thread = threading.Thread(target=self._follow, name="popebot-events", daemon=True)
        self.seeded = threading.Event()  # set after each successful seed (tests, benchmarks)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._closed.set()
        stream = self._stream
        if stream is not None:
            try:
                stream.close()
            except Exception as err:  # already broken: the thread ends anyway
                self.log.debug("Closing the event stream: %s", err)

    @property
    def live(self) -> bool:
        """Whether the stream is connected: only then are the states current."""
        return self._live

    def get(self, name: str) -> ContainerState | None:
        """The container's state, or None when it does not exist (only meaningful while live)."""
        with self._lock:
            entry = self._states.get(name)
        return entry[1] if entry else None

    def statuses(self, names: Iterable[str]) -> dict[str, str]:
        """Name -> status of those of `names` that exist."""
        with self._lock:
            found = {name: self._states.get(name) for name in names}
        return {name: entry[1].status for name, entry in found.items() if entry and entry[1]}

    def running_names(self) -> list[str]:
        """Names of the containers that run now (only meaningful while live)."""
        return self.names_in(("running",))

    def names_in(self, statuses: Collection[str]) -> list[str]:
        """Names of the containers in one of `statuses` (only meaningful while live)."""
        with self._lock:
            entries = list(self._states.items())
        return [name for name, (_, state) in entries if state and state.status in statuses]

    def status_counts(self) -> dict[str, int]:
        """Status -> how many containers have it (metrics; only meaningful while live)."""
        with self._lock:
            entries = list(self._states.values())
        return dict(Counter(state.status for _, state in entries if state))

    def observe(self, name: str, state: ContainerState | None, observed_at: float) -> None:
        """Record what Docker said about `name` at `observed_at` (time.monotonic() before asking).

        An older observation never replaces a newer one, whichever thread it comes from.
        """
        with self._lock:
            current = self._states.get(name)
            if current is not None and current[0] > observed_at:
                return
            self._states[name] = (observed_at, state)
            if state is None:
                self._prune_tombstones(observed_at)

    def _prune_tombstones(self, now: float) -> None:
        # "Gone" is kept a while so a slower, older observation cannot bring a container back.
        for name, (seen, state) in list(self._states.items()):
            if state is None and now - seen > _TOMBSTONE_SECONDS:
                del self._states[name]

    # -- the follower thread -------------------------------------------------------------------

    def _follow(self) -> None:
        delay = _RECONNECT_FIRST
        while not self._closed.is_set():
            try:
                self._follow_once()
                delay = _RECONNECT_FIRST
            except Exception as err:
                if self._closed.is_set():
                    break
                self.log.info("Docker event stream lost (%s); reconnecting", err)
            self._live = False
            self._closed.wait(delay)
            delay = min(delay * 2, _RECONNECT_MAX)

    def _follow_once(self) -> None:
        client = self._connect()
        try:
            filters = {"type": "container", "label": [self._label]}
            # Subscribed before the listing, so nothing that happens in between is missed.
            self._stream = client.api.events(decode=True, filters=filters)
            if self._closed.is_set():
                return
            self._seed(client)
            for event in self._stream:
                name = (event.get("Actor") or {}).get("Attributes", {}).get("name")
                if name:
                    self._refresh(client, name)
            self.log.info("Docker event stream ended; reconnecting")
        finally:
            self._stream = None
            self._live = False
            client.close()

    def _seed(self, client: docker.DockerClient) -> None:
        observed_at = time.monotonic()
        listed = client.api.containers(all=True, filters={"label": [self._label]})
        seed = {
            summary["Names"][0].lstrip("/"): state_from_summary(summary, self._network)
            for summary in listed
        }
        with self._lock:
            # A container gone while the stream was down is gone from here too.
            for name in list(self._states):
                if name not in seed and self._states[name][0] <= observed_at:
                    self._states[name] = (observed_at, None)
        for name, state in seed.items():
            self.observe(name, state, observed_at)
        self._live = True
        self.seeded.set()
        self.log.debug("Container states seeded: %d containers", len(seed))

    def _refresh(self, client: docker.DockerClient, name: str) -> None:
        observed_at = time.monotonic()
        try:
            state: ContainerState | None = state_from_inspect(
                client.api.inspect_container(name), self._network
            )
        except docker.errors.NotFound:
            state = None
        self.observe(name, state, observed_at)
