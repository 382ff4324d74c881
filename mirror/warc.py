"""WARC files for captures (warcio): a warcinfo, the request and the response, with digests."""

from __future__ import annotations

import io
from datetime import datetime
from urllib.parse import urlsplit

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from mirror.fetch import FetchResult

SOFTWARE = "Samizdat mirror (warcio)"
# The body is stored decoded, so headers describing the transfer encoding no longer apply.
_DROPPED_HEADERS = {"content-encoding", "transfer-encoding", "content-length", "connection"}


def _http_date(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def build_warc(result: FetchResult, fetched_at: datetime, requisites: list[FetchResult] = ()) -> bytes:
    """A gzipped WARC 1.1: warcinfo, then a response and a request record per fetch (page first).

    warcio computes WARC-Block-Digest and WARC-Payload-Digest (sha1, the format's convention);
    Samizdat's own sha256 of the payload is recorded in the manifest.
    """
    out = io.BytesIO()
    writer = WARCWriter(out, gzip=True, warc_version="WARC/1.1")
    warc_date = _http_date(fetched_at)
    writer.write_record(
        writer.create_warcinfo_record(
            "capture.warc.gz",
            {"software": SOFTWARE, "format": "WARC File Format 1.1", "robots": "ignore"},
        )
    )
    for fetched in [result, *requisites]:
        _write_exchange(writer, fetched, warc_date)
    return out.getvalue()


def _write_exchange(writer: WARCWriter, result: FetchResult, warc_date: str) -> None:
    """Write the response and request records of one fetch, linked by WARC-Concurrent-To."""
    target = result.final_url
    parts = urlsplit(target)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    request_headers = StatusAndHeaders(
        f"GET {path} HTTP/1.1",
        [("Host", parts.netloc), *result.request_headers.items()],
        is_http_request=True,
    )
    request = writer.create_warc_record(
        target,
        "request",
        payload=io.BytesIO(b""),
        http_headers=request_headers,
        warc_headers_dict={"WARC-Date": warc_date},
    )
    response_headers = StatusAndHeaders(
        f"{result.status} {result.reason}".strip(),
        [(k, v) for k, v in result.headers.items() if k.lower() not in _DROPPED_HEADERS]
        + [("Content-Length", str(len(result.body)))],
        protocol="HTTP/1.1",
    )
    response = writer.create_warc_record(
        target,
        "response",
        payload=io.BytesIO(result.body),
        length=len(result.body),
        http_headers=response_headers,
        warc_headers_dict={"WARC-Date": warc_date},
    )
    request.rec_headers.add_header("WARC-Concurrent-To", response.rec_headers.get_header("WARC-Record-ID"))
    writer.write_record(response)
    writer.write_record(request)


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
            warc_headers_dict={"WARC-Date": _http_date(when)},
        )
    )
    return out.getvalue()
