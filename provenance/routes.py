"""The public log as static files: ``/log/checkpoint``, ``/log/tile/…``, ``/log/timestamp/…``
and ``/log/verifier-key``.

Exactly what any static host or mirror serves from a copy of the directory (C2SP tlog-tiles);
the app serves it too so a reader needs nothing else.
"""

from __future__ import annotations

from flask import Blueprint, abort, send_from_directory

from provenance.appender import VERIFIER_KEY_PATH
from provenance.errors import TileError
from provenance.tiles import CHECKPOINT_PATH, parse_timestamp_path
from samizdat.web import runtime

bp = Blueprint("log", __name__)

# A new checkpoint may be signed any minute: always revalidate it.
CHECKPOINT_CACHE_CONTROL = "no-cache"
# A full tile's bytes never change (the writer refuses to rewrite one).
FULL_TILE_CACHE_CONTROL = "public, max-age=31536000, immutable"
# A partial tile's path names its width, so its bytes are fixed too, but it is superseded (and
# may be removed) once the tile fills: cached briefly.
PARTIAL_TILE_CACHE_CONTROL = "public, max-age=60"
# RFC 3161's media type for a TimeStampResp, which is what a token file holds.
TIMESTAMP_MIMETYPE = "application/timestamp-reply"


def _log_file(path: str, mimetype: str, cache_control: str):
    """A published log file; 404 for anything else (dotfiles such as the writer's lock, temporary
    files, anything outside the log's directory — send_from_directory refuses those paths)."""
    if any(segment.startswith(".") for segment in path.split("/")):
        abort(404)
    response = send_from_directory(runtime().settings.log_path, path, mimetype=mimetype,
                                   max_age=0, conditional=True)
    response.headers["Cache-Control"] = cache_control
    response.headers["Access-Control-Allow-Origin"] = "*"  # verifiers and mirrors anywhere
    return response


@bp.get("/log/checkpoint")
def checkpoint():
    """The log's latest signed checkpoint (tlog-checkpoint, a signed note)."""
    return _log_file(CHECKPOINT_PATH, "text/plain; charset=utf-8", CHECKPOINT_CACHE_CONTROL)


@bp.get("/log/tile/<path:path>")
def tile(path: str):
    """A hash tile or an entry bundle, full or partial."""
    partial = ".p/" in f"/{path}"
    return _log_file(f"tile/{path}", "application/octet-stream",
                     PARTIAL_TILE_CACHE_CONTROL if partial else FULL_TILE_CACHE_CONTROL)


@bp.get("/log/verifier-key")
def verifier_key():
    """The public key that checks the checkpoint (a signed-note verifier key line)."""
    return _log_file(VERIFIER_KEY_PATH, "text/plain; charset=utf-8", CHECKPOINT_CACHE_CONTROL)


@bp.get("/log/timestamp/<path:path>")
def timestamp(path: str):
    """An RFC 3161 token of a checkpoint, ``timestamp/<size>/<k>.tsr``; never rewritten."""
    try:
        parse_timestamp_path(f"timestamp/{path}")
    except TileError:
        abort(404)
    return _log_file(f"timestamp/{path}", TIMESTAMP_MIMETYPE, FULL_TILE_CACHE_CONTROL)
