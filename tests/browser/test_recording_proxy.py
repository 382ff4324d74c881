"""The recording proxy (browser/proxy.py) and its guard (browser/guard.py), for real: warcprox
on loopback, the fixture site of tests/browser_sites.py, a plain HTTP client and Chromium.

The allowed site is ``127.0.0.1:<port>``, allowed the way SAMIZDAT_FETCH_ALLOW_HOSTS allows it
(exactly that host:port); every other loopback address and port is an attacker's target, and a
counting listener there proves no connection arrived.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import urllib3
from warcio.archiveiterator import ArchiveIterator

from browser.proxy import RecordingProxy
from browser.records import ProxyLimits
from config.settings import Settings
from samizdat.addresses import address_is_public
from tests.browser_sites import CountingListener, ProxySite, TlsProxySite

# hanzo.warctools (warcprox's record writer) opens GzipFile without a mode; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:GzipFile was opened for writing:FutureWarning")

CDXJ_INDEXER = Path(sys.executable).parent / "cdxj-indexer"
PAGE_PATHS = ["/page", "/style.css", "/pixel.png", "/app.js", "/data.json"]


@pytest.fixture
def site() -> Iterator[ProxySite]:
    server = ProxySite()
    yield server
    server.stop()


@pytest.fixture
def listeners() -> Iterator[dict[str, CountingListener]]:
    """Counting listeners where a hostile page would aim."""
    made = {
        "other_ip": CountingListener("127.0.0.2"),
        "websocket": CountingListener("127.0.0.3"),
        "redirect": CountingListener("127.0.0.4"),
        "other_port": CountingListener("127.0.0.1"),
        "by_name": CountingListener("127.0.0.1"),
    }
    yield made
    for listener in made.values():
        listener.close()


def recording_proxy(tmp_path: Path, site: ProxySite, **limits) -> RecordingProxy:
    """A proxy that allows exactly the fixture site's host:port, with ``limits``."""
    return RecordingProxy(
        tmp_path / "warcs", address_is_public, ProxyLimits(**limits), frozenset({site.endpoint})
    )


def through(proxy: RecordingProxy) -> dict[str, str]:
    return {"http": proxy.endpoint.server, "https": proxy.endpoint.server}


def warc_records(paths: list[Path]) -> list[tuple[str, str | None, dict]]:
    """(type, target URI, headers) of every record in ``paths``."""
    found = []
    for path in paths:
        with path.open("rb") as stream:
            for record in ArchiveIterator(stream):
                headers = dict(record.rec_headers.headers)
                payload = record.raw_stream.read()  # as stored: Content-Encoding left alone
                headers["_payload_length"] = len(payload)
                found.append((record.rec_type, headers.get("WARC-Target-URI"), headers))
    return found


def recorded(paths: list[Path], kind: str) -> set[str]:
    return {uri for rec_type, uri, _ in warc_records(paths) if rec_type == kind}


def browse(chromium, proxy: RecordingProxy, url: str) -> str:
    """Load ``url`` in a fresh Chromium profile through ``proxy``; the title once it says done."""
    context = chromium.new_context(
        # Chromium sends loopback straight out unless told not to: <-loopback> keeps it proxied.
        proxy=proxy.endpoint.playwright_proxy,
        ignore_https_errors=True,
        service_workers="block",
    )
    try:
        page = context.new_page()
        page.goto(url, wait_until="load", timeout=30_000)
        page.wait_for_function("document.title === 'done'", timeout=30_000)
        return page.title()
    finally:
        context.close()


def test_every_request_and_response_of_a_page_is_in_the_warc_and_the_index(tmp_path, site):
    with recording_proxy(tmp_path, site) as proxy:
        for path in PAGE_PATHS:
            assert requests.get(site.url(path), proxies=through(proxy), timeout=30).ok
        ca_cert = proxy.endpoint.ca_cert_path
        assert ca_cert.read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
    urls = {site.url(path) for path in PAGE_PATHS}
    assert recorded(proxy.warc_paths, "response") == urls
    assert recorded(proxy.warc_paths, "request") == urls
    assert all(p.parent == (tmp_path / "warcs").resolve() for p in proxy.warc_paths)
    assert all(p.name.endswith(".warc.gz") for p in proxy.warc_paths)
    assert not ca_cert.exists(), "the capture's CA is deleted when the capture ends"
    assert proxy.stats.requests == len(PAGE_PATHS) and proxy.stats.refused == []
    index = subprocess.run(
        [str(CDXJ_INDEXER), *map(str, proxy.warc_paths)],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout
    indexed = {json.loads(line.split(" ", 2)[2])["url"] for line in index.splitlines()}
    assert urls <= indexed


def test_chromium_page_with_subresources_is_recorded_whole(tmp_path, site, chromium):
    with recording_proxy(tmp_path, site) as proxy:
        assert browse(chromium, proxy, site.url("/page")) == "done"
    urls = recorded(proxy.warc_paths, "response")
    assert {site.url(path) for path in PAGE_PATHS} <= urls
    assert {site.url(path) for path in PAGE_PATHS} <= recorded(proxy.warc_paths, "request")
    assert proxy.stats.ended_by is None


def test_chromium_attack_page_reaches_no_private_address(tmp_path, site, listeners, chromium):
    site.attack_targets = {
        "fetch": [
            listeners["other_ip"].url(),
            listeners["other_port"].url(),
            listeners["by_name"].url(host="localhost"),
            site.url("/redirect?to=" + listeners["redirect"].url()),
            "http://169.254.169.254/latest/meta-data/",
        ],
        "image": [listeners["other_ip"].url(), "http://169.254.169.254/latest/"],
        "websocket": [listeners["websocket"].url("ws"), listeners["websocket"].url("wss")],
    }
    with recording_proxy(tmp_path, site) as proxy:
        assert browse(chromium, proxy, site.url("/attack")) == "done"
    assert {name: lst.connections for name, lst in listeners.items()} == {
        name: 0 for name in listeners
    }
    refused = proxy.stats.refused
    for listener in ("other_ip", "websocket", "redirect", "other_port"):
        target = f"{listeners[listener].host}:{listeners[listener].port} blocked_address"
        assert target in refused, (listener, refused)
    assert f"localhost:{listeners['by_name'].port} blocked_address" in refused
    assert "169.254.169.254:80 blocked_address" in refused
    # The allowed site was recorded, the redirect hop included.
    responses = recorded(proxy.warc_paths, "response")
    assert site.url("/attack") in responses
    assert any(url.startswith(site.url("/redirect?")) for url in responses)


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_https_through_the_tunnel_is_recorded_and_chromium_loads_it(tmp_path, chromium):
    site = TlsProxySite(tmp_path)
    try:
        with recording_proxy(tmp_path, site) as proxy:
            for path in ("/style.css", "/pixel.png"):
                # warcprox's certificates name DNS hosts only, never an IP: the client (Chromium
                # too) is told to ignore certificate errors rather than trust the capture's CA.
                answer = requests.get(site.url(path), proxies=through(proxy), verify=False, timeout=30)
                assert answer.ok
            assert browse(chromium, proxy, site.url("/page")) == "done"
    finally:
        site.stop()
    assert {site.url(path) for path in PAGE_PATHS} <= recorded(proxy.warc_paths, "response")
    assert {site.url(path) for path in PAGE_PATHS} <= recorded(proxy.warc_paths, "request")


def test_plain_client_is_refused_private_addresses_schemes_and_tunnels(tmp_path, site, listeners):
    target = listeners["other_ip"]
    with recording_proxy(tmp_path, site) as proxy:
        direct = requests.get(target.url(), proxies=through(proxy), timeout=30)
        metadata = requests.get("http://169.254.169.254/", proxies=through(proxy), timeout=30)
        mapped = requests.get(
            f"http://[::ffff:127.0.0.2]:{target.port}/", proxies=through(proxy), timeout=30
        )
        with pytest.raises(requests.exceptions.ProxyError, match="403"):
            requests.get(target.url("https"), proxies=through(proxy), timeout=30, verify=False)
        with socket.create_connection(("127.0.0.1", proxy.endpoint.port), timeout=30) as raw:
            raw.sendall(f"GET ftp://{site.endpoint}/file HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            ftp_answer = raw.recv(200)
    assert direct.status_code == metadata.status_code == mapped.status_code == 403
    assert ftp_answer.startswith(b"HTTP/1.0 403")
    assert target.connections == 0
    assert f"127.0.0.2:{target.port} blocked_address" in proxy.stats.refused
    assert f"{site.endpoint} scheme:ftp" in proxy.stats.refused
    assert site.hits == []
    assert recorded(proxy.warc_paths, "response") == set()


def test_the_page_cannot_steer_warcprox(tmp_path, site):
    """Warcprox-Meta could send records elsewhere or set limits; WARCPROX_WRITE_RECORD could
    write records of the page's choosing. Neither reaches warcprox."""
    with recording_proxy(tmp_path, site) as proxy:
        steered = [
            requests.get(
                site.url("/page"), proxies=through(proxy), headers={"Warcprox-Meta": meta},
                timeout=30,
            ).status_code
            for meta in (
                json.dumps({"warc-prefix": "elsewhere", "limits": {"x/total/urls": 0}}),
                json.dumps({"warc-prefix": "../../elsewhere"}),
                "{not json",
            )
        ]
        forged = requests.request(
            "WARCPROX_WRITE_RECORD", site.url("/forged"), proxies=through(proxy),
            headers={"WARC-Type": "resource", "Content-Type": "text/plain"}, data=b"forged",
            timeout=30,
        )
    assert steered == [200, 200, 200] and forged.status_code == 405
    assert [p.parent for p in proxy.warc_paths] == [(tmp_path / "warcs").resolve()]
    assert sorted(p.name for p in tmp_path.rglob("*.warc*")) == [p.name for p in proxy.warc_paths]
    assert site.url("/forged") not in {uri for _, uri, _ in warc_records(proxy.warc_paths)}


def test_request_limit_ends_the_capture(tmp_path, site):
    with recording_proxy(tmp_path, site, max_requests=3) as proxy:
        codes = [
            requests.get(site.url("/style.css"), proxies=through(proxy), timeout=30).status_code
            for _ in range(5)
        ]
    assert codes == [200, 200, 200, 403, 403]
    assert proxy.stats.ended_by == "max_requests"
    assert len(site.hits) == 3
    assert proxy.stats.refused == [f"{site.endpoint} limit:max_requests"] * 2


def test_byte_limit_cuts_the_response_that_crosses_it_and_ends_the_capture(tmp_path, site):
    with recording_proxy(tmp_path, site, max_bytes=300_000, max_response_bytes=10**7) as proxy:
        first = requests.get(site.url("/big?n=200000"), proxies=through(proxy), timeout=30)
        try:
            requests.get(site.url("/big?n=200000"), proxies=through(proxy), timeout=30)
        except requests.exceptions.RequestException:
            pass  # cut short mid-body: the client sees a broken response, as it should
        after = requests.get(site.url("/style.css"), proxies=through(proxy), timeout=30)
    assert first.status_code == 200 and after.status_code == 403
    assert proxy.stats.ended_by == "max_bytes"
    # Cut within one read (64 KiB) of the bound.
    assert 300_000 <= proxy.stats.bytes <= 300_000 + 65_536 + 1_000
    assert len(proxy.stats.truncated) == 1
    truncated = [h for t, _, h in warc_records(proxy.warc_paths) if h.get("WARC-Truncated")]
    assert len(truncated) == 1 and truncated[0]["WARC-Truncated"] == "length"


def test_decompression_bomb_is_bounded_on_the_wire_and_in_the_warc(tmp_path, site):
    bound = 256 * 1024
    with recording_proxy(tmp_path, site, max_response_bytes=bound) as proxy:
        received = 0
        try:
            with requests.get(
                site.url("/bomb"), proxies=through(proxy), stream=True, timeout=60
            ) as response:
                assert response.headers["Content-Encoding"] == "gzip"
                for chunk in response.raw.stream(65_536, decode_content=False):
                    received += len(chunk)
        except (requests.exceptions.RequestException, urllib3.exceptions.ProtocolError):
            pass  # the proxy closes the connection at the bound
    assert received <= bound + 65_536
    assert proxy.stats.truncated == [f"{site.url('/bomb')} length"]
    (bomb,) = [h for t, u, h in warc_records(proxy.warc_paths) if t == "response"]
    assert bomb["WARC-Truncated"] == "length"
    assert bomb["_payload_length"] <= bound + 65_536  # stored as sent: still gzip, never inflated


def test_chromium_survives_a_decompression_bomb_subresource(tmp_path, site, chromium):
    with recording_proxy(tmp_path, site, max_response_bytes=256 * 1024) as proxy:
        context = chromium.new_context(proxy=proxy.endpoint.playwright_proxy)
        try:
            page = context.new_page()
            page.goto(site.url("/bomb-page"), wait_until="load", timeout=60_000)
            assert page.inner_text("p") == "after"
        finally:
            context.close()
    assert proxy.stats.truncated == [f"{site.url('/bomb')} length"]
    assert proxy.stats.bytes < 1024 * 1024


def test_settings_decide_the_policy_as_for_the_fetcher(tmp_path, site, listeners):
    """SAMIZDAT_FETCH_ALLOW_HOSTS lets exactly that host:port through; SAMIZDAT_FETCH_ALLOW_PRIVATE
    lets every address through (tests, closed networks)."""
    target = listeners["other_ip"]
    strict = Settings(data_dir=tmp_path, fetch_allow_private=False, fetch_allow_hosts=site.endpoint)
    with RecordingProxy.for_settings(strict, tmp_path / "a", ProxyLimits()) as proxy:
        assert requests.get(site.url("/page"), proxies=through(proxy), timeout=30).ok
        assert requests.get(target.url(), proxies=through(proxy), timeout=30).status_code == 403
    assert target.connections == 0
    open_ = Settings(data_dir=tmp_path, fetch_allow_private=True)
    with RecordingProxy.for_settings(open_, tmp_path / "b", ProxyLimits()) as proxy:
        try:
            requests.get(target.url(), proxies=through(proxy), timeout=30)
        except requests.exceptions.RequestException:
            pass  # the listener hangs up at once: what counts is that it was reached
    assert target.connections == 1


def test_allowed_host_is_matched_as_written_not_by_address(tmp_path, listeners):
    """``localhost:PORT`` listed lets that spelling through; ``127.0.0.1:PORT``, the same
    listener by another spelling, stays refused."""
    target = listeners["by_name"]
    allowed = frozenset({f"localhost:{target.port}"})
    with RecordingProxy(tmp_path, address_is_public, ProxyLimits(), allowed) as proxy:
        other = requests.get(target.url(), proxies=through(proxy), timeout=30)
        assert target.connections == 0
        try:
            requests.get(target.url(host="localhost"), proxies=through(proxy), timeout=30)
        except requests.exceptions.RequestException:
            pass  # the listener hangs up at once: what counts is that it was reached
    assert other.status_code == 403
    assert target.connections >= 1
    assert proxy.stats.refused == [f"127.0.0.1:{target.port} blocked_address"]
