"""The objects a Samizdat process shares: settings, database engine and sessions, stores, fetcher.

Built the same way by the web app, the scheduler and the CLI, and free of Flask so the scheduler
(which has no app context) can use it as it is.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import cached_property

from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker

from config.settings import Settings
from samizdat.db import make_engine, make_sessionmaker


@dataclass
class Runtime:
    """Lazily built process-wide services for one set of settings."""

    settings: Settings
    engine: Engine = field(init=False)
    Session: sessionmaker = field(init=False)
    _browser: object = field(init=False, default=None, repr=False)
    _browser_lock: threading.Lock = field(init=False, default_factory=threading.Lock, repr=False)

    def __post_init__(self):
        self.engine = make_engine(self.settings.sqlalchemy_url)
        # Sessions carry the settings, so code given only a session (jobs.enqueue, called by
        # web requests) still honours configured values such as the job lease.
        self.Session = make_sessionmaker(self.engine, info={"settings": self.settings})

    @cached_property
    def stores(self):
        """Every configured storage back-end by name (built on first use)."""
        from mirror.storage import build_stores

        return build_stores(self.settings)

    @cached_property
    def fetcher(self):
        """The guarded page fetcher (built on first use)."""
        from mirror.fetch import Fetcher

        return Fetcher(self.settings)

    @property
    def browser(self):
        """The process's browsers for browser captures (built on first use, Chromium started on
        the first browser capture; built anew after ``close_browser``)."""
        with self._browser_lock:  # capture threads reach it at once; one capturer per process
            if self._browser is None:
                from mirror.browsing import BrowserCapturer

                self._browser = BrowserCapturer(self.settings)
            return self._browser

    def close_browser(self) -> None:
        """Stop the process's Chromiums, if any were started: none outlives its process."""
        with self._browser_lock:
            capturer, self._browser = self._browser, None
        if capturer is not None:
            capturer.close()

    def dispose(self) -> None:
        """Close pooled database connections and the browsers."""
        self.close_browser()
        self.engine.dispose()


def build_runtime(settings: Settings) -> Runtime:
    """Create the runtime for ``settings``, making sure the data directory exists."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return Runtime(settings)
