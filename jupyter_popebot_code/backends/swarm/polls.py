"""How often the Swarm backend asks the manager about a task: often at first, then less often.

A task runs about 0.5-0.8 s after its service is made or scaled up (scheduling, then the node
prepares and starts its container). Asked every 50 ms for the first 2 s, it is seen a few tens of
milliseconds after it runs; after that (an image pull on its node) the pause grows by half each
time up to 0.5 s, so a start that takes minutes asks the manager at most twice a second.
"""

from __future__ import annotations

from collections.abc import Iterator

FIRST_POLL_SECONDS = 0.05
STEADY_SECONDS = 2.0
MAX_POLL_SECONDS = 0.5
_GROWTH = 1.5


def poll_delays(
    first: float = FIRST_POLL_SECONDS,
    steady: float = STEADY_SECONDS,
    most: float = MAX_POLL_SECONDS,
) -> Iterator[float]:
    """Endless pauses between two polls: `first` until `steady` s of them, then growing."""
    waited = 0.0
    delay = first
    while True:
        yield delay
        waited += delay
        if waited >= steady:
            delay = min(delay * _GROWTH, most)
