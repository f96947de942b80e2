"""Share one fetch between concurrent callers of the same key, and its answer for a short while.

For per-request work that costs the engine (a `docker exec`): a hundred clients polling one
workspace cost one fetch per `ttl` seconds, and no client waits on more than one fetch.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class SingleFlight(Generic[T]):
    """Keyed answers, each fetched by one task that every concurrent caller awaits.

    A success is reused for `ttl()` seconds counted from the fetch's start (never newer than it
    claims); a failure is not kept, so the next caller tries again.
    """

    def __init__(self, ttl: Callable[[], float]) -> None:
        self._ttl = ttl
        self._flying: dict[str, asyncio.Future[T]] = {}
        self._done: dict[str, tuple[float, T]] = {}

    async def get(self, key: str, fetch: Callable[[], Awaitable[T]]) -> T:
        now = time.monotonic()
        kept = self._done.get(key)
        if kept is not None and now - kept[0] < self._ttl():
            return kept[1]
        flight = self._flying.get(key)
        if flight is None:
            flight = asyncio.ensure_future(self._fetch(key, fetch, now))
            # Read the outcome even when every caller went away, so it is never "unretrieved".
            flight.add_done_callback(lambda f: f.cancelled() or f.exception())
            self._flying[key] = flight
        # One caller giving up (a closed connection) must not cancel the others' fetch.
        return await asyncio.shield(flight)

    async def _fetch(self, key: str, fetch: Callable[[], Awaitable[T]], started: float) -> T:
        try:
            value = await fetch()
        finally:
            self._flying.pop(key, None)
        self._forget_expired(started)
        if self._ttl() > 0:
            self._done[key] = (started, value)
        return value

    def _forget_expired(self, now: float) -> None:
        """Keep only fresh answers: memory follows the keys in use, not every key ever seen."""
        ttl = self._ttl()
        for key in [k for k, (at, _) in self._done.items() if now - at >= ttl]:
            del self._done[key]
