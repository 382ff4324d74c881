"""Readiness: whether the database and every configured store answer, each within a deadline.

Flask-free, used by /readyz. A check runs in a thread of its own and counts as failing once the
deadline passes, so a hung dependency never holds the answer up; while it is still hanging, the
next readiness check waits on the same attempt instead of starting another (one thread per part
at most). A store whose circuit breaker is open (it failed recently, mirror/storage/breaker.py)
fails at once without a call, and a store that fails here opens its breaker.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import text

from mirror.storage import BackendHealth
from samizdat.runtime import Runtime


def check_database(runtime: Runtime) -> BackendHealth:
    """Run a trivial query against the configured database."""
    try:
        with runtime.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # any driver error means "not reachable" here
        return BackendHealth("database", False, f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
    return BackendHealth("database", True, runtime.engine.url.render_as_string(hide_password=True))


class _Attempt:
    """One check running in a daemon thread; its result once it ends."""

    def __init__(self, name: str, check: Callable[[], BackendHealth]):
        self.name = name
        self.result: BackendHealth | None = None
        self.done = threading.Event()
        threading.Thread(target=self._run, args=(check,), daemon=True, name=f"ready-{name}").start()

    def _run(self, check: Callable[[], BackendHealth]) -> None:
        try:
            self.result = check()
        except Exception as exc:  # a check that raises is a failing check, not a crashed probe
            self.result = BackendHealth(self.name, False, f"{type(exc).__name__}: {exc}")
        finally:
            self.done.set()


@dataclass(frozen=True)
class PartReadiness:
    """One part's answer: ready or not, with a detail line (for archivists and the CLI only)."""

    name: str
    ok: bool
    detail: str


class ReadinessChecker:
    """Checks every configured dependency of one runtime, never taking longer than ``timeout``."""

    def __init__(self, runtime: Runtime, timeout: float):
        self.runtime = runtime
        self.timeout = timeout
        self._lock = threading.Lock()
        self._attempts: dict[str, _Attempt] = {}

    def _checks(self) -> dict[str, Callable[[], BackendHealth]]:
        checks: dict[str, Callable[[], BackendHealth]] = {"database": lambda: check_database(self.runtime)}
        for name, store in self.runtime.stores.items():
            checks[name] = store.check
        return checks

    def _start(self, name: str, check: Callable[[], BackendHealth]) -> _Attempt:
        """The attempt in flight for ``name``, or a new one when none is."""
        with self._lock:
            attempt = self._attempts.get(name)
            if attempt is None or attempt.done.is_set():
                attempt = self._attempts[name] = _Attempt(name, check)
            return attempt

    def check(self) -> list[PartReadiness]:
        """Every part's readiness, within ``timeout`` seconds in all."""
        attempts, answers = {}, {}
        for name, check in self._checks().items():
            breaker = getattr(self.runtime.stores.get(name), "breaker", None)
            if breaker is not None and breaker.is_open:
                answers[name] = PartReadiness(name, False, "treated as down after a recent failure (circuit breaker open)")
            else:
                attempts[name] = self._start(name, check)
        deadline = time.monotonic() + self.timeout
        for name, attempt in attempts.items():
            # The attempts run side by side: waiting on each in turn costs the slowest, not the sum.
            attempt.done.wait(max(0.0, deadline - time.monotonic()))
            result = attempt.result if attempt.done.is_set() else None
            if result is None:
                answers[name] = PartReadiness(name, False, f"no answer within {self.timeout:g} s")
            else:
                answers[name] = PartReadiness(name, result.ok, result.detail)
        for name, answer in answers.items():
            breaker = getattr(self.runtime.stores.get(name), "breaker", None)
            if breaker is not None and not answer.ok and name in attempts:
                breaker.trip(answer.detail)
        return [answers[name] for name in self._checks()]


def readiness_report(parts: list[PartReadiness], configured: dict[str, bool], details: bool) -> dict:
    """The /readyz body: ``ready`` or ``unready``; with ``details``, the failing parts by name,
    what is configured, and each part's state and detail line.

    ``details=False`` (anyone but archivists and the metrics token) gets the status alone: the
    parts' names would tell which back-ends an archive uses, the detail lines its database URL,
    data paths, internal endpoints and their error text.
    """
    failing = [p.name for p in parts if not p.ok]
    if not details:
        return {"status": "unready" if failing else "ready"}
    checks = {p.name: {"ok": p.ok, "detail": p.detail} for p in parts}
    return {
        "status": "unready" if failing else "ready",
        "failing": failing,
        "configured": configured,
        "checks": checks,
    }
