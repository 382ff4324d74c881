"""``POST /witness/add-checkpoint``: the witness's submission URL (prefix ``<public URL>/witness``).

Registered only when this server witnesses logs (``SAMIZDAT_WITNESSED_LOGS``); otherwise the path
is a 404 like any other.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request

from witness.service import MAX_BODY_BYTES, TEXT, Witness

bp = Blueprint("witness", __name__)
WITNESS_KEY = "samizdat.witness"


@bp.post("/witness/add-checkpoint")
def add_checkpoint():
    """Check a checkpoint's consistency with the last one cosigned and cosign it (tlog-witness)."""
    length = request.content_length
    if length is not None and length > MAX_BODY_BYTES:  # refused unread
        return Response(f"the request body is larger than {MAX_BODY_BYTES} bytes\n", 413,
                        content_type=TEXT)
    body = request.stream.read(MAX_BODY_BYTES + 1)  # at most the limit + 1 byte, never whole
    if len(body) > MAX_BODY_BYTES:
        return Response(f"the request body is larger than {MAX_BODY_BYTES} bytes\n", 413,
                        content_type=TEXT)
    witness: Witness = current_app.extensions[WITNESS_KEY]
    reply = witness.add_checkpoint(body)
    response = Response(reply.body, reply.status, content_type=reply.content_type)
    response.headers["Cache-Control"] = "no-store"
    return response
