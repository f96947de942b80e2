"""The tiers are decided by fixtures: a test that reaches the engine is never in the fast tier."""

from __future__ import annotations

from pathlib import Path

import pytest

from ..conftest import ENGINE_FIXTURES

UNIT_DIR = Path(__file__).resolve().parent


def test_every_collected_test_is_marked_by_whether_it_reaches_the_engine(
    request: pytest.FixtureRequest,
) -> None:
    items = request.session.items
    assert request.node in items
    for item in items:
        uses_engine = bool(ENGINE_FIXTURES.intersection(getattr(item, "fixturenames", ())))
        marked = item.get_closest_marker("docker") is not None
        assert uses_engine == marked, item.nodeid
        if UNIT_DIR in Path(str(item.path)).resolve().parents:
            assert not marked, f"{item.nodeid}: tests/unit is the fast tier"
