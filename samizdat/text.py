"""Text no database can store: NUL characters and lone UTF-16 surrogates.

PostgreSQL refuses NUL in text values and no driver can encode a lone surrogate (``\\ud800``) as
UTF-8, so either one reaching a query is a 500. They enter through JSON escapes (``"\\u0000"``,
``"\\ud800"``), percent-escapes in the path, query string and forms (``%00``), and undecodable
command-line arguments (Python maps those to surrogates). Every entry point asks this module.
"""

from __future__ import annotations

import re

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def unstorable_reason(text: str) -> str | None:
    """Why ``text`` cannot be stored (one short phrase), or None when it can."""
    match = _UNSTORABLE.search(text)
    if match is None:
        return None
    if match.group() == "\x00":
        return "contains a NUL character"
    return f"contains a lone surrogate (U+{ord(match.group()):04X}), which is not valid Unicode"


def find_unstorable(value: object) -> str | None:
    """The first unstorable string anywhere in a parsed JSON value (keys too), as a reason.

    Iterative, so a deeply nested document cannot exhaust the stack.
    """
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            reason = unstorable_reason(item)
            if reason:
                return reason
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return None
