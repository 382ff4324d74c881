"""The log's periodic task: the active scheduler appends stored captures and curation decisions,
and publishes."""

from __future__ import annotations

import logging

from config.settings import Settings
from provenance.appender import append_captures
from provenance.errors import ProvenanceError
from samizdat.runtime import Runtime
from samizdat.tasks import PeriodicTask

log = logging.getLogger(__name__)

APPEND_SECONDS = 30.0


def append_and_publish(runtime: Runtime) -> int:
    """One pass of :func:`append_captures`; returns how many new entries it logged."""
    try:
        report = append_captures(runtime)
    except ProvenanceError as exc:  # another writer, or log and database disagree: one line
        log.error("log not appended: %s", exc)
        return 0
    if report.appended or report.decisions or report.replayed:
        log.info("log: %d capture(s) and %d decision(s) appended, %d replayed; checkpoint of "
                 "size %d published", report.appended, report.decisions, report.replayed,
                 report.size)
    return report.appended + report.decisions


def periodic_tasks(settings: Settings) -> list[PeriodicTask]:
    """The log's tasks for the scheduler process (only the active one runs them)."""
    return [PeriodicTask("provenance.append-captures", append_and_publish,
                         min(APPEND_SECONDS, settings.scheduler_tick_seconds))]
