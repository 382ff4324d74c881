"""One logging setup for every Samizdat process (gunicorn, the scheduler, the CLI): text or JSON lines.

A line carries the time, level, logger and message, plus whatever context the code bound for the
work under way (request id and endpoint, job, source, capture); never a client address, user
agent, cookie or query string. JSON lines are one object each, for log shippers.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from datetime import datetime, timezone

# The context fields a line may carry, in the order text lines show them.
CONTEXT_FIELDS = ("request_id", "endpoint", "job_id", "source_id", "capture_id")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# Loggers whose INFO lines narrate a library's internals, at the level they are kept from: Alembic
# announces every connection ("Context impl …") and, when imported, each of its plugins.
QUIET_LOGGERS = {"alembic": "WARNING"}

_context: ContextVar[dict[str, object]] = ContextVar("samizdat_log_context", default={})

# gunicorn logs a malformed request as "Invalid request from ip=<reader's address>: …" (at WARNING,
# whatever its access log says), and a crashed one with its URI: neither address nor query
# reaches our lines.
_GUNICORN_PEER = re.compile(r"\bip=\S+?(?=: |\s|$)")
_QUERY = re.compile(r"\?\S*")


def bind_log_context(**fields: object) -> Token:
    """Add ``fields`` to every line logged in this thread or task until :func:`unbind_log_context`."""
    known = {k: v for k, v in fields.items() if k in CONTEXT_FIELDS and v is not None}
    return _context.set({**_context.get(), **known})


def unbind_log_context(token: Token) -> None:
    """Drop the fields bound by the :func:`bind_log_context` call that returned ``token``."""
    _context.reset(token)


@contextmanager
def log_context(**fields: object) -> Iterator[None]:
    """Bind ``fields`` to the lines logged inside the block (a job's id and source, a capture)."""
    token = bind_log_context(**fields)
    try:
        yield
    finally:
        unbind_log_context(token)


def _fields(record: logging.LogRecord) -> dict[str, object]:
    """The context of ``record``: what is bound, then what it was given through ``extra``."""
    fields = dict(_context.get())
    for name in CONTEXT_FIELDS:
        value = getattr(record, name, None)
        if value is not None:
            fields[name] = value
    return fields


def _message(record: logging.LogRecord) -> str:
    """The record's message with a reader's address (gunicorn's bad-request line) left out."""
    message = record.getMessage()
    if record.name.startswith("gunicorn"):
        if "ip=" in message:
            message = _GUNICORN_PEER.sub("ip=[hidden]", message)
        if message.startswith("Error handling request"):
            # "Error handling request GET /path?query": a reader's query stays out of the log.
            message = _QUERY.sub("", message)
    return message


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, process, context."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": _message(record),
            "process": record.process,
            **_fields(record),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """``time LEVEL logger: message [key=value …]`` for people reading a terminal."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        record.message = _message(record)
        line = super().formatMessage(record)
        fields = _fields(record)
        if fields:
            line += " [" + " ".join(f"{k}={v}" for k, v in fields.items()) + "]"
        return line


def formatter_for(log_format: str) -> logging.Formatter:
    """The formatter of ``log_format`` (``text`` or ``json``, as SAMIZDAT_LOG_FORMAT checks)."""
    return JsonFormatter() if log_format == "json" else TextFormatter()


def configure_logging(log_format: str, level: int = logging.INFO) -> None:
    """Send INFO and above to stderr in ``log_format``, unless logging is already set up.

    Like ``logging.basicConfig``, a no-op when the root logger has handlers: under gunicorn
    (configured from :func:`gunicorn_logconfig`) and under pytest, theirs stay.
    """
    if logging.root.handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(formatter_for(log_format))
    logging.basicConfig(level=level, handlers=[handler])
    for name, quiet_level in QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(quiet_level)


def gunicorn_logconfig(log_format: str) -> dict:
    """gunicorn's ``logconfig_dict``: its own lines and the app's in one format, once each, on stderr."""
    formatter = "config.logs.JsonFormatter" if log_format == "json" else "config.logs.TextFormatter"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"samizdat": {"()": formatter}},
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "samizdat",
                       "stream": "ext://sys.stderr"},
        },
        "root": {"level": "INFO", "handlers": ["stderr"]},
        "loggers": {
            # gunicorn's lines reach the root's handler; no access log at all (no addresses).
            "gunicorn.error": {"level": "INFO", "handlers": [], "propagate": True},
            "gunicorn.access": {"level": "CRITICAL", "handlers": [], "propagate": False},
            **{name: {"level": level} for name, level in QUIET_LOGGERS.items()},
        },
    }
