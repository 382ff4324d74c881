"""The OpenAPI 3.1 description of the JSON API, served at ``GET /api/openapi.json``.

Each capability describes its own endpoints in an ``openapi.yaml`` beside its blueprint; this
module only assembles them. ``samizdat/openapi.yaml`` holds the document's head and what every
part shares (the error shape, security schemes, paging parameters, common error responses).
tests/test_openapi.py holds the document to the app's URL map, so neither drifts (docs/api.md).
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from importlib.resources import files

import yaml
from flask import Blueprint, Response, request

# The parts, in the order their tags are listed: the core first (it carries the document's head).
# A capability with JSON endpoints adds its package here and an openapi.yaml beside its routes.
PARTS = ("samizdat", "ops", "accounts", "mirror", "fragments", "embed")
_COMPONENT_SECTIONS = ("schemas", "parameters", "responses", "requestBodies", "securitySchemes")
# Public and the same for every reader; an hour is short enough for a deploy to show.
CACHE_CONTROL = "public, max-age=3600"

bp = Blueprint("openapi", __name__)


class DescriptionError(ValueError):
    """Two parts describe the same operation or component, or a part has an unknown section."""


def load_part(package: str) -> dict:
    """The parsed ``openapi.yaml`` of ``package``."""
    text = files(package).joinpath("openapi.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text) or {}


def assemble(parts: list[dict]) -> dict:
    """One OpenAPI document from ``parts``: the first gives the head; paths, tags and components
    are merged, and a path method or component named twice is a DescriptionError."""
    document = {key: value for key, value in parts[0].items()
                if key not in ("paths", "tags", "components")}
    document["tags"], document["paths"] = [], {}
    components: dict[str, dict] = {section: {} for section in _COMPONENT_SECTIONS}
    for index, part in enumerate(parts):
        unknown = set(part) - {"paths", "tags", "components"}
        if index and unknown:
            # Only the core may set the head (openapi, info…); a capability adds to the rest.
            raise DescriptionError(f"a capability's part may not set {', '.join(sorted(unknown))}")
        document["tags"].extend(part.get("tags", []))
        for path, item in (part.get("paths") or {}).items():
            merged = document["paths"].setdefault(path, {})
            for method, operation in item.items():
                if method in merged:
                    raise DescriptionError(f"{method.upper()} {path} is described twice")
                merged[method] = operation
        for section, entries in (part.get("components") or {}).items():
            if section not in components:
                raise DescriptionError(f"unknown components section {section!r}")
            for name, entry in entries.items():
                if name in components[section]:
                    raise DescriptionError(f"components.{section}.{name} is defined twice")
                components[section][name] = entry
    document["components"] = {section: entries for section, entries in components.items() if entries}
    return document


@cache
def description() -> dict:
    """The whole API's description (read once per process: the files do not change at run time).

    Shared by every caller: copy it before changing anything in it.
    """
    return assemble([load_part(package) for package in PARTS])


@cache
def _served() -> tuple[bytes, str]:
    """The description as served: its JSON bytes and their ETag."""
    body = json.dumps(description(), ensure_ascii=False, separators=(",", ":")).encode()
    return body, hashlib.sha256(body).hexdigest()[:32]


@bp.get("/api/openapi.json")
def openapi_json():
    """This API's OpenAPI 3.1 description: public, cacheable, no cookie."""
    body, etag = _served()
    response = Response(body, mimetype="application/json")
    response.set_etag(etag)
    response.headers["Cache-Control"] = CACHE_CONTROL
    # API explorers hosted elsewhere may read it, like the other public machine endpoints.
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response.make_conditional(request)
