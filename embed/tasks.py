"""The embed's periodic task: republish the packs shortly after curation changes (debounced), and
at half their signed lifetime even when nothing changed, so widgets never meet only expired ones."""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime, timedelta, timezone

from embed.packs import curation_fingerprint
from provenance.errors import ProvenanceError
from provenance.freshness import note_policy_time
from provenance.note import Ed25519Verifier
from provenance.tiles import CHECKPOINT_PATH
from embed.publish import PUBLISHED_STATE, publish_embed
from config.settings import Settings
from samizdat.runtime import Runtime
from samizdat.tasks import Debounce, PeriodicTask

log = logging.getLogger(__name__)

CHECK_SECONDS = 10.0


class PublishDebouncer:
    """Publishes once the curation fingerprint has changed and then held still for ``quiet`` seconds.

    A burst of decisions (a reviewer going through a queue) becomes one publish, never one per
    click; a steady trickle still publishes at least every ``max_delay`` seconds. It also
    publishes, changed or not, once the signed indexes are past half their lifetime.
    """

    def __init__(self, quiet: float = 30.0, max_delay: float = 300.0):
        self.debounce = Debounce(quiet, max_delay)

    def __call__(self, runtime: Runtime) -> bool:
        """Check once; publish if due. Returns whether it published."""
        with runtime.Session() as session:
            current = curation_fingerprint(session)
        state = _published_state(runtime)
        published = state.get("fingerprint")
        due = self.debounce.due(current, published, time.monotonic())
        # Never published at all: no need to wait for the first one.
        if not (due or published is None or _half_life_passed(state, runtime.settings)
                or _checkpoint_refresh_due(state, runtime.settings)):
            return False
        with runtime.Session() as session:
            report = publish_embed(session, runtime.settings, fingerprint=current)
        self.debounce.reset()
        log.info("published fragment packs: %d fragments, serial %d", report.packs.fragments,
                 report.packs.serial)
        for failure in report.failures:
            log.warning("fragment packs not published to %s", failure)
        return True


def _published_state(runtime: Runtime) -> dict:
    try:
        state = json.loads((runtime.settings.public_path / PUBLISHED_STATE).read_bytes())
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def _half_life_passed(state: dict, settings: Settings) -> bool:
    """Whether the published indexes are past half their lifetime (or carry none: an older publish).

    Half leaves days for a failed publish to be retried and for every origin (S3, IPFS, caches
    of 60 s) to take the new indexes before the old ones expire in readers' browsers. A lifetime
    shortened in the settings since counts from the next check on.
    """
    try:
        generated = datetime.fromisoformat(state["generated_at"])
        lifetime = datetime.fromisoformat(state["expires"]) - generated
    except (KeyError, TypeError, ValueError):
        return True
    lifetime = min(lifetime, timedelta(hours=settings.embed_index_ttl_hours))
    return datetime.now(timezone.utc) >= generated + lifetime / 2


def _checkpoint_refresh_due(state: dict, settings: Settings) -> bool:
    """Whether the indexes should carry the log's newer checkpoint: the one they carry does not
    meet the widget's policy, or is a refresh interval old, and the log's current one is fresher
    under that policy (cosigned, when witnesses are pinned). A quiet archive's log re-signs on a
    timer (``SAMIZDAT_LOG_REFRESH_SECONDS``); this carries each refresh to the widgets, which
    refuse a checkpoint older than ``SAMIZDAT_EMBED_CHECKPOINT_MAX_AGE_HOURS``."""
    config = state.get("log")
    if not isinstance(config, dict):
        return False
    carried = state.get("checkpoint_time")
    try:
        log_dir = settings.log_path
        note = (log_dir / CHECKPOINT_PATH).read_bytes()
        verifier = Ed25519Verifier.from_vkey(config["key"])
        current = note_policy_time(note, verifier.name, verifier, config["witnesses"],
                                   config["quorum"])
    except (OSError, KeyError, TypeError, ProvenanceError):
        return False
    if current is None:
        return False  # not cosigned yet: the log's next pass asks the witnesses
    if not isinstance(carried, int):
        return True
    return current > carried and time.time() - carried >= settings.log_refresh_seconds


def periodic_tasks(settings: Settings) -> list[PeriodicTask]:
    """The embed's tasks for the scheduler process."""
    quiet = settings.embed_publish_quiet_seconds
    debouncer = PublishDebouncer(quiet=quiet, max_delay=max(300.0, 10 * quiet))
    return [PeriodicTask("embed.publish-packs", debouncer, min(CHECK_SECONDS, max(quiet / 3, 0.5)))]
