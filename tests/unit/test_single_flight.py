"""SingleFlight: concurrent callers of one key share one fetch; answers kept for the ttl."""

from __future__ import annotations

import asyncio

import pytest

from jupyter_popebot_code.core.single_flight import SingleFlight


class Fetches:
    """A fetch that counts its runs and answers only when the test opens the gate."""

    def __init__(self) -> None:
        self.runs = 0
        self.gate = asyncio.Event()

    async def __call__(self) -> int:
        self.runs += 1
        await self.gate.wait()
        return self.runs


async def test_concurrent_callers_share_one_fetch_and_a_failure_is_not_kept() -> None:
    flight: SingleFlight[int] = SingleFlight(lambda: 0.0)
    fetches = Fetches()
    callers = [asyncio.ensure_future(flight.get("a", fetches)) for _ in range(20)]
    other = asyncio.ensure_future(flight.get("b", fetches))
    await asyncio.sleep(0)
    callers[0].cancel()  # one caller going away does not cancel the others' fetch
    fetches.gate.set()
    assert await asyncio.gather(*callers[1:], other) == [1] * 19 + [2]
    assert fetches.runs == 2  # one per key
    # ttl 0: nothing is kept once the fetch is over.
    assert await flight.get("a", fetches) == 3

    async def failing() -> int:
        raise RuntimeError("engine said no")

    with pytest.raises(RuntimeError):
        await flight.get("c", failing)
    assert await flight.get("c", fetches) == 4


async def test_an_answer_is_reused_within_the_ttl() -> None:
    ttl = [60.0]
    flight: SingleFlight[int] = SingleFlight(lambda: ttl[0])
    fetches = Fetches()
    fetches.gate.set()
    assert [await flight.get("a", fetches) for _ in range(5)] == [1] * 5
    ttl[0] = 0.0  # expired: read again
    assert await flight.get("a", fetches) == 2
