"""provenance.entries: one canonical encoding per entry, and a parser refusing everything else."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from provenance.entries import (
    CaptureEntry,
    CaptureFacts,
    DecisionEntry,
    EntryError,
    PartRef,
    archivist_key_id,
    canonical_json,
    capture_entry,
    decision_entry,
    parse_entry,
    text_sha256,
)
from provenance.tiles import MAX_ENTRY_SIZE

CID = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"
CID_V0 = "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG"
MANIFEST = "c" * 64
FRAGMENT = "0123456789abcdef0123456789abcdef"
WHEN = datetime(2026, 12, 7, 19, 51, 40, 123456, tzinfo=UTC)


def _capture() -> CaptureEntry:
    parts = (PartRef("index.html", "a" * 64, CID), PartRef("capture.warc.gz", "b" * 64, CID_V0),
             PartRef("assets/0123456789abcdef0123.png", "d" * 64, None))
    return capture_entry(CaptureFacts("https://bao.example/tin?id=1", WHEN, parts), MANIFEST)


def _decision(archivist: str | None = None) -> DecisionEntry:
    return decision_entry(FRAGMENT, "Tiếng Việt — một câu.", MANIFEST, "approved", WHEN, archivist)


def test_a_capture_entry_round_trips_in_canonical_form():
    entry = _capture()
    data = entry.encode()
    assert parse_entry(data) == entry
    assert data == canonical_json(json.loads(data))
    body = json.loads(data)
    assert body["type"] == "capture" and body["v"] == 1
    assert body["time"] == "2026-12-07T19:51:40Z"  # UTC, to the second
    assert [p["name"] for p in body["parts"]] == sorted(p["name"] for p in body["parts"])
    assert body["parts"][0] == {"cid": None, "name": "assets/0123456789abcdef0123.png",
                                "sha256": "d" * 64}


def test_the_same_capture_in_another_order_or_zone_encodes_to_the_same_bytes():
    entry = _capture()
    hanoi = WHEN.astimezone(timezone(timedelta(hours=7)))
    shuffled = CaptureFacts(entry.url, hanoi, tuple(reversed(entry.parts)))
    assert capture_entry(shuffled, MANIFEST).encode() == entry.encode()


def test_a_decision_entry_round_trips_and_names_no_one():
    key = archivist_key_id(b"a log-specific secret!", 42)
    entry = _decision(key)
    assert parse_entry(entry.encode()) == entry
    assert entry.text_sha256 == text_sha256("Tiếng Việt — một câu.")
    assert "Tiếng" not in entry.encode().decode()  # the text's hash, never the text
    assert key != archivist_key_id(b"another log's secret", 42)  # unlinkable across logs
    assert key == archivist_key_id(b"a log-specific secret!", 42)  # one archivist, one id
    assert parse_entry(_decision().encode()).archivist is None


def _mutated(entry, change) -> bytes:
    body = entry.to_json()
    change(body)
    return canonical_json(body)


CAPTURE_DEFECTS = {
    "unknown type": lambda b: b.update(type="rotation"),
    "unknown version": lambda b: b.update(v=2),
    "version as text": lambda b: b.update(v="1"),
    "version as boolean": lambda b: b.update(v=True),
    "extra field": lambda b: b.update(title="x"),
    "missing field": lambda b: b.pop("manifest"),
    "float": lambda b: b.update(v=1.0),
    "uppercase hex": lambda b: b.update(manifest="C" * 64),
    "short hex": lambda b: b.update(manifest="c" * 63),
    "ftp URL": lambda b: b.update(url="ftp://example.org/x"),
    "javascript URL": lambda b: b.update(url="javascript:alert(1)"),
    "URL without host": lambda b: b.update(url="https:///x"),
    "URL with a space": lambda b: b.update(url="https://example.org/a b"),
    "URL not a string": lambda b: b.update(url=["https://example.org/"]),
    "time without zone": lambda b: b.update(time="2026-12-07T19:51:40"),
    "time with fractions": lambda b: b.update(time="2026-12-07T19:51:40.5Z"),
    "impossible time": lambda b: b.update(time="2026-02-30T19:51:40Z"),
    "parts not a list": lambda b: b.update(parts={}),
    "part escaping the folder": lambda b: b["parts"][0].update(name="../../etc/passwd"),
    "absolute part": lambda b: b["parts"][0].update(name="/etc/passwd"),
    "empty segment": lambda b: b["parts"][0].update(name="assets//x.png"),
    "dot segment": lambda b: b["parts"][0].update(name="assets/./x.png"),
    "bad CID": lambda b: b["parts"][0].update(cid="not-a-cid"),
    "part extra field": lambda b: b["parts"][0].update(size=3),
    "part missing cid": lambda b: b["parts"][0].pop("cid"),
    "parts unsorted": lambda b: b["parts"].reverse(),
    "part twice": lambda b: b["parts"].append(dict(b["parts"][-1])),
}

DECISION_DEFECTS = {
    "unknown decision": lambda b: b.update(decision="published"),
    "fragment id too short": lambda b: b.update(fragment="0123"),
    "archivist by name": lambda b: b.update(archivist="alice"),
    "capture by database id": lambda b: b.update(manifest=17),
    "missing archivist field": lambda b: b.pop("archivist"),
    "extra name": lambda b: b.update(reviewed_by="alice"),
}


@pytest.mark.parametrize("defect", CAPTURE_DEFECTS)
def test_a_malformed_capture_entry_is_refused(defect):
    with pytest.raises(EntryError):
        parse_entry(_mutated(_capture(), CAPTURE_DEFECTS[defect]))


@pytest.mark.parametrize("defect", DECISION_DEFECTS)
def test_a_malformed_decision_entry_is_refused(defect):
    with pytest.raises(EntryError):
        parse_entry(_mutated(_decision(), DECISION_DEFECTS[defect]))


def _respaced(data: bytes) -> bytes:
    return json.dumps(json.loads(data), sort_keys=True).encode()


NON_CANONICAL = {
    "spaces": (_respaced, "canonical"),
    "unsorted keys": (lambda d: json.dumps(dict(reversed(json.loads(d).items())),
                                           separators=(",", ":")).encode(), "canonical"),
    "escaped character": (lambda d: d.replace(b'"approved"', b'"\\u0061pproved"'), "canonical"),
    "trailing newline": (lambda d: d + b"\n", "canonical"),
    "duplicate key": (lambda d: d[:-1] + b',"v":1}', "repeats a key"),
    "not UTF-8": (lambda d: d.replace(b'"approved"', b'"approved\xff"'), "not UTF-8"),
    "NaN": (lambda d: d.replace(b'"v":1', b'"v":NaN'), "floating-point"),
    "float": (lambda d: d.replace(b'"v":1', b'"v":1.0'), "floating-point"),
    "not an object": (lambda d: b"[" + d + b"]", "not a JSON object"),
    "not JSON": (lambda d: d[:-1], "not UTF-8 JSON"),
}


@pytest.mark.parametrize("form", NON_CANONICAL)
def test_non_canonical_bytes_are_refused(form):
    change, reason = NON_CANONICAL[form]
    data = change(_decision().encode())
    with pytest.raises(EntryError, match=reason):
        parse_entry(data)


def test_an_oversized_entry_is_refused_before_it_is_parsed():
    many = tuple(PartRef(f"assets/{i:020x}.png", f"{i:064x}", CID) for i in range(1000))
    with pytest.raises(EntryError, match="65535"):
        capture_entry(CaptureFacts("https://example.org/", WHEN, many), MANIFEST).encode()
    with pytest.raises(EntryError, match="65535"):
        parse_entry(b"{" + b" " * MAX_ENTRY_SIZE + b"}")


def test_values_that_cannot_be_logged_are_refused_when_building():
    with pytest.raises(EntryError, match="timezone-aware"):
        capture_entry(CaptureFacts("https://example.org/", WHEN.replace(tzinfo=None), ()), MANIFEST)
    with pytest.raises(EntryError):
        decision_entry(FRAGMENT, "text", MANIFEST, "approve", WHEN)
    with pytest.raises(EntryError):
        PartRef("../x", "a" * 64)
    with pytest.raises(EntryError, match="16 bytes"):
        archivist_key_id(b"short", 1)
