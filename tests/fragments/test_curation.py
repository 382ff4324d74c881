"""Curation in the store and from the shell: pending by default, decisions kept, bulk actions."""

import pytest
from sqlalchemy import select

from fragments.curation import (
    CurationError,
    Reviewer,
    change_tags,
    create_collection,
    edit_text,
    get_fragment,
    review,
)
from fragments.models import APPROVED, PENDING, REJECTED, Fragment
from fragments.split import CaptureInfo, split_capture
from fragments.store import save_fragments
from mirror.models import Capture
from tests.sites import article_html, seed_names


def fragments_of(app, capture_id=None):
    """Every stored fragment (of one capture), in page order."""
    with app.extensions["samizdat"].Session() as session:
        query = select(Fragment).order_by(Fragment.capture_id, Fragment.position)
        if capture_id is not None:
            query = query.where(Fragment.capture_id == capture_id)
        return list(session.scalars(query))


def test_new_fragments_start_pending_with_the_sources_attribution(app, capture):
    outcome = capture(0, collection="vietnam")
    stored = fragments_of(app, outcome.capture_id)
    assert len(stored) == outcome.new_fragments
    for fragment in stored:
        assert fragment.status == PENDING
        assert fragment.collection == "vietnam" and fragment.country == "VN"
        assert fragment.reviewed_by is None and fragment.original_text is None


def test_fragments_of_an_auto_approve_collection_are_approved_as_split(app, capture):
    auto = capture(0, collection="vietnam", auto_approve=True)
    manual = capture(1, collection="belarus", auto_approve=False)
    assert {f.status for f in fragments_of(app, auto.capture_id)} == {APPROVED}
    assert {f.status for f in fragments_of(app, manual.capture_id)} == {PENDING}


def test_resplitting_a_capture_keeps_review_decisions(app, capture):
    outcome = capture(0, collection="vietnam")
    first, second, *_ = fragments_of(app, outcome.capture_id)
    rt = app.extensions["samizdat"]
    with rt.Session() as session:
        review(session, [first.id], REJECTED, Reviewer("arch"))
        edit_text(session, get_fragment(session, second.id), "An archivist's better wording.", "arch")
        session.flush()
        review(session, [second.id], APPROVED, Reviewer("second"))
        session.commit()
    with rt.Session() as session:
        # Even with the collection now marked auto-approve, a second split changes nothing.
        create_collection(session, "vietnam", auto_approve=True)
        cap = session.get(Capture, outcome.capture_id)
        info = CaptureInfo(cap.id, cap.url, cap.sha256, cap.cid, cap.fetched_at, collection="vietnam")
        drafts = split_capture(article_html(seed_names()[0]), info)
        assert save_fragments(session, drafts) == 0
        session.commit()
    after = {f.id: f for f in fragments_of(app, outcome.capture_id)}
    assert after[first.id].status == REJECTED
    assert after[second.id].status == APPROVED
    assert after[second.id].text == "An archivist's better wording."
    assert all(f.status == PENDING for i, f in after.items() if i not in (first.id, second.id))


def test_editing_keeps_the_split_original(app, capture):
    outcome = capture(0)
    fragment = fragments_of(app, outcome.capture_id)[0]
    rt = app.extensions["samizdat"]
    with rt.Session() as session:
        stored = get_fragment(session, fragment.id)
        edit_text(session, stored, "  First edit.  ", "arch")
        edit_text(session, stored, "Second edit.", "editor2")
        session.commit()
    with rt.Session() as session:
        stored = get_fragment(session, fragment.id)
        assert stored.text == "Second edit."
        assert stored.original_text == fragment.text
        assert stored.edited_by == "editor2"
        assert stored.id == fragment.id  # the id stays: re-splits still recognise the fragment


@pytest.mark.parametrize("text", ["", "   ", "x" * 1001])
def test_edits_must_be_1_to_1000_characters(app, capture, text):
    outcome = capture(0)
    fragment_id = fragments_of(app, outcome.capture_id)[0].id
    with app.extensions["samizdat"].Session() as session:
        with pytest.raises(CurationError):
            edit_text(session, get_fragment(session, fragment_id), text, "arch")


def test_a_missing_id_in_a_review_changes_nothing(app, capture):
    outcome = capture(0)
    good = fragments_of(app, outcome.capture_id)[0].id
    with app.extensions["samizdat"].Session() as session:
        with pytest.raises(CurationError, match="no fragment with id nope"):
            review(session, [good, "nope"], APPROVED, Reviewer("arch"))
        session.commit()
    assert {f.status for f in fragments_of(app)} == {PENDING}


def test_tags_are_normalised_and_never_doubled(app, capture):
    outcome = capture(0)
    fragment_id = fragments_of(app, outcome.capture_id)[0].id
    with app.extensions["samizdat"].Session() as session:
        fragment = get_fragment(session, fragment_id)
        assert change_tags(session, fragment, add=["Press Freedom", "press freedom", "land"]) == [
            "land", "press-freedom",
        ]
        assert change_tags(session, fragment, add=["land"], remove=["press-freedom"]) == ["land"]
        with pytest.raises(CurationError):
            change_tags(session, fragment, add=[""])


# --- flask fragments … and flask collections … ----------------------------------------------------


def statuses(app):
    """Fragment id → status."""
    return {f.id: f.status for f in fragments_of(app)}


def test_cli_approve_all(app, cli, capture):
    capture(0)
    result = cli.invoke(args=["fragments", "approve", "--all"])
    assert result.exit_code == 0, result.output
    assert set(statuses(app).values()) == {APPROVED}
    assert f"{len(statuses(app))} fragments approved" in result.output


def test_cli_approve_one_collection_only(app, cli, capture):
    vietnam = capture(0, collection="vietnam")
    other = capture(1, collection="belarus")
    result = cli.invoke(args=["fragments", "approve", "--all", "--collection", "vietnam"])
    assert result.exit_code == 0, result.output
    assert {f.status for f in fragments_of(app, vietnam.capture_id)} == {APPROVED}
    assert {f.status for f in fragments_of(app, other.capture_id)} == {PENDING}
    # --collection alone means the same.
    assert cli.invoke(args=["fragments", "reject", "--collection", "belarus"]).exit_code == 0
    assert {f.status for f in fragments_of(app, other.capture_id)} == {REJECTED}


def test_cli_bulk_never_overturns_earlier_decisions(app, cli, capture):
    capture(0)
    rejected = fragments_of(app)[0].id
    assert cli.invoke(args=["fragments", "reject", rejected]).exit_code == 0
    assert cli.invoke(args=["fragments", "approve", "--all"]).exit_code == 0
    assert statuses(app)[rejected] == REJECTED


def test_cli_approve_and_reject_by_id(app, cli, capture):
    capture(0)
    first, second, *_ = fragments_of(app)
    assert cli.invoke(args=["fragments", "approve", first.id, second.id]).exit_code == 0
    assert cli.invoke(args=["fragments", "reject", second.id]).exit_code == 0
    now = statuses(app)
    assert now[first.id] == APPROVED and now[second.id] == REJECTED
    stored = fragments_of(app)[0]
    assert stored.reviewed_by == "cli" and stored.reviewed_at is not None


@pytest.mark.parametrize(
    "args, message",
    [
        (["fragments", "approve"], "give fragment ids, or --all"),
        (["fragments", "approve", "FIRST", "nope"], "no fragment with id nope"),
        (["fragments", "reject", "--all", "--collection", "atlantis"], "no collection named 'atlantis'"),
        (["fragments", "approve", "FIRST", "--all"], "not both"),
    ],
)
def test_cli_bad_input_is_one_error_line_and_changes_nothing(app, cli, capture, args, message):
    capture(0)
    before = statuses(app)
    args = [fragments_of(app)[0].id if a == "FIRST" else a for a in args]
    result = cli.invoke(args=args)
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines == [lines[0]] and lines[0].startswith("Error: ") and message in lines[0]
    assert statuses(app) == before


def test_cli_collections_add_list_and_set(app, cli, capture):
    assert cli.invoke(args=["collections", "add", "vietnam"]).exit_code == 0
    duplicate = cli.invoke(args=["collections", "add", "vietnam"])
    assert duplicate.exit_code != 0 and "Error: collection 'vietnam' already exists" in duplicate.output
    assert cli.invoke(args=["collections", "set", "vietnam", "--auto-approve"]).exit_code == 0
    listed = cli.invoke(args=["collections", "list"])
    assert "vietnam" in listed.output and "auto-approve" in listed.output
    outcome = capture(0, collection="vietnam")
    assert {f.status for f in fragments_of(app, outcome.capture_id)} == {APPROVED}
    assert cli.invoke(args=["collections", "set", "vietnam", "--no-auto-approve"]).exit_code == 0
    assert "review" in cli.invoke(args=["collections", "list"]).output
    missing = cli.invoke(args=["collections", "set", "atlantis", "--auto-approve"])
    assert missing.exit_code != 0 and "Error: no collection named 'atlantis'" in missing.output


def test_cli_list_filters_by_collection_and_tag(app, cli, capture):
    capture(0, collection="vietnam")
    capture(1, collection="belarus")
    tagged = fragments_of(app)[0]
    with app.extensions["samizdat"].Session() as session:
        change_tags(session, get_fragment(session, tagged.id), add=["land"])
        session.commit()
    by_collection = cli.invoke(args=["fragments", "list", "--collection", "belarus", "--limit", "500"])
    ids = {line.split()[0] for line in by_collection.output.splitlines()}
    assert ids == {f.id for f in fragments_of(app) if f.collection == "belarus"}
    by_tag = cli.invoke(args=["fragments", "list", "--tag", "land"])
    assert [line.split()[0] for line in by_tag.output.splitlines()] == [tagged.id]
