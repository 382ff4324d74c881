"""Curation decisions in the log: which fragments' public state changed since their last logged
decision (the appender records those), and which fragments the log vouches for as approved.

A fragment is public only when the log says so: its latest decision under a signed checkpoint is
"approved" or "edited" and names the sha256 of the text it has now. The packs carry nothing
else, so text changed in the database behind the log's back is in no pack.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, event, func, or_, select
from sqlalchemy.orm import Session, aliased

from accounts.models import User
from config.settings import Settings
from fragments.models import APPROVED, REJECTED, Fragment
from provenance.entries import EntryError, archivist_key_id, text_sha256
from provenance.models import LoggedCapture, LoggedDecisionRow
from provenance.records import decision_entry_for, manifest_sha256
from samizdat.db import utcnow
from samizdat.secret_key import load_secret_key

log = logging.getLogger(__name__)

# The decisions that make a fragment public; "rejected" takes it back.
PUBLIC_DECISIONS = ("approved", "edited")
# Ids per IN (…) list: far below every database's limit on bound parameters.
_CHUNK = 1000
# Keeps the derived archivist secret apart from every other use of the app's secret key.
_ARCHIVIST_DOMAIN = b"samizdat/provenance/archivist-key-id/v1"
# A review's stamp is taken before its transaction commits, so one can land after a pass that
# already saw a later stamp (or come from a web host whose clock runs behind): an unchanged pass
# still looks at every review stamped this long before the newest it saw.
REVIEW_OVERLAP = timedelta(minutes=5)
# And every so often the whole comparison again, whatever the counts say: the net under changes
# no count shows (two fragments' statuses swapped in the database behind the curation pages).
FULL_SWEEP_SECONDS = 3600.0


@dataclass(frozen=True)
class LoggedDecision:
    """A fragment's latest published decision that makes it public: its index and exact bytes."""

    fragment_id: str
    log_index: int
    entry: bytes


def archivist_secret(settings: Settings) -> bytes:
    """The secret of archivist key ids: SAMIZDAT_LOG_ARCHIVIST_SECRET, else derived (HMAC with a
    domain separator) from the app's secret key, so that key itself is never used twice."""
    if settings.log_archivist_secret:
        return settings.log_archivist_secret.encode()
    return hmac.new(load_secret_key(settings).encode(), _ARCHIVIST_DOMAIN, hashlib.sha256).digest()


def _latest(published_only: bool, ids: list[str] | None = None):
    """Each fragment's (of ``ids``, None = all) latest recorded decision row — published ones
    only, if asked — as (subquery of fragment_id and log_index, an alias of the row)."""
    newest = select(LoggedDecisionRow.fragment_id,
                    func.max(LoggedDecisionRow.log_index).label("log_index"))
    if published_only:
        newest = newest.where(LoggedDecisionRow.published.is_(True))
    if ids is not None:  # filtered inside: no database need group the whole table per chunk
        newest = newest.where(LoggedDecisionRow.fragment_id.in_(ids))
    newest = newest.group_by(LoggedDecisionRow.fragment_id).subquery()
    return newest, aliased(LoggedDecisionRow)


def _chunks(ids: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start:start + _CHUNK]


def logged_approvals(session: Session,
                     fragment_ids: Iterable[str] | None = None) -> dict[str, LoggedDecision]:
    """Fragments (of ``fragment_ids``; None = all) whose latest published decision is approved
    or edited and names the sha256 of their current text, by id.

    The log's word only: callers that show fragments also require status approved (is_public).
    """
    def query(ids: list[str] | None):
        newest, row = _latest(True, ids)
        return (select(Fragment.id, Fragment.text, row.log_index, row.text_sha256, row.entry)
                .join(newest, newest.c.fragment_id == Fragment.id)
                .join(row, row.log_index == newest.c.log_index)
                .where(row.decision.in_(PUBLIC_DECISIONS)))

    if fragment_ids is None:
        batches: Iterable = [session.execute(query(None).execution_options(yield_per=2000))]
    else:
        wanted = list(dict.fromkeys(fragment_ids))
        batches = (session.execute(query(chunk)) for chunk in _chunks(wanted))
    out = {}
    for rows in batches:
        for fragment_id, text, log_index, sha, entry in rows:
            if vouches(text, sha):
                out[fragment_id] = LoggedDecision(fragment_id, log_index, entry.encode())
    return out


def logged_public():
    """A SQL condition on ``Fragment``: approved, and its latest published decision is approved
    or edited. For listings too large for :func:`logged_approvals` (the random API's pool): the
    caller that shows a fragment's text still checks it against the logged sha256
    (:func:`vouches`), as the database cannot hash it."""
    latest = (select(func.max(LoggedDecisionRow.log_index))
              .where(LoggedDecisionRow.fragment_id == Fragment.id,
                     LoggedDecisionRow.published.is_(True))
              .correlate(Fragment).scalar_subquery())
    row = aliased(LoggedDecisionRow)
    return and_(Fragment.status == APPROVED,
                select(row.log_index).where(row.log_index == latest,
                                            row.decision.in_(PUBLIC_DECISIONS)).exists())


def vouches(text: str, logged_sha: str | None) -> bool:
    """Whether a logged decision naming ``logged_sha`` vouches for ``text``."""
    return logged_sha is not None and text_sha256(text) == logged_sha


def is_public(session: Session, fragment: Fragment) -> bool:
    """Whether ``fragment`` is approved and the published log vouches for its current text."""
    return fragment.status == APPROVED and fragment.id in logged_approvals(session, [fragment.id])


def _decision(status: str, text_sha: str, last_decision: str | None,
              last_sha: str | None) -> str | None:
    """The decision to log for a fragment now ``status`` with text ``text_sha``, given its last
    logged decision; None when its public state has not changed since."""
    was_public = last_decision in PUBLIC_DECISIONS
    if status == APPROVED:
        if not was_public:
            return "approved"
        return None if last_sha == text_sha else "edited"
    if status == REJECTED and was_public:
        return "rejected"
    return None  # pending (an edit awaiting review) or never public: nothing the public saw


@dataclass(frozen=True)
class _Seen:
    """What a committed pass started from: the counts it saw, the newest review stamp (the
    watermark) and when the last full comparison ran (time.monotonic)."""

    counts: tuple
    reviewed: datetime | None
    swept_at: float


# By (database URL, log directory): the scheduler's one process keeps it between passes. Lost on
# a restart, which costs one full comparison; never shared, so it can only be too old, not wrong.
_seen: dict[tuple[str, str], _Seen] = {}
_PENDING = "samizdat.decisions.seen"  # session.info key: what to remember once the rows commit


def _curation_counts(session: Session) -> tuple:
    """Approved and rejected fragments (counted on the status index), the newest logged capture
    and the newest logged decision: what changes when a decision to log comes with no new review
    stamp (a status set in the database, an auto-approved fragment, a capture newly logged with
    approved fragments) or when the log's rows change under this process (another appender, a
    database restored from a backup). The last always comes last."""
    # One count per status: each reads its range of the status index alone (a GROUP BY over both
    # took three times as long on SQLite).
    approved, rejected = (session.scalar(select(func.count()).where(Fragment.status == status))
                          for status in (APPROVED, REJECTED))
    captured = session.scalar(select(func.max(LoggedCapture.log_index)))
    decided = session.scalar(select(func.max(LoggedDecisionRow.log_index)))
    return approved, rejected, captured, decided


@event.listens_for(Session, "after_commit")
def _remember_pass(session: Session) -> None:
    pending = session.info.pop(_PENDING, None)
    if pending is not None:
        key, seen = pending
        _seen[key] = seen


@event.listens_for(Session, "after_soft_rollback")
def _forget_pass(session: Session, previous_transaction) -> None:
    session.info.pop(_PENDING, None)  # rows never recorded: the next pass compares everything


def _changed(session: Session, ids: list[str] | None, batch: int) -> list[tuple]:
    """Up to ``batch`` of the fragments (of ``ids``, None = all) whose public state changed since
    their last recorded decision, with the decision to log, in review order."""
    query = select(Fragment.id, Fragment.capture_id, Fragment.text, Fragment.status,
                   Fragment.reviewed_at, Fragment.reviewed_by)
    if ids is None:  # everything: one grouping of the whole table beats a lookup per fragment
        newest, row = _latest(published_only=False)
        query = query.outerjoin(newest, newest.c.fragment_id == Fragment.id).outerjoin(
            row, row.log_index == newest.c.log_index)
    else:  # a few: each one's latest row by the fragment_id index
        row = aliased(LoggedDecisionRow)
        latest = (select(func.max(LoggedDecisionRow.log_index))
                  .where(LoggedDecisionRow.fragment_id == Fragment.id)
                  .correlate(Fragment).scalar_subquery())
        query = query.outerjoin(row, row.log_index == latest).where(Fragment.id.in_(ids))
    reviewed_since = or_(row.log_index.is_(None),
                         Fragment.reviewed_at.is_distinct_from(row.reviewed_at))
    query = (
        query.add_columns(row.decision, row.text_sha256, row.reviewed_at.label("logged_review"))
        .join(LoggedCapture, LoggedCapture.capture_id == Fragment.capture_id)
        .where(or_(and_(Fragment.status == APPROVED, reviewed_since),
                   and_(Fragment.status == REJECTED, row.decision.in_(PUBLIC_DECISIONS))))
        .order_by(Fragment.reviewed_at, Fragment.id)
        .execution_options(yield_per=2000)
    )
    changed = []
    result = session.execute(query)
    for fragment in result:
        decision = _decision(fragment.status, text_sha256(fragment.text), fragment.decision,
                             fragment.text_sha256)
        if decision is not None:
            changed.append((fragment, decision))
            if len(changed) >= batch:
                break
    result.close()  # a streamed result left open would hold its cursor until the commit
    return changed


def new_decision_rows(session: Session, settings: Settings, first_index: int,
                      batch: int) -> list[LoggedDecisionRow]:
    """Rows for up to ``batch`` fragments whose public state a decision changed since their last
    recorded one, numbered from ``first_index``, in review order.

    Only fragments whose capture has a row in log_captures (flushed ones included): a decision's
    entry always comes after its capture's. Making a fragment public (approved, edited) takes a
    decision: its first one, or a review since the last recorded (a new ``reviewed_at``); text
    or status changed in the database with no review is not logged, so not public. Taking one
    down (rejected) is logged however it happened.

    Proportional to change: when the counts are what the last committed pass started from, only
    fragments reviewed since the newest stamp it saw (less REVIEW_OVERLAP: a watermark that
    overlaps, so two reviews in one clock tick, or one committed late, are both seen) are compared
    with their logged decision, on the reviewed_at index; otherwise, and every
    FULL_SWEEP_SECONDS, all of them are.
    """
    key = (str(session.get_bind().url), str(settings.log_path))
    # Read before the comparison: a change committed in between only makes the next pass look.
    counts = _curation_counts(session)
    newest_review = session.scalar(select(func.max(Fragment.reviewed_at)))
    seen = _seen.get(key)
    now = time.monotonic()
    full = (seen is None or seen.counts != counts or now - seen.swept_at >= FULL_SWEEP_SECONDS)
    if full:
        changed = _changed(session, None, batch)
    else:  # seen.reviewed None: no review before, so every stamp now is new
        recent = (Fragment.reviewed_at.is_not(None) if seen.reviewed is None
                  else Fragment.reviewed_at >= seen.reviewed - REVIEW_OVERLAP)
        ids = list(session.scalars(select(Fragment.id).where(recent)
                                   .order_by(Fragment.reviewed_at, Fragment.id)))
        changed = []
        for chunk in _chunks(ids):
            changed += _changed(session, chunk, batch - len(changed))
            if len(changed) >= batch:
                break
    if not changed:
        _remember(session, key, _Seen(counts, newest_review, now if full else seen.swept_at))
        return []
    names = {f.reviewed_by for f, _ in changed if f.reviewed_by}
    users = {name: user_id for name, user_id in session.execute(
        select(User.name, User.id).where(User.name.in_(names)))} if names else {}
    secret = archivist_secret(settings) if users else b""
    manifests: dict[int, str] = {}
    rows = []
    unlogged = False
    for fragment, decision in changed:
        if fragment.capture_id not in manifests:
            manifests[fragment.capture_id] = manifest_sha256(session, fragment.capture_id)
        decided_at, reviewed = _when(fragment)
        user_id = users.get(fragment.reviewed_by) if reviewed else None
        archivist = archivist_key_id(secret, user_id) if user_id is not None else None
        try:
            entry = decision_entry_for(session, fragment, decision, decided_at, archivist,
                                       manifest=manifests[fragment.capture_id])
        except EntryError as exc:  # one unloggable decision must not hold back the others
            log.warning("decision on fragment %s not logged: %s", fragment.id, exc)
            unlogged = True  # tried again every pass, as before: not remembered as seen
            continue
        rows.append(LoggedDecisionRow(
            log_index=first_index + len(rows), fragment_id=fragment.id, decision=decision,
            text_sha256=entry.text_sha256, reviewed_at=fragment.reviewed_at,
            entry=entry.encode().decode("utf-8")))
    if len(changed) < batch and not unlogged:  # a full batch leaves more for the next pass
        # Once these rows commit, the newest decision is the last of them: not a change to see.
        last = rows[-1].log_index if rows else counts[-1]
        _remember(session, key, _Seen((*counts[:-1], last), newest_review,
                                      now if full else seen.swept_at))
    return rows


def _remember(session: Session, key: tuple[str, str], seen: _Seen) -> None:
    """Keep ``seen`` for the next pass once ``session`` commits (not if it rolls back)."""
    session.info[_PENDING] = (key, seen)


def _when(fragment) -> tuple[datetime, bool]:
    """When the decision was made and whether a review made it (so its reviewer may be named).

    A review stamps a new ``reviewed_at``; a change under the same stamp as the last recorded
    decision (text or status changed in the database, say) is logged as seen now, with no
    archivist.
    """
    if fragment.reviewed_at is None or (fragment.decision is not None
                                        and fragment.reviewed_at == fragment.logged_review):
        return utcnow(), False
    return fragment.reviewed_at, True
