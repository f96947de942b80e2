"""Prometheus metrics of the code workspaces, on jupyter_server's own `/metrics`.

Counters and histograms live in prometheus_client's default registry, as jupyter_server's do, and
are bumped by one-line hooks where things happen (the service, the relay, previews, idle stop,
the Docker seam). What is true *now* (workspaces by state, open connections) is read at scrape
time from what the server keeps in memory anyway, so it cannot drift out of step. Label values
come from small fixed sets: never a user name or a workspace id.
"""

from __future__ import annotations

import asyncio
import functools
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any, ParamSpec, Protocol, TypeVar

from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric

P = ParamSpec("P")
R = TypeVar("R")

PREFIX = "jupyter_popebot_code_"

# Docker's container statuses: each is reported, 0 included, so an alert never sees a gap.
CONTAINER_STATES = ("created", "running", "paused", "restarting", "removing", "exited", "dead")
# Failures by the name of the exception's class (or of a base class): this module imports
# nothing of the service, which imports it. Anything else is "error".
FAILURE_OUTCOMES = {
    "WorkspaceNotFound": "not_found",
    "ServerAtCapacity": "at_capacity",
    "QuotaExceeded": "quota_exceeded",
    "DockerUnavailable": "engine_unavailable",
    "ContainerError": "container_error",
    "CancelledError": "cancelled",
}
# From a terminal ensure (well under 10 ms) to a create that pulls nothing (seconds).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)

OPERATIONS = Counter(
    f"{PREFIX}workspace_operations",
    "Workspace creates, ensures, stops and deletes, by outcome (ok, or for ensure and stop what "
    "was done; else the kind of failure).",
    ["operation", "outcome"],
)
CREATE_SECONDS = Histogram(
    f"{PREFIX}create_duration_seconds",
    "Seconds a successful create took (record, volume, container started).",
    buckets=LATENCY_BUCKETS,
)
ENSURE_SECONDS = Histogram(
    f"{PREFIX}ensure_duration_seconds",
    "Seconds a successful ensure took, by what it did (running, started, created).",
    ["outcome"],
    buckets=LATENCY_BUCKETS,
)
RELAYED_BYTES = Counter(
    f"{PREFIX}relayed_bytes",
    "Bytes relayed between browsers and workspaces: terminal WebSocket frames, preview HTTP "
    "bodies and WebSocket messages.",
    ["channel", "direction"],
)
IDLE_STOPS = Counter(f"{PREFIX}idle_stops", "Workspaces stopped for lack of activity.")
ENGINE_ERRORS = Counter(
    f"{PREFIX}engine_errors",
    "Docker calls that failed: the engine was not reachable (unavailable), or refused the call.",
    ["kind"],
)
QUOTA_REFUSALS = Counter(
    f"{PREFIX}quota_refusals",
    "Creates and starts refused by a limit: workspaces_per_user, running_per_user, "
    "running_per_server.",
    ["limit"],
)

# Children made once: the relay's hot path only adds to a number.
TERMINAL_TO_BROWSER = RELAYED_BYTES.labels("terminal", "to_browser")
TERMINAL_FROM_BROWSER = RELAYED_BYTES.labels("terminal", "from_browser")
PREVIEW_TO_BROWSER = RELAYED_BYTES.labels("preview", "to_browser")
PREVIEW_FROM_BROWSER = RELAYED_BYTES.labels("preview", "from_browser")
for _kind in ("unavailable", "refused"):
    ENGINE_ERRORS.labels(_kind)
for _limit in ("workspaces_per_user", "running_per_user", "running_per_server"):
    QUOTA_REFUSALS.labels(_limit)


def outcome_of(error: BaseException) -> str:
    """The outcome label of a failed operation."""
    for cls in type(error).__mro__:
        outcome = FAILURE_OUTCOMES.get(cls.__name__)
        if outcome is not None:
            return outcome
    return "error"


def _ok(_: object) -> str:
    return "ok"


def _status(result: Any) -> str:
    """The EnsureResult's status (running, started, created, stopped, no_container)."""
    return str(result.status)


def operation(
    name: str, outcome: Callable[[Any], str] = _ok
) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """Count a service coroutine by outcome; time create and ensure when they succeed."""

    def wrap(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        @functools.wraps(fn)
        async def counted(*args: P.args, **kwargs: P.kwargs) -> R:
            started = time.perf_counter()
            try:
                result = await fn(*args, **kwargs)
            except (Exception, asyncio.CancelledError) as err:
                OPERATIONS.labels(name, outcome_of(err)).inc()
                raise
            seconds = time.perf_counter() - started
            label = outcome(result)
            OPERATIONS.labels(name, label).inc()
            if name == "create":
                CREATE_SECONDS.observe(seconds)
            elif name == "ensure":
                ENSURE_SECONDS.labels(label).observe(seconds)
            return result

        return counted

    return wrap


create_operation = operation("create")
ensure_operation = operation("ensure", _status)
stop_operation = operation("stop", _status)
delete_operation = operation("delete")


def preview_relayed(size: int, to_browser: bool) -> None:
    (PREVIEW_TO_BROWSER if to_browser else PREVIEW_FROM_BROWSER).inc(size)


def engine_error(unavailable: bool) -> None:
    ENGINE_ERRORS.labels("unavailable" if unavailable else "refused").inc()


def quota_refused(limit: str) -> None:
    QUOTA_REFUSALS.labels(limit).inc()


class _Backend(Protocol):
    def status_counts(self) -> dict[str, int] | None:
        """Status -> count from the backend's followed events; None when not live."""


class _Terminal(Protocol):
    @property
    def browser_connected(self) -> bool: ...


class _Relay(Protocol):
    def open_relays(self) -> Iterable[_Terminal]: ...


class _Previews(Protocol):
    def connection_count(self) -> int: ...


class WatchedApp(Protocol):
    """What the live gauges read of a CodeWorkspacesApp.

    A Protocol, not the app's class: the service, the relay and previews import this module, so
    it imports no layer above them, not even for the type checker.
    """

    @property
    def container_manager(self) -> _Backend: ...

    @property
    def terminal_relay(self) -> _Relay: ...

    @property
    def preview_proxy(self) -> _Previews: ...


class LiveCollector:
    """Gauges read at scrape time from the servers of this process (one, outside tests).

    Runs on the event loop (jupyter_server's /metrics handler): it only reads memory.
    """

    def __init__(self) -> None:
        self._apps: weakref.WeakSet[WatchedApp] = weakref.WeakSet()

    def watch(self, app: WatchedApp) -> None:
        self._apps.add(app)

    def unwatch(self, app: WatchedApp) -> None:
        self._apps.discard(app)

    def describe(self) -> Iterator[Metric]:
        # Names only, for the registry's duplicate check; no server needs to exist yet.
        yield from self._families()

    def collect(self) -> Iterator[Metric]:
        yield from self._families(list(self._apps))

    def _families(self, apps: list[WatchedApp] | None = None) -> Iterator[Metric]:
        apps = apps or []
        live = GaugeMetricFamily(
            f"{PREFIX}container_states_live",
            "1 while the Docker event stream is followed, so workspaces_by_state is current; 0 "
            "while it reconnects and on Docker Swarm (then workspaces_by_state is left out).",
        )
        by_state = GaugeMetricFamily(
            f"{PREFIX}workspaces_by_state",
            "Workspace containers by Docker status, from the event-fed state cache.",
            labels=["state"],
        )
        terminals = GaugeMetricFamily(
            f"{PREFIX}terminal_connections",
            "Terminal WebSockets open now (browser connected).",
        )
        previews = GaugeMetricFamily(
            f"{PREFIX}preview_connections",
            "Preview requests in flight and preview WebSockets open now.",
        )
        counts = dict.fromkeys(CONTAINER_STATES, 0)
        all_live = bool(apps)
        for app in apps:
            known = app.container_manager.status_counts()
            if known is None:
                all_live = False
                continue
            for state, count in known.items():
                counts[state] = counts.get(state, 0) + count
        live.add_metric([], 1 if all_live else 0)
        yield live
        if all_live:
            for state, count in counts.items():
                by_state.add_metric([state], count)
            yield by_state
        elif not apps:
            yield by_state  # describe(): the name, without samples
        open_terminals = sum(
            1
            for app in apps
            for relay in app.terminal_relay.open_relays()
            if relay.browser_connected
        )
        terminals.add_metric([], open_terminals)
        yield terminals
        previews.add_metric([], sum(app.preview_proxy.connection_count() for app in apps))
        yield previews


LIVE = LiveCollector()
REGISTRY.register(LIVE)
