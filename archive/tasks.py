"""The archive's periodic task: keep the search index up to date with newly processed captures."""

from __future__ import annotations

import logging

from archive.index import index_new_captures
from config.settings import Settings
from samizdat.runtime import Runtime
from samizdat.tasks import PeriodicTask

log = logging.getLogger(__name__)

INDEX_SECONDS = 30.0


def index_search(runtime: Runtime) -> int:
    """Index the captures processed since the last run; returns how many sources were indexed."""
    report = index_new_captures(runtime)
    if report.indexed or report.failed:
        log.info("search index: %d source(s) indexed, %d failed", report.indexed, report.failed)
    return report.indexed


def periodic_tasks(settings: Settings) -> list[PeriodicTask]:
    """The archive's tasks for the scheduler process."""
    return [PeriodicTask("archive.index-search", index_search, INDEX_SECONDS)]
