"""Hostile-input tests need only a database: the app runs on the local store, without S3 or IPFS."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from tests.conftest import create_account, make_settings


@pytest.fixture
def settings(tmp_path, database_url):
    """SQLite or PostgreSQL (parametrised), local store only."""
    return make_settings(tmp_path, database_url)


@pytest.fixture
def admin(app, client, login) -> dict:
    """The admin 'boss' logged in on ``client``: headers that pass auth and CSRF on any route."""
    create_account(app, "boss", "admin")
    return {"X-CSRF-Token": login(client, "boss")}


def count(app, model) -> int:
    """How many rows ``model``'s table holds."""
    with app.extensions["samizdat"].Session() as session:
        return session.scalar(select(func.count()).select_from(model))


_ARGUMENT = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")


def fill_rule(rule: str, int_value: str, text_value: str = "x") -> str:
    """``rule`` with every ``<int:…>`` replaced by ``int_value`` and every other argument by
    ``text_value``."""
    return _ARGUMENT.sub(lambda m: int_value if m.group(1) == "int" else text_value, rule)


def routes(app, methods_of_interest=("GET", "POST", "PUT", "PATCH", "DELETE")):
    """Every (method, rule) pair the app answers, except static files."""
    return [
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static"
        for method in sorted(rule.methods & set(methods_of_interest))
    ]
