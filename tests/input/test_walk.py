"""Every JSON write and every page with arguments, walked from app.url_map with wrong JSON types
and absurd query values: a 4xx with a reason, never a 500 (item: security tests).

test_bodies_and_text.py checks chosen bodies against chosen routes in detail; this walk makes sure
no route is forgotten, including the ones added after it was written.
"""

from __future__ import annotations

import re

from tests.embed.conftest import add_fragments
from tests.input.conftest import routes

WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
# Every field name a JSON endpoint reads, each with a value of the wrong type.
WRONG_FIELDS = {
    "url": 5, "country": [], "collection": 5, "every": [], "active": "yes", "action": 5,
    "ids": "1,2", "seen": 5, "text": ["x"], "tags": "x", "add": 5, "remove": {"a": 1},
    "name": {"a": 1}, "role": 5, "password": 5, "label": [], "auto_approve": "yes",
    "status": 5, "q": 5, "state": [], "reason": 5,
}
WRONG_BODIES = [[], "x", 5, None, True, 1e309, WRONG_FIELDS, {"ids": [10**30, -1, "x", None]}]
ABSURD_QUERY = {
    "page": "9" * 5000, "per_page": "-1", "limit": str(10**30), "offset": "-5", "from": "x",
    "to": str(10**30), "size": "x" * 1000, "maxwidth": str(10**30), "maxheight": "-1",
    "q": '"' * 500 + "OR -" * 200, "status": "\u202e", "lang": "x" * 300, "country": "💥",
    "collection": "x" * 300, "sort": "'; DROP TABLE sources; --", "format": "xml" * 100,
    "state": "x", "url": "javascript:alert(1)", "theme": "x", "words": "x", "next": "//evil",
}
_ARGUMENT = re.compile(r"<(?:(\w+)(\([^)]*\))?:)?(\w+)>")


def seeded(app, client, admin) -> dict[str, str]:
    """Real values for route arguments: a source, a fragment, a collection, a capture."""
    source = client.post("/api/sources", json={"url": "https://ok.example/"}, headers=admin)
    assert source.status_code == 201
    add_fragments(app, 1, collection="vietnam")
    fragment = client.get("/api/fragments", headers=admin).get_json()["items"][0]
    return {"int": "1", "fragment_id": fragment["id"], "name": "vietnam", "action": "approve"}


def fill(rule: str, values: dict[str, str]) -> str:
    """``rule`` with real values where the seed has them, else text."""

    def value(match: re.Match) -> str:
        converter, options, name = match.groups()
        if converter == "any":
            return options.strip("()").split(",")[0].strip()
        if converter == "int":
            return values["int"]
        return values.get(name, "x")

    return _ARGUMENT.sub(value, rule)


def test_every_json_write_answers_wrong_types_with_a_json_4xx(app, client, admin):
    values = seeded(app, client, admin)
    writes = [(m, r) for m, r in routes(app, WRITE_METHODS) if r.startswith("/api/")]
    assert len(writes) > 15
    # Deletions last: they take no body and would empty the walk's own seed.
    writes.sort(key=lambda pair: pair[0] == "DELETE")
    failures = {}
    for method, rule in writes:
        for body in WRONG_BODIES:
            response = client.open(fill(rule, values), method=method, json=body, headers=admin)
            if response.status_code >= 500 or (
                response.status_code >= 400 and not (response.get_json() or {}).get("error")
            ):
                failures[(method, rule, repr(body)[:40])] = response.status_code
    assert failures == {}


def test_every_get_route_answers_absurd_query_values_without_a_500(app, client, admin):
    values = seeded(app, client, admin)
    failures = {}
    for method, rule in routes(app, ("GET",)):
        path = fill(rule, values)
        for headers in (admin, {}):
            response = client.get(path, query_string=ABSURD_QUERY, headers=headers)
            # The oEmbed spec's own answer to a format it does not offer is 501.
            expected_5xx = rule == "/oembed" and response.status_code == 501
            if response.status_code >= 500 and not expected_5xx:
                failures[(rule, bool(headers))] = response.status_code
    assert failures == {}
