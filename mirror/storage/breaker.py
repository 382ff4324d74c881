"""A circuit breaker per remote back-end: once it times out or is unreachable, stop calling it.

A hung (not refusing) S3 or IPFS costs a full read timeout per request; without a breaker a run
pays that for every request of every part. After one unavailable error the breaker opens: calls
fail at once (BackendDownError, no network) until ``cooldown`` seconds have passed, then exactly
one caller runs a short probe (the store's check) that closes it again or keeps it open.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from samizdat.errors import StorageUnavailableError

log = logging.getLogger(__name__)


class BackendDownError(StorageUnavailableError):
    """Refused without trying: the back-end's breaker is open (it failed recently)."""


class CircuitBreaker:
    """Thread-safe open/closed state for one back-end, with a single probe after the cooldown."""

    def __init__(self, name: str, cooldown: float, probe: Callable[[], bool],
                 clock: Callable[[], float] = time.monotonic):
        self.name = name
        self.cooldown = cooldown
        self._probe = probe
        self._clock = clock
        self._lock = threading.Lock()
        self._open_until: float | None = None
        self._reason = ""
        self._probing = False

    @property
    def is_open(self) -> bool:
        """Whether calls are being refused right now (cooldown running or a probe under way)."""
        with self._lock:
            return self._open_until is not None

    def trip(self, reason: str) -> None:
        """Open the breaker for one cooldown because of ``reason``."""
        with self._lock:
            was_open = self._open_until is not None
            self._open_until = self._clock() + self.cooldown
            self._reason = reason
        if not was_open:
            log.warning("%s treated as down for %gs: %s", self.name, self.cooldown, reason)

    def before_call(self) -> None:
        """Return if the back-end may be called; raise BackendDownError while it is open.

        After the cooldown one caller probes; the others keep being refused until it decides.
        """
        with self._lock:
            if self._open_until is None:
                return
            if self._probing or self._clock() < self._open_until:
                raise BackendDownError(f"{self.name} is treated as down after: {self._reason}")
            self._probing = True
        healthy = False
        try:
            healthy = self._probe()
        finally:
            with self._lock:
                self._probing = False
                if healthy:
                    self._open_until = None
                else:
                    self._open_until = self._clock() + self.cooldown
        if not healthy:
            raise BackendDownError(f"{self.name} is still down after: {self._reason}")
        log.warning("%s answers again: breaker closed", self.name)

    @contextmanager
    def guard(self) -> Iterator[None]:
        """Run the block only while the back-end is up; an unavailable error inside opens the breaker."""
        self.before_call()
        try:
            yield
        except BackendDownError:
            raise
        except StorageUnavailableError as exc:
            self.trip(str(exc))
            raise
