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


class Debounce:
    """When a task should act on a state that keeps changing: once it has held still for
    ``quiet`` seconds, and at the latest ``max_delay`` seconds after it first changed, so a burst
    of changes costs one run and a steady stream still gets one now and then."""

    def __init__(self, quiet: float, max_delay: float):
        self.quiet, self.max_delay = quiet, max_delay
        self._seen: object = None
        self._seen_at = 0.0
        self._first_change_at: float | None = None

    def due(self, current: object, done: object, now: float) -> bool:
        """Whether to act now on ``current``, when ``done`` is what was last acted on."""
        if current == done:
            self.reset()
            return False
        if current != self._seen:
            self._seen, self._seen_at = current, now
            self._first_change_at = self._first_change_at or now
        quiet_enough = now - self._seen_at >= self.quiet
        waited_too_long = now - (self._first_change_at or now) >= self.max_delay
        return quiet_enough or waited_too_long

    def reset(self) -> None:
        """Nothing is waiting any more (acted on, or back to what was last acted on)."""
        self._first_change_at = None
