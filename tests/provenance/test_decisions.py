"""Curation decisions in the log: each approval, rejection and edit is appended once, names no
archivist, survives a crash byte for byte, and the log (not the database) decides what is public."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select, text, update

from config.settings import SettingsError, load_settings
from embed.publish import publish_embed
from fragments.curation import Reviewer, edit_text, review
from fragments.models import APPROVED, PENDING, REJECTED, Fragment
from mirror.models import Capture
from mirror.pipeline import capture_source
from mirror.sources import add_source
from provenance.appender import append_captures, log_signer
from provenance.decisions import (
    archivist_secret,
    is_public,
    logged_approvals,
    new_decision_rows,
)
from provenance.entries import archivist_key_id, parse_entry, text_sha256
from provenance.errors import ProvenanceError
from provenance.log import LogClient, LogWriter
from provenance.models import LoggedCapture, LoggedDecisionRow
from samizdat.app import create_app
from samizdat.db import utcnow
from tests.conftest import create_account, make_settings
from tests.sites import seed_names

# Names that must never reach the log, in any encoding the log could hold them.
ARCHIVIST = "nguyen.thi-luutru"
EDITOR = "tran_van@bientap"


@pytest.fixture
def app(tmp_path, database_url):
    """SQLite or PostgreSQL, the local store only."""
    application = create_app(make_settings(tmp_path, database_url))
    yield application
    application.extensions["samizdat"].dispose()


@pytest.fixture
def runtime(app):
    return app.extensions["samizdat"]


@pytest.fixture
def fragments(runtime, site) -> list[str]:
    """A captured article's fragment ids (pending), in page order."""
    with runtime.Session() as session:
        source = add_source(session, site.url(f"/articles/{seed_names()[0]}.html"), 60).source
        session.commit()
        source_id = source.id
    outcome = capture_source(runtime, source_id)
    assert outcome.status == "ok" and outcome.new_fragments >= 3
    with runtime.Session() as session:
        return list(session.scalars(select(Fragment.id).where(
            Fragment.capture_id == outcome.capture_id).order_by(Fragment.position)))


def decide(runtime, ids, status, who=ARCHIVIST):
    with runtime.Session() as session:
        review(session, ids, status, Reviewer(who))
        session.commit()


def decision_rows(runtime) -> list[tuple]:
    with runtime.Session() as session:
        return [tuple(r) for r in session.execute(select(
            LoggedDecisionRow.log_index, LoggedDecisionRow.fragment_id, LoggedDecisionRow.decision,
            LoggedDecisionRow.text_sha256, LoggedDecisionRow.published,
        ).order_by(LoggedDecisionRow.log_index))]


def text_of(runtime, fragment_id) -> str:
    with runtime.Session() as session:
        return session.get(Fragment, fragment_id).text


def client_of(runtime) -> LogClient:
    settings = runtime.settings
    return LogClient(str(settings.log_path), settings.log_origin_name,
                     log_signer(settings).verifier)


def entry_at(runtime, index):
    with runtime.Session() as session:
        entry = session.scalar(select(LoggedDecisionRow.entry).where(
            LoggedDecisionRow.log_index == index)).encode()
    # The row's bytes are what the published, signed log holds at that index.
    assert client_of(runtime).verify(index, expected=entry).entry == entry
    return parse_entry(entry)


def test_approve_reject_and_edit_each_append_one_entry_naming_no_archivist(
        app, runtime, fragments):
    archivist = create_account(app, ARCHIVIST)
    create_account(app, EDITOR)
    first, second = fragments[:2]
    key_id = archivist_key_id(archivist_secret(runtime.settings), archivist.id)

    decide(runtime, [first], APPROVED)
    report = append_captures(runtime)
    assert (report.appended, report.decisions, report.replayed) == (1, 1, 0)
    sha = text_sha256(text_of(runtime, first))
    assert decision_rows(runtime) == [(1, first, "approved", sha, True)]
    entry = entry_at(runtime, 1)
    assert (entry.fragment, entry.decision, entry.text_sha256, entry.archivist) == (
        first, "approved", sha, key_id)
    with runtime.Session() as session:
        assert entry.manifest == parse_entry(session.scalar(
            select(LoggedCapture.entry)).encode()).manifest

    # Nothing changed: a second pass appends nothing and signs no new checkpoint.
    again = append_captures(runtime)
    assert (again.appended, again.decisions, again.replayed, again.published) == (0, 0, 0, False)

    decide(runtime, [first], REJECTED)
    assert append_captures(runtime).decisions == 1
    assert decision_rows(runtime)[-1] == (2, first, "rejected", sha, True)
    assert entry_at(runtime, 2).archivist == key_id

    # Approved again, then edited: the edit is pending (not logged) until someone approves it.
    decide(runtime, [first], APPROVED)
    assert append_captures(runtime).decisions == 1
    assert decision_rows(runtime)[-1] == (3, first, "approved", sha, True)
    with runtime.Session() as session:
        edit_text(session, session.get(Fragment, first), "Một câu đã được sửa lại.", EDITOR)
        session.commit()
    assert append_captures(runtime).decisions == 0  # pending: nothing is logged
    decide(runtime, [first], APPROVED)
    assert append_captures(runtime).decisions == 1
    edited_sha = text_sha256("Một câu đã được sửa lại.")
    assert decision_rows(runtime)[-1] == (4, first, "edited", edited_sha, True)
    assert entry_at(runtime, 4).archivist == key_id

    # A fragment rejected straight from the queue was never public: nothing to log.
    decide(runtime, [second], REJECTED)
    assert append_captures(runtime).decisions == 0
    assert [row[1] for row in decision_rows(runtime)] == [first] * 4
    assert client_of(runtime).checkpoint().size == 5

    published = b"".join(p.read_bytes() for p in runtime.settings.log_path.rglob("*")
                         if p.is_file())
    for name in (ARCHIVIST, EDITOR):
        for encoding in ("utf-8", "utf-16-le", "unicode_escape"):
            assert name.encode(encoding) not in published
    assert json.dumps(ARCHIVIST).encode() not in published


def test_a_decision_waits_for_its_capture_and_comes_after_it(runtime, fragments):
    with runtime.Session() as session:
        capture_id = session.get(Fragment, fragments[0]).capture_id
        session.execute(update(Capture).where(Capture.id == capture_id).values(complete=False))
        session.commit()
    decide(runtime, fragments[:2], APPROVED, who="cli")
    report = append_captures(runtime)
    assert (report.appended, report.decisions) == (0, 0)
    with runtime.Session() as session:
        session.execute(update(Capture).where(Capture.id == capture_id).values(complete=True))
        session.commit()
    report = append_captures(runtime)
    assert (report.appended, report.decisions, report.size) == (1, 2, 3)
    # One review decided both at once: they follow their capture, in fragment id order.
    assert [row[:3] for row in decision_rows(runtime)] == [
        (1 + i, fragment_id, "approved") for i, fragment_id in enumerate(sorted(fragments[:2]))]
    # No account of that name (the shell's anonymous reviewer): no key id at all.
    assert entry_at(runtime, 1).archivist is None


def test_a_crash_between_recording_and_publishing_replays_the_same_bytes(runtime, fragments):
    assert append_captures(runtime).size == 1
    decide(runtime, fragments[:2], APPROVED)
    settings = runtime.settings
    # A pass recorded two decisions, appended them, and died before signing a checkpoint.
    with runtime.Session() as session:
        rows = new_decision_rows(session, settings, 1, 10)
        session.add_all(rows)
        session.commit()
        recorded = [row.entry.encode() for row in rows]
        recorded_ids = [row.fragment_id for row in rows]
    assert sorted(recorded_ids) == sorted(fragments[:2])
    with LogWriter(settings.log_path, log_signer(settings), settings.log_origin_name) as writer:
        writer.append(recorded)
    assert [row[4] for row in decision_rows(runtime)] == [False, False]
    assert logged_approvals_of(runtime) == {}  # recorded is not yet published

    report = append_captures(runtime)
    assert (report.replayed, report.appended, report.decisions, report.size) == (2, 0, 0, 3)
    assert [row[4] for row in decision_rows(runtime)] == [True, True]
    for index, entry in enumerate(recorded, start=1):
        assert client_of(runtime).verify(index, expected=entry).index == index
    approvals = logged_approvals_of(runtime)
    assert {i: (a.log_index, a.entry) for i, a in approvals.items()} == {
        recorded_ids[0]: (1, recorded[0]), recorded_ids[1]: (2, recorded[1])}
    assert append_captures(runtime).decisions == 0


def test_captures_and_decisions_share_one_index_sequence(runtime, fragments):
    decide(runtime, fragments[:1], APPROVED)
    assert append_captures(runtime).size == 2  # the capture at 0, its decision at 1

    def refused_with(row, message):
        with runtime.Session() as session:
            session.add(row)
            session.commit()
        with pytest.raises(ProvenanceError, match=message):
            append_captures(runtime)
        with runtime.Session() as session:
            session.delete(session.merge(row))
            session.commit()

    # A capture row claiming the decision's index: the database records 3 entries below size 2.
    refused_with(LoggedCapture(log_index=1, capture_id=None, entry="{}"),
                 "the log holds 2 entries but the database records 3")
    # A decision recorded past the checkpoint with index 2 missing: a gap across both tables.
    refused_with(LoggedDecisionRow(log_index=3, fragment_id=fragments[1], decision="approved",
                                   text_sha256="0" * 64, entry="{}"),
                 "have a gap")
    assert append_captures(runtime).decisions == 0


def logged_approvals_of(runtime, ids=None):
    with runtime.Session() as session:
        return logged_approvals(session, ids)


def test_text_changed_behind_the_logs_back_is_not_public_until_an_archivist_reviews_it(
        app, runtime, fragments):
    archivist = create_account(app, ARCHIVIST)
    fragment_id = fragments[0]
    decide(runtime, [fragment_id], APPROVED)
    append_captures(runtime)
    with runtime.Session() as session:
        assert is_public(session, session.get(Fragment, fragment_id))
    assert set(logged_approvals_of(runtime, [fragment_id, "0" * 32])) == {fragment_id}

    planted = "Words nobody approved."
    with runtime.Session() as session:
        session.execute(text("UPDATE fragments SET text = :t WHERE id = :i"),
                        {"t": planted, "i": fragment_id})
        session.commit()
    assert logged_approvals_of(runtime) == {}
    with runtime.Session() as session:
        assert not is_public(session, session.get(Fragment, fragment_id))
    # No review made that change: it is no decision, and the log does not vouch for it.
    assert append_captures(runtime).decisions == 0
    assert logged_approvals_of(runtime) == {}

    # An archivist reviews the text and approves it: that decision is logged, as an edit.
    decide(runtime, [fragment_id], APPROVED)
    assert append_captures(runtime).decisions == 1
    entry = entry_at(runtime, 2)
    assert (entry.decision, entry.text_sha256, entry.archivist) == (
        "edited", text_sha256(planted),
        archivist_key_id(archivist_secret(runtime.settings), archivist.id))
    assert set(logged_approvals_of(runtime)) == {fragment_id}


def test_a_rejection_is_logged_however_it_was_made(runtime, fragments):
    fragment_id = fragments[0]
    decide(runtime, [fragment_id], APPROVED)
    append_captures(runtime)
    with runtime.Session() as session:  # taken down in the database, with no review
        session.execute(update(Fragment).where(Fragment.id == fragment_id)
                        .values(status=REJECTED))
        session.commit()
    before = (utcnow() - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert append_captures(runtime).decisions == 1
    entry = entry_at(runtime, 2)
    assert (entry.decision, entry.archivist) == ("rejected", None)
    assert entry.time >= before  # seen now: no review says when it was made
    assert logged_approvals_of(runtime) == {}


def test_a_pending_fragment_is_not_public_even_if_its_text_was_approved(runtime, fragments):
    fragment_id = fragments[0]
    decide(runtime, [fragment_id], APPROVED)
    append_captures(runtime)
    with runtime.Session() as session:
        session.execute(update(Fragment).where(Fragment.id == fragment_id).values(status=PENDING))
        session.commit()
        assert fragment_id in logged_approvals(session)  # the log's word, unchanged
        assert not is_public(session, session.get(Fragment, fragment_id))


def test_the_archivist_secret_setting_is_used_and_must_be_long_enough(tmp_path):
    secret = "s" * 32
    settings = make_settings(tmp_path, "sqlite://", log_archivist_secret=secret)
    assert archivist_secret(settings) == secret.encode()
    derived = archivist_secret(make_settings(tmp_path, "sqlite://", secret_key="k" * 40))
    assert len(derived) == 32 and b"k" * 16 not in derived
    assert derived != archivist_secret(make_settings(tmp_path, "sqlite://", secret_key="j" * 40))
    assert load_settings({"SAMIZDAT_LOG_ARCHIVIST_SECRET": secret}).log_archivist_secret == secret
    with pytest.raises(SettingsError, match="LOG_ARCHIVIST_SECRET must be at least 16 bytes"):
        load_settings({"SAMIZDAT_LOG_ARCHIVIST_SECRET": "short"})


# --- packs carry only what the log holds ---------------------------------------------------------


def packed(runtime) -> dict[str, str]:
    """Fragment id → text, as the published "all" pack carries them."""
    root = runtime.settings.public_path / "packs"
    index = json.loads(json.loads((root / "all" / "index.json").read_bytes())["payload"])
    out = {}
    for shard in index["shards"]:
        for fragment in json.loads((root / "shards" / f"{shard['sha256']}.json").read_bytes())[
                "fragments"]:
            out[fragment["id"]] = fragment["text"]
    return out


def publish(runtime):
    with runtime.Session() as session:
        return publish_embed(session, runtime.settings)


def held_log(runtime) -> LogWriter:
    """The log held by another writer (the scheduler's pass, say) while a test publishes."""
    settings = runtime.settings
    return LogWriter(settings.log_path, log_signer(settings), settings.log_origin_name)


def test_an_approval_not_yet_logged_waits_for_the_log_before_the_packs_carry_it(
        app, runtime, fragments):
    first, second = fragments[:2]
    decide(runtime, [first], APPROVED)
    assert set(packed_after(publish(runtime), runtime)) == {first}  # publishing appended first

    decide(runtime, [second], APPROVED)
    with held_log(runtime):
        report = publish(runtime)
        assert "another writer holds the log" in report.log_note
        assert set(packed(runtime)) == {first}
        assert report.packs.fragments == 1
        result = app.test_cli_runner().invoke(args=["embed", "publish"])
        assert result.exit_code == 0, result.output
        assert "note: the log was not appended" in result.output
        assert "only what it already holds is published" in result.output
    assert set(packed(runtime)) == {first}

    # The scheduler's log pass runs; the next publish carries the approval it logged.
    assert append_captures(runtime).decisions == 1
    report = publish(runtime)
    assert report.log_note is None and set(packed(runtime)) == {first, second}


def packed_after(report, runtime) -> dict[str, str]:
    assert report.log_note is None
    return packed(runtime)


def test_text_changed_behind_the_logs_back_is_not_in_the_packs(runtime, fragments):
    fragment_id = fragments[0]
    original = text_of(runtime, fragment_id)
    decide(runtime, [fragment_id], APPROVED)
    assert packed_after(publish(runtime), runtime) == {fragment_id: original}

    planted = "Words nobody approved."
    with runtime.Session() as session:
        session.execute(text("UPDATE fragments SET text = :t WHERE id = :i"),
                        {"t": planted, "i": fragment_id})
        session.commit()
    report = publish(runtime)  # the log pass before it finds no decision to log
    assert report.log_note is None and packed(runtime) == {}
    public = runtime.settings.public_path
    for path in (public / "frame.html", *public.joinpath("packs").rglob("*.json")):
        assert planted.encode() not in path.read_bytes(), path


def test_a_pass_with_nothing_new_appends_nothing_and_a_later_change_is_still_caught(
        runtime, fragments):
    first, second, third = fragments[:3]
    decide(runtime, [first, second], APPROVED)
    assert append_captures(runtime).decisions == 2
    idle = append_captures(runtime)
    assert (idle.decisions, idle.appended, idle.published, idle.size) == (0, 0, False, 3)

    # After a pass remembered what it saw: an edit (pending again, then approved), a rejection
    # and a first approval are each logged by the next pass.
    with runtime.Session() as session:
        edit_text(session, session.get(Fragment, first), "A corrected first sentence.", EDITOR)
        session.commit()
    assert append_captures(runtime).decisions == 0  # pending: nothing the public saw changed
    decide(runtime, [first], APPROVED)
    decide(runtime, [second], REJECTED)
    decide(runtime, [third], APPROVED)
    assert append_captures(runtime).decisions == 3
    assert sorted(row[1:3] for row in decision_rows(runtime)[2:]) == sorted([
        (first, "edited"), (second, "rejected"), (third, "approved")])
    assert append_captures(runtime).decisions == 0


def test_reviews_stamped_in_the_same_clock_tick_as_the_last_seen_or_before_it_are_caught(
        runtime, fragments):
    # The classic watermark bug: a pass that saw stamp T must still see another review stamped
    # T (same tick) or a little earlier (its transaction committed after the pass), even when
    # no count changed (approved fragments re-reviewed after their text changed).
    first, second, third = fragments[:3]
    decide(runtime, [first, second, third], APPROVED)
    assert append_captures(runtime).decisions == 3
    with runtime.Session() as session:
        approved_at = session.get(Fragment, first).reviewed_at  # one review: one stamp for all

    def review_again(fragment_id, stamp):
        with runtime.Session() as session:
            session.execute(update(Fragment).where(Fragment.id == fragment_id).values(
                text=f"Reviewed again at {stamp.isoformat()}.", reviewed_at=stamp))
            session.commit()

    seen = approved_at + timedelta(seconds=1)
    review_again(third, seen)
    assert append_captures(runtime).decisions == 1  # this pass saw stamp `seen`
    review_again(first, seen)  # the same tick
    review_again(second, seen - timedelta(seconds=30))  # stamped earlier, committed later
    assert append_captures(runtime).decisions == 2
    assert [row[1:3] for row in decision_rows(runtime)[3:]] == [
        (third, "edited"), (second, "edited"), (first, "edited")]  # in review order
    assert set(logged_approvals_of(runtime)) == {first, second, third}
    assert append_captures(runtime).decisions == 0
