"""Checkpoint extension lines (time, revoked keys) and how fresh a checkpoint is under a policy."""

from __future__ import annotations

import pytest

from provenance.errors import NoteError
from provenance.freshness import checkpoint_facts, extension_lines, policy_time, unix_time
from provenance.merkle import EMPTY_ROOT
from provenance.note import Checkpoint

PACK, WACZ = "0123456789abcdef", "fedcba9876543210"


def test_extension_lines_round_trip_sorted_and_unknown_lines_are_ignored():
    lines = extension_lines(1800000000, [("wacz", WACZ, 1700000001), ("pack", PACK, 1700000000)])
    assert lines == ("time 1800000000", f"revoked pack {PACK} 1700000000",
                     f"revoked wacz {WACZ} 1700000001")
    checkpoint = Checkpoint.parse(Checkpoint("example.org/log", 0, EMPTY_ROOT,
                                             (*lines, "someone-else's extension")).text())
    facts = checkpoint_facts(checkpoint)
    assert facts.time == 1800000000
    assert facts.revocation("pack", PACK) == 1700000000 and facts.revocation("pack", WACZ) is None
    # The tree head, what witnesses check and time-stamps cover, leaves the extensions out.
    assert checkpoint.tree_head() == Checkpoint("example.org/log", 0, EMPTY_ROOT).text()


def test_a_second_time_line_is_refused_and_a_bad_revoked_key_cannot_be_written():
    checkpoint = Checkpoint("example.org/log", 0, EMPTY_ROOT, ("time 1", "time 2"))
    with pytest.raises(NoteError, match="one time line"):
        checkpoint_facts(checkpoint)
    with pytest.raises(NoteError, match="cannot name"):
        extension_lines(1, [("pack", "not-a-key-id", 1)])


def test_policy_time_is_the_quorum_th_newest_cosignature_or_the_logs_own_time():
    checkpoint = Checkpoint("example.org/log", 0, EMPTY_ROOT, ("time 100",))
    cosigners = {"w1": 300, "w2": 200, "w3": 150}
    assert policy_time(checkpoint, cosigners, 0) == 100
    assert policy_time(checkpoint, cosigners, 1) == 300
    assert policy_time(checkpoint, cosigners, 2) == 200
    assert policy_time(checkpoint, {"w1": 300}, 2) is None  # the policy is not met
    assert policy_time(Checkpoint("example.org/log", 0, EMPTY_ROOT), {}, 0) is None
    assert unix_time("1970-01-02T00:00:00Z") == 86400
