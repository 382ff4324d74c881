"""The file names of a capture's parts: exactly what the pipeline produces, and the one check
that a name read from outside (a manifest in S3) is one of them.

A part's name is its path inside the capture's directory (IPFS), the static copy and the replay
URL. The pipeline makes seven kinds; a rebuild refuses any other name, so a hostile bucket cannot
plant ``../../etc/x`` in the database (samizdat/paths.py guards every writer as well).
"""

from __future__ import annotations

import re

# The page, by its content type; any other type is kept as page.bin.
PAGE_NAMES = {"text/html": "index.html", "application/xhtml+xml": "index.xhtml", "": "index.html",
              "application/pdf": "document.pdf", "text/plain": "page.txt"}
OTHER_PAGE_NAME = "page.bin"
WARC_NAME = "capture.warc.gz"
OFFLINE_NAME = "offline.html"
MANIFEST_NAME = "manifest.json"
# A browser capture's full-page screenshot and its first screen, small (PNG).
SCREENSHOT_NAME = "screenshot.png"
THUMBNAIL_NAME = "thumbnail.png"
ASSET_DIR = "assets/"
# A requisite: assets/<20 hex of its URL's sha256>.<1–5 lowercase letters or digits>.
ASSET_EXTENSION = re.compile(r"\.[a-z0-9]{1,5}")
_ASSET_NAME = re.compile(r"assets/[0-9a-f]{20}\.[a-z0-9]{1,5}")

_FIXED = {
    "page": {*PAGE_NAMES.values(), OTHER_PAGE_NAME},
    "warc": {WARC_NAME},
    "offline": {OFFLINE_NAME},
    "manifest": {MANIFEST_NAME},
    "screenshot": {SCREENSHOT_NAME},
    "thumbnail": {THUMBNAIL_NAME},
}


def is_part_name(role: str, name: str) -> bool:
    """Whether the pipeline could have named a part of ``role`` ``name``."""
    if not isinstance(role, str) or not isinstance(name, str):
        return False
    if role == "asset":
        return _ASSET_NAME.fullmatch(name) is not None
    return name in _FIXED.get(role, ())
