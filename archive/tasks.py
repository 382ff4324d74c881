"""The archive's periodic tasks: keep the search index up to date with newly processed captures, and
re-export the static copy shortly after new captures (debounced)."""

from __future__ import annotations

import json
import logging
import time

from flask import Flask
from sqlalchemy import func, select

from archive.index import index_new_captures
from archive.static_copy import STATE_FILE, logged_through, publish_static
from config.settings import Settings
from mirror.models import Capture
from samizdat.errors import SamizdatError
from samizdat.runtime import Runtime
from samizdat.tasks import Debounce, PeriodicTask

log = logging.getLogger(__name__)

CHECK_SECONDS = 30.0
INDEX_SECONDS = 30.0


def index_search(runtime: Runtime) -> int:
    """Index the captures processed since the last run; returns how many sources were indexed."""
    report = index_new_captures(runtime)
    if report.indexed or report.failed:
        log.info("search index: %d source(s) indexed, %d failed", report.indexed, report.failed)
    return report.indexed


class StaticExportDebouncer:
    """Exports once captures have been processed or logged since the last export and then held
    still for ``quiet`` seconds; a steady stream of captures still exports at least every
    ``max_delay``.

    A failed export is retried after ``max_delay``, not on every check.
    """

    def __init__(self, app: Flask, quiet: float = 60.0, max_delay: float = 900.0):
        self.app, self.max_delay = app, max_delay
        self.debounce = Debounce(quiet, max_delay)
        self._failed_at: float | None = None

    def __call__(self, runtime: Runtime) -> bool:
        """Check once; export if due. Returns whether it exported."""
        with runtime.Session() as session:
            latest = session.scalar(select(func.max(Capture.processed_at)))
            logged = logged_through(session)
        # The copy carries only logged captures: one logged after the last export changes it too.
        current = (latest.isoformat(), logged) if latest else None
        exported = _exported_through(runtime.settings)
        now = time.monotonic()
        if current is None or current == exported:
            self.debounce.reset()
            return False
        if self._failed_at is not None and now - self._failed_at < self.max_delay:
            return False
        if not self.debounce.due(current, exported, now):
            return False
        try:
            report = publish_static(self.app)
        except SamizdatError as exc:
            self._failed_at = now
            log.warning("static copy not exported: %s", exc)
            return False
        self._failed_at = None
        self.debounce.reset()
        log.info("static copy exported: %d written, %d unchanged, %d deleted; root %s",
                 report.written, report.unchanged, report.deleted, report.root_cid)
        for failure in report.failures:
            log.warning("static copy not published to %s", failure)
        return True


def _exported_through(settings: Settings) -> tuple[str, int] | None:
    try:
        state = json.loads((settings.public_path / STATE_FILE).read_bytes())
        return state.get("captures_through"), state.get("logged_through", 0)
    except (OSError, ValueError, AttributeError):
        return None


def periodic_tasks(settings: Settings, app: Flask) -> list[PeriodicTask]:
    """The archive's tasks for the scheduler process (``app`` renders the pages it exports)."""
    tasks = [PeriodicTask("archive.index-search", index_search, INDEX_SECONDS)]
    if settings.archive_publish:
        quiet = settings.archive_publish_quiet_seconds
        debouncer = StaticExportDebouncer(app, quiet=quiet, max_delay=max(900.0, 10 * quiet))
        tasks.append(PeriodicTask("archive.publish-static-copy", debouncer,
                                  min(CHECK_SECONDS, max(quiet / 3, 0.5))))
    return tasks
