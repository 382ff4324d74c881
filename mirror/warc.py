"""A capture's WARC (warcio): a warcinfo, then a response/request pair per hop, with digests."""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import datetime, timezone
from urllib.parse import urlsplit

from warcio.archiveiterator import ArchiveIterator
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from mirror.fetch import REDIRECT_CODES, FetchResult, Hop

SOFTWARE = "Samizdat mirror (warcio)"
# Bodies are stored as received but without their transfer coding (urllib3 removes chunking), so
# these two headers are restated for the stored bytes; Content-Encoding and the rest are kept.
_RESTATED_HEADERS = {"transfer-encoding", "content-length"}


def _warc_date(when: datetime) -> str:
    """A WARC-Date in UTC with microseconds (WARC 1.1 allows sub-second precision)."""
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def build_warc(result: FetchResult, requisites: Sequence[FetchResult] = ()) -> bytes:
    """A gzipped WARC 1.1: warcinfo, then a response and a request record for every hop of every
    fetch (the page's hops first, redirects included, then each requisite's).

    Each pair is dated when its request was sent. Responses are stored as received, so
    Content-Encoding is kept, as Heritrix and warcio's capture_http do; replay tools decode them.
    warcio computes WARC-Block-Digest and WARC-Payload-Digest (sha1, the format's convention);
    Samizdat's own sha256 of the decoded page is recorded in the manifest.
    """
    out = io.BytesIO()
    writer = WARCWriter(out, gzip=True, warc_version="WARC/1.1")
    info = writer.create_warcinfo_record(
        "capture.warc.gz",
        {"software": SOFTWARE, "format": "WARC File Format 1.1", "robots": "ignore"},
    )
    if result.hops:
        info.rec_headers.replace_header("WARC-Date", _warc_date(result.hops[0].started_at))
    writer.write_record(info)
    for fetched in [result, *requisites]:
        for hop in fetched.hops:
            _write_exchange(writer, hop)
    return out.getvalue()


def _write_exchange(writer: WARCWriter, hop: Hop) -> None:
    """Write the response and request records of one hop, linked by WARC-Concurrent-To."""
    parts = urlsplit(hop.url)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    warc_date = _warc_date(hop.started_at)
    request_headers = StatusAndHeaders(
        f"GET {path} HTTP/1.1",
        [("Host", parts.netloc), *hop.request_headers.items()],
        is_http_request=True,
    )
    request = writer.create_warc_record(
        hop.url,
        "request",
        payload=io.BytesIO(b""),
        http_headers=request_headers,
        warc_headers_dict={"WARC-Date": warc_date},
    )
    response_headers = StatusAndHeaders(
        f"{hop.status} {hop.reason}".strip(),
        [(k, v) for k, v in hop.headers if k.lower() not in _RESTATED_HEADERS]
        + [("Content-Length", str(len(hop.body)))],
        protocol=hop.http_version,
    )
    response = writer.create_warc_record(
        hop.url,
        "response",
        payload=io.BytesIO(hop.body),
        length=len(hop.body),
        http_headers=response_headers,
        warc_headers_dict={"WARC-Date": warc_date},
    )
    request.rec_headers.add_header("WARC-Concurrent-To", response.rec_headers.get_header("WARC-Record-ID"))
    writer.write_record(response)
    writer.write_record(request)


def page_hops(warc: bytes) -> list[dict]:
    """The page's hops as a capture's WARC records them: url, status, Location and WARC-Date of
    each response up to the first that is not a redirect (build_warc writes the page's first).

    Empty for a WARC without HTTP responses (an uploaded document)."""
    hops: list[dict] = []
    for record in ArchiveIterator(io.BytesIO(warc)):
        if record.rec_type != "response":
            continue
        status = int(record.http_headers.get_statuscode())
        location = record.http_headers.get_header("Location") if status in REDIRECT_CODES else None
        hops.append(
            {
                "url": record.rec_headers.get_header("WARC-Target-URI"),
                "status": status,
                "location": location,
                "date": record.rec_headers.get_header("WARC-Date"),
            }
        )
        if location is None:
            break
    return hops


def build_document_warc(url: str, data: bytes, content_type: str, when: datetime) -> bytes:
    """A gzipped WARC with a warcinfo and one ``resource`` record: a document an archivist
    uploaded because the page itself is gone (there was no HTTP exchange to record)."""
    out = io.BytesIO()
    writer = WARCWriter(out, gzip=True, warc_version="WARC/1.1")
    writer.write_record(
        writer.create_warcinfo_record(
            "capture.warc.gz",
            {"software": SOFTWARE, "format": "WARC File Format 1.1", "description": "uploaded document"},
        )
    )
    writer.write_record(
        writer.create_warc_record(
            url,
            "resource",
            payload=io.BytesIO(data),
            length=len(data),
            warc_content_type=content_type,
            warc_headers_dict={"WARC-Date": _warc_date(when)},
        )
    )
    return out.getvalue()
