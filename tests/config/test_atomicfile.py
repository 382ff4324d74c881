"""Files written whole (samizdat.atomicfile) and one-at-a-time locks (samizdat.filelock)."""

from __future__ import annotations

import os
import stat

import pytest

from samizdat.atomicfile import create_exclusive, write_atomic
from samizdat.filelock import try_lock


def test_write_atomic_replaces_the_file_whole_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "deep" / "state.json"
    write_atomic(path, b"old")
    write_atomic(path, b"new")
    assert path.read_bytes() == b"new"
    assert [p.name for p in path.parent.iterdir()] == ["state.json"]


def test_write_atomic_sets_an_exact_mode_whatever_the_umask(tmp_path):
    old = os.umask(0o077)
    try:
        write_atomic(tmp_path / "public", b"x", mode=0o644)
        write_atomic(tmp_path / "plain", b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "public").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "plain").stat().st_mode) == 0o600  # a new file's, after umask


def test_a_write_that_fails_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "record.json"
    write_atomic(path, b"kept", sync=True)
    with pytest.raises(TypeError):
        write_atomic(path, "not bytes")  # fails after the temporary file exists
    assert path.read_bytes() == b"kept"
    assert [p.name for p in tmp_path.iterdir()] == ["record.json"]


def test_create_exclusive_makes_the_file_once_and_never_overwrites_it(tmp_path):
    path = tmp_path / "secret_key"
    assert create_exclusive(path, b"first", mode=0o600) is True
    assert create_exclusive(path, b"second", mode=0o600) is False
    assert path.read_bytes() == b"first"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["secret_key"]


def test_a_held_lock_refuses_a_second_holder_until_released(tmp_path):
    lock = tmp_path / "jobs" / "lock"
    busy = RuntimeError("another run holds the lock")
    with try_lock(lock, busy):
        # flock locks belong to the open file, so a second open in this process is refused too
        with pytest.raises(RuntimeError, match="another run holds the lock"):
            with try_lock(lock, busy):
                pass
    with try_lock(lock, busy):  # released when the first block ended
        pass
