"""The API's OpenAPI description: a valid OpenAPI 3.1 document that describes every machine route
of the app (the routes whose errors are JSON: /api/…, /healthz, /oembed, the packs) and nothing
else, served publicly at /api/openapi.json. tests/test_openapi_live.py holds the live server to it.
"""

from __future__ import annotations

import copy
import re

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from openapi_spec_validator.validation import OpenAPIV31SpecValidator

from samizdat.errorpages import is_machine_path
from samizdat.openapi import PARTS, DescriptionError, assemble, description, load_part
from samizdat.web import MAX_DB_INT
from tests.conftest import make_settings

METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
# A werkzeug rule's argument: <name>, <converter:name> or <converter(args):name>.
_ARGUMENT = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")


@pytest.fixture
def settings(tmp_path, sqlite_url):
    """The URL map and the served document are the same on either database: SQLite will do."""
    return make_settings(tmp_path, sqlite_url)


def machine_routes(app) -> dict[tuple[str, str], dict[str, str]]:
    """Every (method, OpenAPI path) the app answers on a machine path, with each path argument's
    converter (``default`` when it has none)."""
    routes = {}
    for rule in app.url_map.iter_rules():
        if not is_machine_path(rule.rule):
            continue
        path = _ARGUMENT.sub(r"{\2}", rule.rule)
        converters = {m.group(2): m.group(1) or "default" for m in _ARGUMENT.finditer(rule.rule)}
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            routes[(method.lower(), path)] = converters
    return routes


def described_operations(document: dict) -> dict[tuple[str, str], dict]:
    """Every (method, path) the document describes, with its operation."""
    return {
        (method, path): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    }


def drift(app, document: dict) -> tuple[set, set]:
    """Routes the document leaves out, and operations it describes that the app does not have."""
    routes, described = set(machine_routes(app)), set(described_operations(document))
    return routes - described, described - routes


def resolve(document: dict, node: dict) -> dict:
    """``node`` with its local ``$ref`` chain followed."""
    while "$ref" in node:
        target = document
        for key in node["$ref"].removeprefix("#/").split("/"):
            target = target[key]
        node = target
    return node


def parameters_of(document: dict, path: str, method: str) -> dict[str, dict]:
    """The path-level and operation-level parameters of an operation, by name, resolved."""
    item = document["paths"][path]
    found = [resolve(document, p) for p in item.get("parameters", []) + item[method].get("parameters", [])]
    return {p["name"]: p for p in found}


def test_the_description_is_a_valid_openapi_3_1_document():
    validate(description(), cls=OpenAPIV31SpecValidator)
    assert description()["openapi"].startswith("3.1.")


def test_every_machine_route_is_described_and_nothing_else(app):
    routes = machine_routes(app)
    # A walk that found nothing would prove nothing: some of each kind must be there.
    assert {("get", "/api/sources"), ("get", "/healthz"), ("get", "/oembed"),
            ("get", "/embed/packs/{name}"), ("get", "/api/openapi.json")} <= set(routes)
    missing, stale = drift(app, description())
    assert missing == set(), "describe these in the capability's openapi.yaml (docs/api.md)"
    assert stale == set(), "these are described but the app has no such route"


def test_the_drift_check_sees_a_new_route_and_a_removed_one(app):
    @app.get("/api/not-described")
    def not_described():
        return {}

    document = copy.deepcopy(description())
    document["paths"]["/api/gone"] = {"get": {"responses": {"200": {"description": "gone"}}}}
    missing, stale = drift(app, document)
    assert missing == {("get", "/api/not-described")}
    assert stale == {("get", "/api/gone")}


def test_path_arguments_are_described_with_their_real_bounds(app):
    document = description()
    for (method, path), converters in machine_routes(app).items():
        parameters = parameters_of(document, path, method)
        assert set(parameters) >= set(converters), (method, path)
        for name, converter in converters.items():
            schema = resolve(document, parameters[name]["schema"])
            if converter == "int":
                # DatabaseIdConverter: 404 past MAX_DB_INT, so the description stops there too.
                assert (schema["type"], schema["minimum"], schema["maximum"]) == ("integer", 1, MAX_DB_INT)
            else:
                assert schema["type"] == "string", (method, path, name)


def test_operations_are_named_tagged_and_list_their_auth_errors():
    document = description()
    declared_tags = {tag["name"] for tag in document["tags"]}
    operations = described_operations(document)
    ids = [operation["operationId"] for operation in operations.values()]
    assert len(ids) == len(set(ids))
    for (method, path), operation in operations.items():
        assert operation["summary"] and set(operation["tags"]) <= declared_tags, (method, path)
        secured = operation.get("security", document.get("security", []))
        if any(requirement for requirement in secured):
            # require_role answers these before the view runs, so every secured operation can.
            assert {"401", "403"} <= set(operation["responses"]), (method, path)
        if "requestBody" in operation:
            assert {"411", "413"} <= set(operation["responses"]), (method, path)


def test_error_answers_have_the_described_shape(client):
    error = Draft202012Validator(description()["components"]["schemas"]["Error"])
    answers = [
        client.get("/api/sources/2147483647/captures"),  # 404
        client.get("/api/jobs"),  # 401
        client.get("/api/sources", query_string={"page": "many"}),  # 400
        client.post("/api/sources", data=b"x", headers={"Transfer-Encoding": "chunked"}),  # 411
    ]
    assert [a.status_code for a in answers] == [404, 401, 400, 411]
    for answer in answers:
        assert answer.mimetype == "application/json"
        error.validate(answer.get_json())
        assert answer.get_json()["status"] == answer.status_code


def test_the_description_is_served_public_and_cacheable(client):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert response.get_json() == description()
    assert response.headers["Cache-Control"].startswith("public")
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "Set-Cookie" not in response.headers
    again = client.get("/api/openapi.json", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304 and again.data == b""


def test_each_capability_owns_its_paths():
    owners = {}
    for package in PARTS:
        for path in load_part(package).get("paths", {}):
            owners.setdefault(path, []).append(package)
    assert {path: packages for path, packages in owners.items() if len(packages) > 1} == {}
    assert owners["/api/sources"] == ["mirror"] and owners["/oembed"] == ["embed"]


def test_assembling_refuses_an_operation_or_component_described_twice():
    head = {"openapi": "3.1.0", "info": {"title": "t", "version": "1"}}
    one = {"paths": {"/a": {"get": {}}}, "components": {"schemas": {"A": {}}}}
    with pytest.raises(DescriptionError, match="GET /a is described twice"):
        assemble([head, one, {"paths": {"/a": {"get": {}}}}])
    with pytest.raises(DescriptionError, match="components.schemas.A is defined twice"):
        assemble([head, one, {"components": {"schemas": {"A": {}}}}])
    with pytest.raises(DescriptionError, match="may not set info"):
        assemble([head, {"info": {}}])
    # Two parts may describe different methods of one path.
    merged = assemble([head, one, {"paths": {"/a": {"post": {}}}}])
    assert set(merged["paths"]["/a"]) == {"get", "post"}
