"""Path confinement: every writer keeps what it writes under its own root, whatever it is told.

Names reach writers from the database (a capture part's name), from published files and, after a
rebuild, from an S3 bucket that may be hostile. Validating where input enters is the first guard;
this module is the second, shared by every writer (the static copy's folder, S3 keys, IPFS paths,
WACZ members, the self-host zip), so a bad row can never become a write outside the root.
"""

from __future__ import annotations

from pathlib import Path

from samizdat.errors import UnsafePathError


def confined_name(name: str) -> str:
    """``name`` itself when it is a relative POSIX path that stays under its root, else
    UnsafePathError: no empty, ``.`` or ``..`` segment, no leading ``/``, backslash or NUL."""
    if not isinstance(name, str) or not name:
        raise UnsafePathError(f"refused an empty or non-text file name: {name!r}")
    if name.startswith("/") or "\\" in name or any(ord(c) < 32 or c == "\x7f" for c in name):
        raise UnsafePathError(f"refused file name {name[:120]!r}: absolute or with a control character")
    if any(segment in ("", ".", "..") for segment in name.split("/")):
        raise UnsafePathError(f"refused file name {name[:120]!r}: it leaves its directory")
    return name


def confined_file(root: Path, name: str) -> Path:
    """The file ``name`` under the directory ``root``; UnsafePathError when it would land elsewhere
    (a bad name, or a symlink inside ``root`` that points out of it)."""
    target = Path(root) / confined_name(name)
    # The name is clean, but a directory on the way could be a symlink planted by someone else.
    if not target.resolve().is_relative_to(Path(root).resolve()):
        raise UnsafePathError(f"refused file name {name[:120]!r}: it resolves outside {root}")
    return target
