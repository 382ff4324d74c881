"""The log's periodic task: the active scheduler appends stored captures and curation decisions,
signs a checkpoint and publishes the log directory to S3 and IPFS."""

from __future__ import annotations

import logging

from config.settings import Settings
from provenance.appender import append_captures, witness_checkpoint
from provenance.errors import LogBusyError, ProvenanceError
from provenance.publish import publish_log
from samizdat.errors import SamizdatError
from samizdat.runtime import Runtime
from samizdat.tasks import PeriodicTask

log = logging.getLogger(__name__)

APPEND_SECONDS = 30.0


def append_and_publish(runtime: Runtime) -> int:
    """One pass of :func:`append_captures`; returns how many new entries it logged."""
    try:
        report = append_captures(runtime)
    except LogBusyError as exc:
        # In this very scheduler a packs publish runs its own pass first and may hold the log
        # for a moment: routine, and the next tick (at most 30 s away) appends.
        log.debug("log not appended this time: %s", exc)
        return 0
    except (ProvenanceError, SamizdatError) as exc:  # log and database disagree, or an
        log.error("log not appended: %s", exc)      # unreadable key: one line, not a traceback
        return 0
    if report.appended or report.decisions or report.replayed:
        log.info("log: %d capture(s) and %d decision(s) appended, %d replayed; checkpoint of "
                 "size %d published", report.appended, report.decisions, report.replayed,
                 report.size)
    if report.refreshed:
        log.info("log: checkpoint of size %d re-signed (the newest was older than %d s)",
                 report.size, runtime.settings.log_refresh_seconds)
    if report.stamps.written:  # each failing TSA has already said why, in its own line
        log.info("log: checkpoint of size %d time-stamped: %s", report.size,
                 ", ".join(report.stamps.written))
    _witness(runtime)
    publish_copies(runtime)  # after the tokens and cosignatures: they go out in the same pass
    return report.appended + report.decisions


def _witness(runtime: Runtime) -> None:
    """Collect the witnesses' cosignatures on the published checkpoint (each failure one line)."""
    try:
        witness_checkpoint(runtime)
    except (ProvenanceError, SamizdatError, OSError) as exc:  # another writer holds the log, our
        log.error("checkpoint not witnessed: %s", exc)        # checkpoint or key is unreadable


def publish_copies(runtime: Runtime) -> None:
    """Send S3 and IPFS what they lack of the log. Every pass, not only those that signed a
    checkpoint: an upload that failed is retried on the next one, and when nothing changed it
    costs a directory listing and no request."""
    try:
        published = publish_log(runtime.settings)
    except (ProvenanceError, SamizdatError) as exc:
        log.error("log not published: %s", exc)
        return
    for failure in published.failures:
        log.error("log not published to %s; retried on the next pass", failure)
    for refused in published.refused:
        log.warning("log file not published: %s", refused)
    if published.uploaded:
        log.info("log: %d file(s), %d bytes sent to %s", published.uploaded, published.bytes,
                 ", ".join(s.site for s in published.sites if s.uploaded))


def periodic_tasks(settings: Settings) -> list[PeriodicTask]:
    """The log's tasks for the scheduler process (only the active one runs them)."""
    return [PeriodicTask("provenance.append-captures", append_and_publish,
                         min(APPEND_SECONDS, settings.scheduler_tick_seconds))]
