"""Scraping `/metrics` through HTTP with Prometheus's own text parser, for the tests."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

PREFIX = "jupyter_popebot_code_"


@dataclass(frozen=True)
class Scrape:
    """One scrape: every sample of the extension's metrics, by name and labels."""

    samples: dict[tuple[str, frozenset[tuple[str, str]]], float]
    text: str

    def value(self, name: str, **labels: str) -> float:
        """The sample's value; an absent labelled counter is 0 (it appears on first use)."""
        key = (PREFIX + name, frozenset(labels.items()))
        if key not in self.samples and not labels:
            raise AssertionError(f"no sample {key[0]} in the scrape")
        return self.samples.get(key, 0.0)

    def label_values(self) -> set[str]:
        return {value for _, labels in self.samples for _, value in labels}


async def scrape(fetch: Callable[..., Any]) -> Scrape:
    """GET /metrics (jp_fetch sends the server's token) and parse it as Prometheus would."""
    response = await fetch("metrics", method="GET")
    assert response.code == 200
    text = response.body.decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith(PREFIX):
                samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return Scrape(samples, text)
