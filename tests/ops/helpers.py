"""Reading /metrics the way Prometheus does, and the Bearer header."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


def bearer(token: str) -> dict:
    """The Authorization header of a token."""
    return {"Authorization": f"Bearer {token}"}


def parse_metrics(text: str) -> dict[tuple[str, frozenset], float]:
    """Every sample of an exposition, by (sample name, labels); raises if the text does not parse."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    """One sample's value (KeyError when it is not exposed)."""
    return samples[(name, frozenset(labels.items()))]


def total(samples: dict, name: str) -> float:
    """The sum of every sample of ``name`` across its labels."""
    return sum(v for (n, _), v in samples.items() if n == name)
