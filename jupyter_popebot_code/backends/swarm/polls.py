"""How often the Swarm backend asks the manager about a task: soon at first, then less often.

A task that runs within a second is seen a few tens of milliseconds after it does, without asking
the manager more than twice a second for one that takes minutes (an image pull on its node).
"""

from __future__ import annotations

from collections.abc import Iterator

FIRST_POLL_SECONDS = 0.05
MAX_POLL_SECONDS = 0.5
_GROWTH = 1.5


def poll_delays(
    first: float = FIRST_POLL_SECONDS, most: float = MAX_POLL_SECONDS
) -> Iterator[float]:
    """Endless sleeps between two polls: `first`, growing by half each time, up to `most`."""
    delay = first
    while True:
        yield delay
        delay = min(delay * _GROWTH, most)
