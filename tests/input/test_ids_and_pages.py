"""Absurd numbers in the path and the query string: a 404 or a clamped page, never a 500.

The routes are found by walking app.url_map, so a route added later is covered automatically.
"""

from __future__ import annotations

import pytest

from samizdat.web import MAX_DB_INT, MAX_PAGE
from tests.input.conftest import fill_rule, routes

# Past a PostgreSQL INTEGER, past a BIGINT, far past both, and past what int() will even read.
IDS_PAST_THE_DATABASE = [str(2**31), str(2**63), str(10**30), "9" * 5000]
API_LISTINGS = ["/api/sources", "/api/jobs", "/api/fragments"]
PAGE_LISTINGS = ["/manage/sources", "/manage/jobs", "/manage/fragments", "/archive"]


def int_routes(app) -> list[tuple[str, str]]:
    """Every (method, rule) with an ``<int:…>`` argument."""
    return [(method, rule) for method, rule in routes(app) if "<int:" in rule]


def test_every_int_route_is_found(app):
    found = {rule for _, rule in int_routes(app)}
    # A walk that found nothing would prove nothing: these public and private ones must be there.
    expected = {
        "/captures/<int:capture_id>/", "/api/jobs/<int:job_id>", "/api/tokens/<int:token_id>",
    }
    assert expected <= found


@pytest.mark.parametrize("absurd_id", IDS_PAST_THE_DATABASE)
def test_every_int_route_answers_404_for_an_id_past_the_database(app, client, admin, absurd_id):
    answers = {
        (method, rule): client.open(fill_rule(rule, absurd_id), method=method, headers=admin)
        for method, rule in int_routes(app)
    }
    wrong = {key: r.status_code for key, r in answers.items() if r.status_code != 404}
    assert wrong == {}
    # The API keeps JSON; the public capture page and archivist pages get a page.
    api = answers[("GET", "/api/jobs/<int:job_id>")]
    assert api.get_json()["status"] == 404
    page = answers[("GET", "/captures/<int:capture_id>/")]
    assert page.mimetype == "text/html"


def test_every_int_route_handles_the_largest_id_without_a_500(app, client, admin):
    # 2^31 - 1 still reaches the views and the database (which must not choke on it).
    statuses = {
        (method, rule): client.open(
            fill_rule(rule, str(MAX_DB_INT)), method=method, headers=admin
        ).status_code
        for method, rule in int_routes(app)
    }
    assert {key: s for key, s in statuses.items() if not 400 <= s < 500} == {}
    assert statuses[("GET", "/api/jobs/<int:job_id>")] == 404


@pytest.mark.parametrize("page", [str(10**30), "9" * 5000, "-" + str(10**30)])
def test_every_listing_answers_an_absurd_page_without_a_500(app, client, admin, page):
    statuses = {
        rule: client.get(
            rule, query_string={"page": page, "per_page": page}, headers=admin
        ).status_code
        for method, rule in routes(app, ("GET",))
        if "<" not in rule
    }
    assert {rule: s for rule, s in statuses.items() if s >= 500} == {}
    for listing in API_LISTINGS + PAGE_LISTINGS:
        assert statuses[listing] in (200, 400), listing


@pytest.mark.parametrize("listing", API_LISTINGS)
def test_api_listings_clamp_a_huge_page_to_the_last_possible_one(client, admin, listing):
    huge = {"page": 10**30, "per_page": 10**30}
    body = client.get(listing, query_string=huge, headers=admin).get_json()
    assert (body["page"], body["per_page"], body["items"]) == (MAX_PAGE, 200, [])


@pytest.mark.parametrize("listing", PAGE_LISTINGS)
def test_archive_pages_show_an_empty_page_for_a_huge_page_number(client, admin, listing):
    response = client.get(listing, query_string={"page": 10**30})
    assert response.status_code == 200 and response.mimetype == "text/html"
