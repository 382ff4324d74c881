"""Periodic tasks a capability declares next to its own code; the one scheduler process runs them.

The scheduler lives in mirror/, which must not import the capabilities downstream of it (embed,
archive); the composition root (samizdat.cli) hands it their tasks instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from samizdat.runtime import Runtime

# Where the app factory keeps the capabilities' tasks for `flask scheduler`.
TASKS_KEY = "samizdat.tasks"


@dataclass(frozen=True)
class PeriodicTask:
    """A function of the runtime run every ``seconds`` under a fixed job id."""

    id: str
    func: Callable[[Runtime], object]
    seconds: float
