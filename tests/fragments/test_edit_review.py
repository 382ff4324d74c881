"""An edited fragment goes back to review, its editor never approves it (unless the archive says
one may), and everything public marks it edited and keeps the split original reachable."""

import re

import pytest

from accounts.users import set_active
from fragments import curation
from fragments.models import APPROVED, PENDING, REJECTED
from mirror.reader import text_directive
from tests.conftest import create_account, issue_account_token, log_decisions
from tests.fragments.conftest import bearer, served_after_publish, stored

PLANTED = "The minister admitted the protesters were paid foreign agents."
SELF_APPROVE = pytest.mark.parametrize("settings", [{"fragment_self_approve": True}], indirect=True)


@pytest.fixture
def editor(app) -> str:
    """The API token of archivist 'arch', who edits."""
    return issue_account_token(app, "arch", "archivist")


@pytest.fixture
def second(app) -> str:
    """The API token of archivist 'second', who checks other people's edits."""
    return issue_account_token(app, "second", "archivist")


def edit(client, token: str, fragment_id: str, text: str = PLANTED):
    """PATCH a fragment's text as the owner of ``token``; the response must be a 200."""
    response = client.patch(
        f"/api/fragments/{fragment_id}", json={"text": text}, headers=bearer(token)
    )
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def approve(client, token: str, fragment_id: str):
    """POST the single approve API as the owner of ``token``."""
    return client.post(f"/api/fragments/{fragment_id}/approve", headers=bearer(token))


@pytest.fixture
def archivist_client(client, login, editor):
    """A client logged in as 'arch' (who also holds ``editor``); returns (client, csrf token)."""
    return client, login(client, "arch")


@pytest.fixture
def edited(client, pending, editor, second) -> str:
    """A fragment 'second' approved and 'arch' then edited: the id."""
    assert approve(client, second, pending[0]).status_code == 200
    edit(client, editor, pending[0])
    return pending[0]


# --- The attack from the issue, end to end --------------------------------------------------------


def test_a_token_edit_of_an_approved_fragment_is_served_only_after_a_second_archivist_approves(
    app, client, pending, editor, second
):
    original = stored(app)[pending[0]].text
    assert approve(client, second, pending[0]).status_code == 200
    log_decisions(app)
    assert client.get("/api/fragments/random").get_json()["text"] == original

    body = edit(client, editor, pending[0])
    assert body["status"] == PENDING and body["reviewed_by"] is None and body["reviewed_at"] is None
    assert body["edited"] is True and body["edited_by"] == "arch" and body["edited_at"]
    # The only approved fragment went back to review: nothing is served, least of all the plant.
    assert client.get("/api/fragments/random").status_code == 404

    refused = approve(client, editor, pending[0])
    assert refused.status_code == 403 and "another archivist" in refused.get_json()["error"]
    assert client.get("/api/fragments/random").status_code == 404

    assert approve(client, second, pending[0]).status_code == 200
    served = served_after_publish(app, client)
    assert served["text"] == PLANTED and served["edited"] is True and served["edited_at"]
    assert served["original_text"] == original
    # The reader link highlights what the archived page really says, not the edited wording.
    assert served["link"].endswith(text_directive(original))
    assert text_directive(PLANTED) not in served["link"]


def test_any_text_edit_sends_a_decided_fragment_back_to_pending(
    app, client, pending, editor, second
):
    client.post(f"/api/fragments/{pending[1]}/reject", headers=bearer(second))
    body = edit(client, editor, pending[1], "A rejected fragment, reworded.")
    assert body["status"] == PENDING and body["reviewed_by"] is None
    unchanged = edit(client, editor, pending[2], stored(app)[pending[2]].text)
    assert unchanged["status"] == PENDING and unchanged["edited"] is False


def test_an_unedited_fragment_is_public_unmarked_with_a_link_to_its_text(
    app, client, pending, second
):
    approve(client, second, pending[0])
    log_decisions(app)
    served = client.get("/api/fragments/random").get_json()
    assert served["edited"] is False and served["edited_at"] is None
    assert served["original_text"] is None
    assert served["link"].endswith(text_directive(served["text"]))


def test_flask_embed_random_marks_an_edit_too(app, client, cli, edited, second):
    approve(client, second, edited)
    log_decisions(app)
    output = cli.invoke(args=["embed", "random"]).output
    assert '"edited": true' in output and '"original_text": "' in output


# --- Self-approval, on every path -----------------------------------------------------------------


def test_approving_ones_own_edit_is_refused_by_default(app, client, edited, editor):
    response = approve(client, editor, edited)
    assert response.status_code == 403
    assert response.get_json()["error"] == (
        f"you edited fragment {edited}; another archivist must approve your edit"
    )
    assert stored(app)[edited].status == PENDING


@SELF_APPROVE
def test_the_setting_lets_a_one_person_archive_approve_its_own_edits(app, client, edited, editor):
    response = approve(client, editor, edited)
    assert response.status_code == 200 and response.get_json()["reviewed_by"] == "arch"
    log_decisions(app)
    assert client.get("/api/fragments/random").get_json()["text"] == PLANTED


def test_an_edit_committed_after_the_check_is_still_not_self_approved(
    app, client, edited, editor, monkeypatch
):
    # The check and the UPDATE are two statements; a concurrent PATCH can commit between them.
    # Make the check miss the edit, as it would then, to prove the UPDATE refuses on its own.
    monkeypatch.setattr(curation, "_own_edits", lambda *args: [])
    response = approve(client, editor, edited)
    assert response.status_code == 409 and "changed meanwhile" in response.get_json()["error"]
    assert stored(app)[edited].status == PENDING


def test_the_api_approves_only_the_text_version_the_reviewer_read(
    app, client, pending, editor, second
):
    read = edit(client, editor, pending[0], "A harmless typo fix.")["text_version"]
    edit(client, editor, pending[0])
    url = f"/api/fragments/{pending[0]}/approve"
    stale = client.post(url, json={"seen": read}, headers=bearer(second))
    assert stale.status_code == 409 and "changed since you saw it" in stale.get_json()["error"]
    current = client.get(f"/api/fragments/{pending[0]}", headers=bearer(second)).get_json()
    approved = client.post(url, json={"seen": current["text_version"]}, headers=bearer(second))
    assert approved.status_code == 200 and approved.get_json()["text"] == PLANTED


def test_rejecting_ones_own_edit_is_allowed(app, client, edited, editor):
    response = client.post(f"/api/fragments/{edited}/reject", headers=bearer(editor))
    assert response.status_code == 200 and stored(app)[edited].status == REJECTED


def test_bulk_ids_with_ones_own_edit_are_refused_and_change_nothing(
    app, client, pending, edited, editor
):
    body = {"action": "approve", "ids": pending[:3]}
    response = client.post("/api/fragments/bulk", json=body, headers=bearer(editor))
    assert response.status_code == 403 and edited in response.get_json()["error"]
    assert [stored(app)[i].status for i in pending[:3]] == [PENDING, PENDING, PENDING]


def test_bulk_collection_skips_ones_own_edits_and_lists_them(app, client, pending, edited, editor):
    body = {"action": "approve", "collection": "vietnam"}
    response = client.post("/api/fragments/bulk", json=body, headers=bearer(editor))
    body = response.get_json()
    assert response.status_code == 200
    assert body == {"status": APPROVED, "changed": len(pending) - 1, "skipped": [edited]}
    now = stored(app)
    assert now[edited].status == PENDING
    assert {now[i].status for i in pending if i != edited} == {APPROVED}


@SELF_APPROVE
def test_bulk_with_the_setting_approves_ones_own_edits(app, client, pending, edited, editor):
    response = client.post(
        "/api/fragments/bulk", json={"action": "approve", "ids": [edited]}, headers=bearer(editor)
    )
    assert response.get_json() == {"status": APPROVED, "changed": 1, "skipped": []}


# --- The review page ------------------------------------------------------------------------------


def test_review_page_marks_an_edit_shows_the_original_and_hides_approve_from_its_editor(
    app, archivist_client, edited
):
    client, _ = archivist_client
    original = stored(app)[edited].original_text
    html = client.get("/manage/fragments").get_data(as_text=True)
    row = html[html.index(f'id="fragment-{edited}"'):].split("</article>")[0]
    assert "Edited by arch" in row and "another archivist must approve it" in row
    assert original.split()[0] in row and "Save and approve" not in row
    assert f"/manage/fragments/{edited}/approve" not in row


def test_review_page_refuses_approving_ones_own_edit(app, archivist_client, edited):
    client, csrf = archivist_client
    response = client.post(f"/manage/fragments/{edited}/approve", data={"csrf_token": csrf})
    assert response.status_code == 403
    assert "another archivist must approve your edit" in response.get_data(as_text=True)
    assert stored(app)[edited].status == PENDING


def test_review_page_save_and_approve_saves_but_leaves_ones_own_edit_pending(
    app, archivist_client, pending
):
    client, csrf = archivist_client
    response = client.post(
        f"/manage/fragments/{pending[0]}/edit",
        data={"csrf_token": csrf, "text": PLANTED, "then": "approve", "next": "/manage/fragments"},
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 403 and "another archivist must approve your edit" in html
    assert "saved; it waits for review again" in html
    now = stored(app)[pending[0]]
    assert now.text == PLANTED and now.status == PENDING


@SELF_APPROVE
def test_review_page_save_and_approve_works_with_the_setting(app, archivist_client, pending):
    client, csrf = archivist_client
    assert "Save and approve" in client.get("/manage/fragments").get_data(as_text=True)
    response = client.post(
        f"/manage/fragments/{pending[0]}/edit",
        data={"csrf_token": csrf, "text": PLANTED, "then": "approve"},
    )
    assert response.status_code == 303
    assert stored(app)[pending[0]].status == APPROVED


def test_review_page_bulk_approves_the_rest_and_says_which_own_edits_wait(
    app, archivist_client, pending, edited
):
    client, csrf = archivist_client
    response = client.post(
        "/manage/fragments/bulk",
        data={"csrf_token": csrf, "action": "approve", "ids": pending[:3]},
        follow_redirects=True,
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "2 fragments approved" in html
    assert f"you edited yourself ({edited[:8]}…)" in html
    # The rule working as meant: information, not an error.
    assert '<p class="notice info" role="status">Not approved: 1 fragment(s) you edited yourself' in html
    assert 'class="notice error"' not in html
    assert [stored(app)[i].status for i in pending[:3]] == [PENDING, APPROVED, APPROVED]


def shown_versions(html: str) -> dict[str, str]:
    """Fragment id → the text version the page's approve form for it carries."""
    forms = re.findall(r'/manage/fragments/(\w+)/approve">.*?name="seen" value="(\w+)"', html, re.S)
    return dict(forms)


@pytest.fixture
def second_page(app, login, second):
    """A browser logged in as 'second' (who holds ``second``); returns (client, csrf token)."""
    browser = app.test_client()
    return browser, login(browser, "second")


def test_a_page_left_open_does_not_approve_a_text_changed_since(
    app, client, second_page, pending, editor
):
    edit(client, editor, pending[0], "A harmless typo fix.")
    browser, csrf = second_page
    seen = shown_versions(browser.get("/manage/fragments").get_data(as_text=True))[pending[0]]
    edit(client, editor, pending[0])  # the planted text, after 'second' loaded the page
    stale = browser.post(
        f"/manage/fragments/{pending[0]}/approve", data={"csrf_token": csrf, "seen": seen}
    )
    assert stale.status_code == 409 and "changed since you saw it" in stale.get_data(as_text=True)
    assert stored(app)[pending[0]].status == PENDING
    fresh = shown_versions(browser.get("/manage/fragments").get_data(as_text=True))[pending[0]]
    approved = browser.post(
        f"/manage/fragments/{pending[0]}/approve", data={"csrf_token": csrf, "seen": fresh}
    )
    assert approved.status_code == 303 and stored(app)[pending[0]].text == PLANTED
    assert stored(app)[pending[0]].status == APPROVED


def test_the_bulk_form_of_a_page_left_open_decides_nothing_once_a_text_changed(
    app, client, second_page, pending, editor
):
    browser, csrf = second_page
    versions = shown_versions(browser.get("/manage/fragments").get_data(as_text=True))
    assert list(versions) == pending
    edit(client, editor, pending[2])
    response = browser.post(
        "/manage/fragments/bulk",
        data={"csrf_token": csrf, "action": "approve", "ids": pending, "seen": list(versions.values())},
    )
    assert response.status_code == 409 and pending[2] in response.get_data(as_text=True)
    assert {f.status for f in stored(app).values()} == {PENDING}


@SELF_APPROVE
def test_a_corrected_save_after_a_refused_edit_lands_back_on_the_listing(
    app, archivist_client, pending
):
    client, csrf = archivist_client
    listing = "/manage/fragments?status=pending&collection=vietnam"
    refused = client.post(
        f"/manage/fragments/{pending[0]}/edit",
        data={"csrf_token": csrf, "text": " ", "next": listing},
    )
    html = refused.get_data(as_text=True)
    assert refused.status_code == 400 and "text must not be empty" in html
    nexts = set(re.findall(r'name="next" value="([^"]*)"', html))
    assert nexts == {listing.replace("&", "&amp;")}
    corrected = client.post(
        f"/manage/fragments/{pending[0]}/edit",
        data={"csrf_token": csrf, "text": "Corrected.", "then": "approve", "next": listing},
        follow_redirects=True,
    )
    assert corrected.status_code == 200  # the listing, not a 405 from the edit address
    assert corrected.request.path == "/manage/fragments" and f'id="fragment-{pending[1]}"' in (
        corrected.get_data(as_text=True)
    )
    assert stored(app)[pending[0]].text == "Corrected."


# --- flask fragments approve ----------------------------------------------------------------------


def one_error_line(result) -> str:
    """The single 'Error: …' line of a failed command (and it failed)."""
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    return lines[0]


def test_cli_refuses_an_editor_approving_their_own_edit_by_id(app, cli, edited):
    line = one_error_line(cli.invoke(args=["fragments", "approve", "--as", "arch", edited]))
    assert "another archivist must approve your edit" in line
    assert stored(app)[edited].status == PENDING


def test_cli_without_a_name_approves_no_edit(app, cli, edited):
    line = one_error_line(cli.invoke(args=["fragments", "approve", edited]))
    assert "only a named archivist may approve an edit" in line
    assert stored(app)[edited].status == PENDING


def test_cli_approves_anothers_edit_as_a_named_archivist(app, cli, edited):
    result = cli.invoke(args=["fragments", "approve", "--as", "second", edited])
    assert result.exit_code == 0, result.output
    assert stored(app)[edited].status == APPROVED and stored(app)[edited].reviewed_by == "second"


def test_cli_all_skips_and_reports_own_edits(app, cli, pending, edited):
    result = cli.invoke(args=["fragments", "approve", "--all", "--as", "arch"])
    assert result.exit_code == 0, result.output
    assert f"{len(pending) - 1} fragments approved" in result.output
    assert f"skipped 1 edited by arch: {edited}" in result.output
    anonymous = cli.invoke(args=["fragments", "approve", "--all"])
    assert f"skipped 1 edited (approve edits with --as NAME): {edited}" in anonymous.output
    assert stored(app)[edited].status == PENDING


@SELF_APPROVE
def test_cli_with_the_setting_approves_own_edits(app, cli, edited):
    assert cli.invoke(args=["fragments", "approve", "--as", "arch", edited]).exit_code == 0
    assert stored(app)[edited].status == APPROVED


@pytest.mark.parametrize(
    "name, message", [("nobody", "no user named 'nobody'"), ("boss", "boss is not")]
)
def test_cli_as_must_name_an_active_archivist(app, cli, pending, name, message):
    create_account(app, "boss", "admin")
    with app.extensions["samizdat"].Session() as session:
        set_active(session, "boss", False)
        session.commit()
    result = cli.invoke(args=["fragments", "approve", "--as", name, pending[0]])
    assert message in one_error_line(result)
