"""config/logs.py: JSON or text lines with the work's context, and nothing of the reader."""

from __future__ import annotations

import io
import json
import logging

import pytest

from config.logs import JsonFormatter, TextFormatter, log_context
from config.settings import SettingsError, load_settings


def emit(formatter: logging.Formatter, logger: str, message: str, *args, **extra) -> str:
    """What ``formatter`` writes for one INFO record."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    log = logging.getLogger(logger)
    log.addHandler(handler)
    try:
        log.warning(message, *args, extra=extra)
    finally:
        log.removeHandler(handler)
    return stream.getvalue()


def test_json_lines_carry_the_bound_context_and_extras():
    with log_context(job_id=7, source_id=3, not_a_field="dropped"):
        line = emit(JsonFormatter(), "mirror.test", "captured %s", "page", capture_id=11)
    record = json.loads(line)
    assert record["message"] == "captured page" and record["level"] == "WARNING"
    assert record["logger"] == "mirror.test" and record["time"].endswith("+00:00")
    assert (record["job_id"], record["source_id"], record["capture_id"]) == (7, 3, 11)
    assert "not_a_field" not in record
    # Outside the block the context is gone.
    assert "job_id" not in json.loads(emit(JsonFormatter(), "mirror.test", "later"))


def test_text_lines_end_with_the_context():
    with log_context(job_id=7):
        line = emit(TextFormatter(), "mirror.test", "job done")
    assert line.rstrip().endswith("WARNING mirror.test: job done [job_id=7]")


@pytest.mark.parametrize("formatter", [JsonFormatter(), TextFormatter()])
def test_gunicorns_lines_lose_the_readers_address_and_query(formatter):
    bad = emit(formatter, "gunicorn.error", "Invalid request from ip=203.0.113.9: Invalid HTTP method")
    crashed = emit(formatter, "gunicorn.error", "Error handling request %s %s", "GET", "/archive?q=secret")
    assert "203.0.113.9" not in bad and "ip=[hidden]" in bad
    assert "secret" not in crashed and "/archive" in crashed


def test_flask_requests_tag_their_lines_with_a_request_id_and_endpoint(local_settings):
    from samizdat.app import create_app

    app = create_app(local_settings)
    lines = []
    app.before_request_funcs.setdefault(None, []).append(
        lambda: lines.append(emit(JsonFormatter(), "samizdat.test", "inside"))
    )
    app.test_client().get("/healthz?q=secret")
    app.test_client().get("/healthz")
    first, second = (json.loads(line) for line in lines)
    assert first["endpoint"] == "ops.healthz" and len(first["request_id"]) == 16
    assert first["request_id"] != second["request_id"]
    assert "secret" not in lines[0]
    app.extensions["samizdat"].dispose()


def test_the_log_format_setting_is_checked():
    assert load_settings({"SAMIZDAT_LOG_FORMAT": "json"}).log_format == "json"
    with pytest.raises(SettingsError, match="LOG_FORMAT"):
        load_settings({"SAMIZDAT_LOG_FORMAT": "xml"})
