"""Pausing, resuming and deleting sources in bulk, and importing a list paused.

One function (mirror.sources.bulk_change) does the work; the CLI, the API and the page each
prove here that they reach it, validate what they are sent, and ask before deleting.
"""

from __future__ import annotations

import io
import re

import pytest
from sqlalchemy import select

from mirror.models import Source
from mirror.sources import ConfirmationNeeded, bulk_change, due_sources, source_filter
from samizdat.errors import SamizdatError
from tests.conftest import create_account, make_settings

VN_LIST = (
    "url,category_code,category_description,date_added,source,notes\n"
    + "".join(f"https://news{n}.example.org/,NEWS,News Media,2017-01-01,,\n" for n in range(12))
).encode()


@pytest.fixture
def settings(tmp_path, database_url):
    """SQLite or PostgreSQL (parametrised), local store only: nothing here captures."""
    return make_settings(tmp_path, database_url)


def store(app, *rows: tuple[str, str | None, str | None]) -> list[int]:
    """Store live sources (url, country, collection) directly; return their ids."""
    with app.extensions["samizdat"].Session() as session:
        sources = [
            Source(url=url, country=country, collection=collection, interval_minutes=60)
            for url, country, collection in rows
        ]
        session.add_all(sources)
        session.commit()
        return [s.id for s in sources]


def three_sources(app) -> list[int]:
    """Two Vietnamese sources of the 'vietnam' collection and one Belarusian one."""
    return store(
        app,
        ("https://a.example.org/", "VN", "vietnam"),
        ("https://b.example.org/", "VN", "vietnam"),
        ("https://c.example.org/", "BY", None),
    )


def states(app) -> dict[str, str]:
    """url → active / paused / deleted, for every source."""
    with app.extensions["samizdat"].Session() as session:
        return {
            s.url: "deleted" if s.deleted_at else "active" if s.active else "paused"
            for s in session.scalars(select(Source))
        }


def due_urls(app) -> list[str]:
    with app.extensions["samizdat"].Session() as session:
        return [s.url for s in due_sources(session)]


# --- The one implementation ---


def test_bulk_change_pauses_resumes_and_deletes_what_the_filter_selects(app):
    a, b, c = three_sources(app)
    with app.extensions["samizdat"].Session() as session:
        paused = bulk_change(session, "pause", source_filter(collection="vietnam"))
        again = bulk_change(session, "pause", source_filter(country="vn"))
        session.commit()
    assert (paused.matched, paused.changed) == ([a, b], 2)
    assert (again.matched, again.changed) == ([a, b], 0)  # already paused: nothing changes
    assert due_urls(app) == ["https://c.example.org/"]

    with app.extensions["samizdat"].Session() as session:
        resumed = bulk_change(session, "resume", source_filter([b]))
        deleted = bulk_change(session, "delete", source_filter(country="BY"), confirmed=True)
        session.commit()
    assert (resumed.changed, deleted.matched) == (1, [c])
    assert states(app) == {
        "https://a.example.org/": "paused",
        "https://b.example.org/": "active",
        "https://c.example.org/": "deleted",
    }


def test_bulk_delete_without_confirmation_changes_nothing(app):
    a, b, _ = three_sources(app)
    with app.extensions["samizdat"].Session() as session:
        with pytest.raises(ConfirmationNeeded) as raised:
            bulk_change(session, "delete", source_filter(collection="vietnam"))
        session.commit()
    assert raised.value.matched == [a, b]
    assert "deleted" not in states(app).values()


@pytest.mark.parametrize(
    "action, criteria, message",
    [
        ("pause", {}, "choose sources"),
        ("pause", {"ids": [1, 99]}, "no source with id 99"),
        ("archive", {"ids": [1]}, "action must be one of pause, resume, delete"),
    ],
)
def test_bulk_change_refuses_empty_unknown_or_wrong_requests_whole(app, action, criteria, message):
    three_sources(app)
    with app.extensions["samizdat"].Session() as session:
        with pytest.raises(SamizdatError, match=message):
            bulk_change(session, action, source_filter(**criteria))
        session.commit()
    assert set(states(app).values()) == {"active"}


@pytest.mark.parametrize(
    "criteria, message",
    [
        ({"ids": ["x"]}, "whole numbers"),
        ({"ids": [True]}, "whole numbers"),
        ({"ids": [0]}, "positive"),
        # Past a PostgreSQL INTEGER (a DataError there, an overflow on SQLite past 2**63).
        ({"ids": [2**31]}, "at most 2147483647"),
        ({"ids": [10**30]}, "at most 2147483647"),
        ({"ids": ["9" * 5000]}, "at most 2147483647"),
        ({"ids": [float("inf")]}, "whole numbers"),
        ({"ids": [1.5]}, "whole numbers"),
        ({"ids": list(range(1, 1002))}, "at most 1000 source ids"),
        ({"country": "Vietnam"}, "two-letter"),
        ({"state": "sleeping"}, "state must be one of active, paused"),
        ({"q": "x" * 201}, "at most 200"),
    ],
)
def test_source_filter_validates_what_it_is_given(criteria, message):
    with pytest.raises(SamizdatError, match=message):
        source_filter(**criteria)


# --- CLI ---


def test_cli_pauses_and_resumes_by_collection_country_or_ids(app, cli):
    a, b, _ = three_sources(app)
    result = cli.invoke(args=["sources", "pause", "--collection", "vietnam"])
    assert result.exit_code == 0, result.output
    assert "paused 2 of 2 matching sources" in result.output
    assert due_urls(app) == ["https://c.example.org/"]

    result = cli.invoke(args=["sources", "resume", str(a)])
    assert result.exit_code == 0 and "resumed 1 of 1" in result.output
    result = cli.invoke(args=["sources", "pause", "--country", "by"])
    assert result.exit_code == 0 and "paused 1 of 1" in result.output
    assert due_urls(app) == ["https://a.example.org/"]


def test_cli_delete_asks_first_and_deletes_nothing_when_not_told_yes(app, cli):
    three_sources(app)
    refused = cli.invoke(args=["sources", "delete", "--country", "VN"], input="n\n")
    assert refused.exit_code == 1 and "Delete 2 source(s)?" in refused.output
    no_terminal = cli.invoke(args=["sources", "delete", "--country", "VN"], input="")
    assert no_terminal.exit_code == 1
    assert "deleted" not in states(app).values()

    agreed = cli.invoke(args=["sources", "delete", "--country", "VN"], input="y\n")
    assert agreed.exit_code == 0 and "deleted 2 of 2 matching sources" in agreed.output
    yes = cli.invoke(args=["sources", "delete", "--yes", "--country", "BY"])
    assert yes.exit_code == 0 and "deleted 1 of 1" in yes.output
    assert set(states(app).values()) == {"deleted"}


@pytest.mark.parametrize(
    "args, message",
    [
        (["sources", "pause"], "Error: choose sources"),
        (["sources", "resume", "7"], "Error: no source with id 7"),
        (["sources", "delete", "--yes", "--country", "Vietnam"], "Error: country must be"),
    ],
)
def test_cli_bulk_mistakes_are_one_line_and_exit_1(app, cli, args, message):
    three_sources(app)
    result = cli.invoke(args=args)
    assert result.exit_code == 1
    assert result.output.strip() == result.output.strip().splitlines()[0]  # one line
    assert result.output.startswith(message)
    assert set(states(app).values()) == {"active"}


def test_cli_import_paused_adds_nothing_due_until_resumed(app, cli, tmp_path):
    listing = tmp_path / "vn.csv"
    listing.write_bytes(VN_LIST)
    result = cli.invoke(args=["sources", "import", str(listing), "--paused", "--collection", "vn"])
    assert result.exit_code == 0, result.output
    assert "12 added, 0 already present, 0 invalid (added paused)" in result.output
    assert due_urls(app) == []  # the scheduler starts none of the 12 fetches

    cli.invoke(args=["sources", "resume", "--collection", "vn"])
    assert len(due_urls(app)) == 12


# --- API ---


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_api_bulk_pauses_and_deletes_only_when_confirmed(app, client, archivist_token):
    a, b, c = three_sources(app)
    token = bearer(archivist_token)
    paused = client.post("/api/sources/bulk", json={"action": "pause", "country": "VN"},
                         headers=token)
    assert paused.status_code == 200
    assert paused.get_json() == {"action": "pause", "matched": [a, b], "changed": 2}

    asked = client.post("/api/sources/bulk", json={"action": "delete", "ids": [a, c]},
                        headers=token)
    assert asked.status_code == 400
    assert asked.get_json()["matched"] == 2 and '"confirm": true' in asked.get_json()["error"]
    assert "deleted" not in states(app).values()

    deleted = client.post(
        "/api/sources/bulk",
        json={"action": "delete", "ids": [a, c], "confirm": True},
        headers=token,
    )
    assert deleted.status_code == 200 and deleted.get_json()["changed"] == 2
    assert client.get("/api/sources").get_json()["total"] == 1


@pytest.mark.parametrize(
    "body, message",
    [
        ({"action": "pause"}, "choose sources"),
        ({"action": "pause", "ids": "1"}, "ids must be a list"),
        ({"action": "pause", "ids": [1, 42]}, "no source with id 42"),
        ({"action": "wipe", "ids": [1]}, "action must be one of"),
        ({"action": 3, "ids": [1]}, "action must be a string"),
        ({"action": "pause", "everything": True}, "unknown field everything"),
        ({"action": "delete", "ids": [1], "confirm": "yes"}, "confirm must be true or false"),
    ],
)
def test_api_bulk_mistakes_are_400_with_one_message(app, client, archivist_token, body, message):
    three_sources(app)
    response = client.post("/api/sources/bulk", json=body, headers=bearer(archivist_token))
    assert response.status_code == 400 and message in response.get_json()["error"]
    assert set(states(app).values()) == {"active"}


def test_api_bulk_needs_an_archivist_and_csrf_with_a_session(app, client, login):
    three_sources(app)
    body = {"action": "pause", "ids": [1]}
    assert client.post("/api/sources/bulk", json=body).status_code == 401
    create_account(app, "ana")
    csrf = login(client, "ana")
    assert client.post("/api/sources/bulk", json=body).status_code == 403
    response = client.post("/api/sources/bulk", json=body, headers={"X-CSRF-Token": csrf})
    assert response.status_code == 200
    assert states(app)["https://a.example.org/"] == "paused"


def test_api_import_paused_and_a_garbled_flag(app, client, archivist_token):
    def post(**fields):
        data = {"file": (io.BytesIO(VN_LIST), "vn.csv"), **fields}
        return client.post(
            "/api/sources/import", data=data, headers=bearer(archivist_token),
            content_type="multipart/form-data",
        )

    garbled = post(paused="maybe")
    assert garbled.status_code == 400
    assert "paused must be true or false" in garbled.get_json()["error"]
    response = post(paused="true")
    assert response.status_code == 200
    assert (response.get_json()["added"], response.get_json()["paused"]) == (12, True)
    assert set(states(app).values()) == {"paused"} and due_urls(app) == []


# --- The page ---


@pytest.fixture
def ana(app, client, login) -> str:
    """The archivist 'ana', logged in on ``client``; returns the session's CSRF token."""
    create_account(app, "ana")
    return login(client, "ana")


def test_page_pauses_ticked_rows_and_returns_to_the_same_listing(app, client, ana):
    a, b, _ = three_sources(app)
    listing = "/manage/sources?country=VN"
    html = client.get(listing).get_data(as_text=True)
    assert f'name="ids" value="{a}" form="bulk-ticked"' in html

    response = client.post(
        "/manage/sources/bulk",
        data={"csrf_token": ana, "action": "pause", "ids": [a, b], "next": listing},
    )
    assert response.status_code == 303 and response.headers["Location"] == listing
    assert "Paused 2 of 2 sources." in client.get(listing).get_data(as_text=True)
    assert due_urls(app) == ["https://c.example.org/"]


def test_page_deletes_every_matching_source_only_after_a_confirmation_page(app, client, ana):
    store(app, ("https://x.example.org/<b>bold</b>", "VN", "vietnam"))
    a, b, c = three_sources(app)[0:3]
    listing = "/manage/sources?collection=vietnam"
    html = client.get(listing).get_data(as_text=True)
    assert 'name="collection" value="vietnam"' in html and "All 3 matching" in html

    asked = client.post(
        "/manage/sources/bulk",
        data={"csrf_token": ana, "action": "delete", "collection": "vietnam", "next": listing},
    )
    page = asked.get_data(as_text=True)
    assert asked.status_code == 200 and "Delete 3 sources?" in page
    assert "&lt;b&gt;bold&lt;/b&gt;" in page and "<b>bold" not in page
    assert "deleted" not in states(app).values()
    # The confirmation deletes exactly the sources it listed.
    ids = re.findall(r'name="ids" value="(\d+)"', page)
    assert ids == ["1", str(a), str(b)] and 'name="confirm" value="yes"' in page

    done = client.post(
        "/manage/sources/bulk",
        data={"csrf_token": ana, "action": "delete", "ids": ids, "confirm": "yes", "next": listing},
    )
    assert done.status_code == 303 and done.headers["Location"] == listing
    assert states(app)["https://c.example.org/"] == "active"
    assert list(states(app).values()).count("deleted") == 3


@pytest.mark.parametrize(
    "data, message",
    [
        ({"action": "pause"}, "choose sources"),
        ({"action": "pause", "ids": ["1", "abc"]}, "whole numbers"),
        ({"action": "pause", "ids": ["77"]}, "no source with id 77"),
        ({"action": "", "ids": ["1"]}, "action must be one of"),
    ],
)
def test_page_bulk_mistakes_show_one_error(app, client, ana, data, message):
    three_sources(app)
    response = client.post("/manage/sources/bulk", data={"csrf_token": ana, **data})
    assert response.status_code == 400 and message in response.get_data(as_text=True)
    assert set(states(app).values()) == {"active"}


def test_page_bulk_needs_csrf(app, client, ana):
    three_sources(app)
    response = client.post("/manage/sources/bulk", data={"action": "pause", "ids": ["1"]})
    assert response.status_code == 403
    assert set(states(app).values()) == {"active"}


def test_page_import_can_add_paused(app, client, ana):
    data = {"file": (io.BytesIO(VN_LIST), "vn.csv"), "paused": "1", "csrf_token": ana}
    response = client.post(
        "/manage/sources/import", data=data, content_type="multipart/form-data"
    )
    assert response.status_code == 200
    assert "12 added (paused)" in response.get_data(as_text=True)
    assert set(states(app).values()) == {"paused"} and due_urls(app) == []
