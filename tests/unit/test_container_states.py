"""ContainerStates' bookkeeping over a scripted Docker client (fast tier, no engine).

The same class follows the real engine's event stream in tests/test_container_states.py.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterator
from typing import Any

import docker.errors
import pytest

from jupyter_popebot_code.backends.docker.states import ContainerState, ContainerStates

LABEL = "org.jupyter.popebot-code.store=s1"
NETWORK = "net"


def summary(name: str, status: str) -> dict[str, Any]:
    return {"Names": [f"/{name}"], "State": status, "NetworkSettings": {"Networks": {}}}


class ScriptedStream:
    """Events handed over by the test one at a time; closing ends the iteration."""

    def __init__(self) -> None:
        self.events: queue.Queue[dict[str, Any] | None] = queue.Queue()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        while (event := self.events.get(timeout=10)) is not None:
            yield event

    def close(self) -> None:
        self.events.put(None)


class ScriptedEngine:
    """What the engine holds; each connect() gives a client with a fresh event stream."""

    def __init__(self) -> None:
        self.containers: dict[str, str] = {}
        self.streams: list[ScriptedStream] = []
        self.filters: list[dict[str, Any]] = []
        self.connected = threading.Event()

    def connect(self) -> Any:
        scripted = self

        class Api:
            def events(self, decode: bool, filters: dict[str, Any]) -> ScriptedStream:
                scripted.filters.append(filters)
                stream = ScriptedStream()
                scripted.streams.append(stream)
                return stream

            def containers(self, all: bool, filters: dict[str, Any]) -> list[dict[str, Any]]:
                return [summary(n, s) for n, s in scripted.containers.items()]

            def inspect_container(self, name: str) -> dict[str, Any]:
                if name not in scripted.containers:
                    raise docker.errors.NotFound("gone")
                return {"State": {"Status": scripted.containers[name]}, "NetworkSettings": {}}

        class Client:
            api = Api()

            def close(self) -> None:
                pass

        self.connected.set()
        return Client()

    def emit(self, name: str) -> None:
        self.streams[-1].events.put({"Actor": {"Attributes": {"name": name}}})


@pytest.fixture
def scripted() -> ScriptedEngine:
    return ScriptedEngine()


@pytest.fixture
def states(scripted: ScriptedEngine) -> Iterator[ContainerStates]:
    tracked = ContainerStates(scripted.connect, LABEL, NETWORK, logging.getLogger("states"))
    yield tracked
    tracked.close()


def wait(predicate: Any, timeout: float = 5.0) -> None:
    deadline = threading.Event()
    for _ in range(int(timeout / 0.01)):
        if predicate():
            return
        deadline.wait(0.01)
    raise AssertionError("condition not met in time")


def test_seeded_from_one_listing_then_followed_event_by_event(
    scripted: ScriptedEngine, states: ContainerStates
) -> None:
    scripted.containers = {"a": "running", "b": "exited"}
    assert not states.live
    states.start()
    wait(lambda: states.live)
    assert scripted.filters == [{"type": "container", "label": [LABEL]}]
    assert states.statuses(["a", "b", "c"]) == {"a": "running", "b": "exited"}
    scripted.containers["a"] = "paused"
    scripted.emit("a")
    wait(lambda: states.statuses(["a"]) == {"a": "paused"})
    del scripted.containers["b"]
    scripted.emit("b")
    wait(lambda: states.get("b") is None)
    assert states.statuses(["a", "b"]) == {"a": "paused"}


def test_a_broken_stream_is_not_live_and_the_next_one_reseeds(
    scripted: ScriptedEngine, states: ContainerStates
) -> None:
    scripted.containers = {"a": "running", "gone": "running"}
    states.start()
    wait(lambda: states.live)
    states.seeded.clear()
    scripted.streams[-1].close()  # dockerd restarted
    # Meanwhile, behind the stream's back:
    scripted.containers = {"a": "exited"}
    wait(lambda: states.seeded.is_set())
    assert states.live
    assert len(scripted.streams) == 2
    assert states.statuses(["a", "gone"]) == {"a": "exited"}


def test_an_older_observation_never_replaces_a_newer_one(states: ContainerStates) -> None:
    states.observe("a", ContainerState("running", "10.0.0.2"), observed_at=2.0)
    states.observe("a", ContainerState("exited", None), observed_at=1.0)  # slower, older
    assert states.get("a") == ContainerState("running", "10.0.0.2")
    states.observe("a", None, observed_at=3.0)
    states.observe("a", ContainerState("running", "10.0.0.2"), observed_at=2.5)
    assert states.get("a") is None


def test_removed_containers_are_forgotten_after_a_while(states: ContainerStates) -> None:
    states.observe("old", None, observed_at=0.0)
    states.observe("new", None, observed_at=1000.0)  # pruning happens on removals
    assert "old" not in states._states
    assert "new" in states._states
