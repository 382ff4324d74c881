"""Keys: rotation and revocation entries (each role's key type), their strict parsing, and the
refusal of what a revoked key signed after its revocation."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from provenance.entries import EntryError, KeyEntry, KeySignatures, parse_entry
from provenance.keys import (
    KeyRefused,
    RoleSigner,
    read_history,
    revocation,
    rotation,
    verify_key_entry,
)

ORIGIN = "samizdat.test/log"


def _signer(role: str) -> RoleSigner:
    if role == "wacz":
        return RoleSigner(role, ec.generate_private_key(ec.SECP384R1()))
    return RoleSigner(role, Ed25519PrivateKey.generate(),
                      ORIGIN if role in ("log", "witness") else None)


ROLES = ("log", "pack", "wacz", "witness")


@pytest.mark.parametrize("role", ROLES)
def test_a_rotation_verifies_with_both_keys_and_round_trips(role):
    old, new = _signer(role), _signer(role)
    entry = rotation(old, new, at="2026-12-07T20:00:00Z")
    verify_key_entry(entry)
    data = entry.encode()
    assert parse_entry(data) == entry
    assert entry.key_id == old.public.key_id and entry.new_key_id == new.public.key_id
    history = read_history([(7, data)])
    assert history.rotations == [(7, entry)] and not history.refused


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("which", ["old", "new"])
def test_a_rotation_missing_or_with_a_bad_signature_is_refused(role, which):
    old, new = _signer(role), _signer(role)
    entry = rotation(old, new, at="2026-12-07T20:00:00Z")
    # Missing: the parser refuses the shape (a rotation proves possession of both keys).
    missing = json.loads(entry.encode())
    missing["signatures"][which] = None
    with pytest.raises(EntryError, match="signed by the old key and by the new key"):
        parse_entry(json.dumps(missing, sort_keys=True, separators=(",", ":")).encode())
    # Bad: a signature by a third key of the same role in that place.
    other = _signer(role).sign(b"samizdat key entry v1\n" + entry.body())
    bad = replace(entry, signatures=replace(entry.signatures, **{which: other}))
    with pytest.raises(KeyRefused, match=f"{which} key's signature does not verify"):
        verify_key_entry(parse_entry(bad.encode()))
    history = read_history([(3, bad.encode())])
    assert not history.rotations and history.refused[0][0] == 3


def test_a_rotation_signed_by_a_key_of_another_role_is_refused():
    with pytest.raises(KeyRefused):
        rotation(_signer("pack"), _signer("log"))


@pytest.mark.parametrize("role", ROLES)
def test_a_revocation_by_the_key_itself(role):
    old = _signer(role)
    entry = revocation(role, old.public.key_id, "2026-12-07T21:00:00Z", old=old)
    verify_key_entry(parse_entry(entry.encode()))
    history = read_history([(0, b'{"type":"capture"}'), (1, entry.encode())])
    revoked = history.revocation(role, old.public.key_id)
    assert (revoked.time, revoked.index, revoked.by) == ("2026-12-07T21:00:00Z", 1, "old")


def test_a_revocation_by_the_log_key_needs_that_key():
    log = _signer("log")
    entry = revocation("pack", "0123456789abcdef", "2026-12-07T21:00:00Z", log=log)
    assert entry.key is None and entry.signatures.log and entry.signatures.old is None
    verify_key_entry(entry, [log.public])
    with pytest.raises(KeyRefused, match="not signed by a known log key"):
        verify_key_entry(entry, [_signer("log").public])
    with pytest.raises(KeyRefused, match="not signed by a known log key"):
        verify_key_entry(entry)
    assert read_history([(4, entry.encode())], [log.public]).revocation(
        "pack", "0123456789abcdef").by == "log"
    assert read_history([(4, entry.encode())]).revoked == {}


def test_a_revocation_with_a_key_file_of_another_key_is_refused():
    with pytest.raises(KeyRefused, match="holds pack key"):
        revocation("pack", "0123456789abcdef", "2026-12-07T21:00:00Z", old=_signer("pack"))


@pytest.mark.parametrize("field,value", [
    ("time", "2026-12-07T21:00:01Z"),  # backdating or postdating a revocation
    ("role", "wacz"),
    ("key_id", "fedcba9876543210"),
    ("new_key_id", None),
])
def test_a_key_entry_altered_after_the_fact_fails(field, value):
    old, new = _signer("pack"), _signer("pack")
    entry = rotation(old, new, at="2026-12-07T21:00:00Z")
    body = json.loads(entry.encode())
    body[field] = value
    data = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    with pytest.raises((EntryError, KeyRefused)):
        verify_key_entry(parse_entry(data))
    assert not read_history([(0, data)]).rotations


def test_a_swapped_new_key_fails_even_with_its_id():
    old, new, thief = _signer("wacz"), _signer("wacz"), _signer("wacz")
    entry = rotation(old, new, at="2026-12-07T21:00:00Z")
    swapped = replace(entry, new_key=thief.public.text, new_key_id=thief.public.key_id)
    with pytest.raises(KeyRefused, match="does not verify"):
        verify_key_entry(swapped)


@pytest.mark.parametrize("mutate,reason", [
    (lambda o: o.update(extra=1), "wrong fields"),
    (lambda o: o.update(v=2), "version"),
    (lambda o: o.update(role="tsa"), "role"),
    (lambda o: o.update(action="renew"), "action"),
    (lambda o: o.update(key_id="ABCDEF0123456789"), "hex"),
    (lambda o: o.update(time="yesterday"), "RFC 3339"),
    (lambda o: o["signatures"].update(log="AAAA"), "signed by the old key and by the new key"),
    (lambda o: o["signatures"].update(other="AAAA"), "wrong fields"),
    (lambda o: o.update(new_key="a b"), "printable"),
])
def test_the_parser_refuses_malformed_key_entries(mutate, reason):
    entry = rotation(_signer("pack"), _signer("pack"), at="2026-12-07T21:00:00Z")
    body = json.loads(entry.encode())
    mutate(body)
    with pytest.raises(EntryError, match=reason):
        parse_entry(json.dumps(body, sort_keys=True, separators=(",", ":")).encode())


def test_a_key_entry_with_spaces_is_not_canonical():
    entry = rotation(_signer("pack"), _signer("pack"), at="2026-12-07T21:00:00Z")
    spaced = json.dumps(json.loads(entry.encode()), sort_keys=True).encode()
    with pytest.raises(EntryError, match="canonical"):
        parse_entry(spaced)


def test_a_revocation_naming_a_new_key_is_refused():
    with pytest.raises(EntryError, match="no new key"):
        KeyEntry("pack", "revoke", "0123456789abcdef", None, "fedcba9876543210", None,
                 "2026-12-07T21:00:00Z", KeySignatures(log="AAAA"))
