"""A quiet archive keeps fresh indexes: the scheduler's packs task carries each refresh of the
log's checkpoint to the packs once the one they carry is a refresh interval old."""

from __future__ import annotations

import dataclasses
import json
import time

from embed.publish import PUBLISHED_STATE
from embed.tasks import PublishDebouncer
from provenance.appender import append_log
from samizdat.runtime import build_runtime
from tests.embed.conftest import add_fragments


def _state(settings) -> dict:
    return json.loads((settings.public_path / PUBLISHED_STATE).read_bytes())


def _index_checkpoint(settings) -> str:
    envelope = json.loads((settings.public_path / "packs/all/index.json").read_bytes())
    return json.loads(envelope["payload"])["checkpoint"]


def test_the_packs_follow_a_quiet_logs_refresh_once_theirs_is_a_refresh_interval_old(local_app):
    runtime = local_app.extensions["samizdat"]
    settings = runtime.settings
    add_fragments(local_app, 2)
    debouncer = PublishDebouncer(quiet=0.0)
    assert debouncer(runtime)  # the first publish
    carried = _state(settings)["checkpoint_time"]
    assert isinstance(carried, int) and not debouncer(runtime)  # nothing changed
    while time.time() < carried + 3:
        time.sleep(0.5)
    with runtime.Session() as session:  # the log's refresh pass (interval 1 s)
        assert append_log(session, dataclasses.replace(settings, log_refresh_seconds=1.0)).refreshed
    before = _index_checkpoint(settings)
    assert before != (settings.log_path / "checkpoint").read_text()
    # The packs' checkpoint is younger than the configured interval (6 h): not yet republished.
    assert not debouncer(runtime)
    quick = build_runtime(dataclasses.replace(settings, log_refresh_seconds=2.0))
    try:
        assert debouncer(quick)
    finally:
        quick.dispose()
    # The log's current checkpoint (refreshed once more if the publish's own pass found it due).
    assert _index_checkpoint(settings) == (settings.log_path / "checkpoint").read_text() != before
    assert _state(settings)["checkpoint_time"] > carried
    assert not debouncer(runtime)
