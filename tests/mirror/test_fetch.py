"""The fetcher against a real loopback HTTP server: success, every fault, and the SSRF guard."""

import gzip
import socket
import subprocess
import sys
import time

import pytest

from config.settings import Settings
from mirror.fetch import Fetcher, address_is_public
from mirror.requisites import fetch_requisites
from samizdat.errors import FetchError
from tests.security.servers import Pproxy, TricklingServer
from tests.services import free_port, stop_process
from tests.sites import (
    INCOMPRESSIBLE,
    SITE_CSS,
    article_html,
    gzip_article_gz,
    gzip_article_html,
    seed_names,
)

ALLOW = Settings(
    fetch_allow_private=True,
    fetch_timeout=1.5,
    fetch_connect_timeout=1.5,
    fetch_max_bytes=1024 * 1024,
    fetch_max_redirects=5,
)


def fetch_error(settings: Settings, url: str) -> FetchError:
    with pytest.raises(FetchError) as info:
        Fetcher(settings).fetch(url)
    return info.value


def test_fetches_a_page_with_status_type_and_charset(site):
    result = Fetcher(ALLOW).fetch(site.url(f"/articles/{seed_names()[0]}.html"))
    assert result.status == 200
    assert result.content_type == "text/html"
    assert result.charset == "utf-8"
    assert b"<article>" in result.body


def test_follows_redirects_and_records_the_final_url(site):
    result = Fetcher(ALLOW).fetch(site.url("/redirect-to-article"))
    assert result.final_url == site.url(f"/articles/{seed_names()[0]}.html")
    assert result.redirects == [result.final_url]


def test_sends_an_honest_user_agent(site):
    before = len(site.hits)
    Fetcher(ALLOW).fetch(site.url("/empty.html"))
    assert site.hits[before:] == ["/empty.html"]
    assert site.agents[-1].startswith("SamizdatMirror/")


@pytest.mark.parametrize(
    "path, reason",
    [
        ("/missing", "http_error"),
        ("/status/500", "http_error"),
        ("/loop/a", "redirect_loop"),
        ("/hop/0", "too_many_redirects"),
        ("/big", "too_large"),
        ("/gzip-bomb", "too_large"),
        ("/brotli-bomb", "too_large"),
        ("/slow", "timeout"),
    ],
)
def test_faults_become_fetch_errors_with_a_reason(site, path, reason):
    assert fetch_error(ALLOW, site.url(path)).reason == reason


def test_refused_connection_is_reported():
    error = fetch_error(ALLOW, f"http://127.0.0.1:{free_port()}/")
    assert error.reason == "refused"


def test_unresolvable_host_is_a_dns_failure():
    # The machine's resolver answers for .invalid; once in a clean-clone run it took longer than
    # ALLOW's 1.5 s wall-clock deadline, and the fetch (rightly) said "timeout". A generous
    # deadline keeps this test about the reason a failed lookup is given.
    error = fetch_error(ALLOW.replace(fetch_timeout=30.0, fetch_connect_timeout=30.0),
                        "http://no-such-host.invalid/")
    assert error.reason == "dns"


def test_loopback_is_refused_by_default(site):
    before = len(site.hits)
    error = fetch_error(ALLOW.replace(fetch_allow_private=False), site.url("/empty.html"))
    assert error.reason == "blocked_address"
    assert len(site.hits) == before  # refused before connecting: the server saw nothing


def test_private_address_is_refused_without_connecting():
    error = fetch_error(ALLOW.replace(fetch_allow_private=False), "http://10.255.255.1/secret")
    assert error.reason == "blocked_address"


def test_every_redirect_hop_is_checked(site):
    # Treat the loopback test site as "public" and everything else as private: the redirect to
    # 10.255.255.1 must be refused at the second hop, before any connection is attempted.
    only_loopback = Fetcher(ALLOW, allow_address=lambda ip: ip == "127.0.0.1")
    with pytest.raises(FetchError) as info:
        only_loopback.fetch(site.url("/redirect-to-private"))
    assert info.value.reason == "blocked_address"
    assert "10.255.255.1" in str(info.value)


@pytest.mark.parametrize(
    "ip, public",
    [
        ("127.0.0.1", False),
        ("10.0.0.8", False),
        ("172.16.5.4", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("::1", False),
        ("fe80::1", False),
        ("::ffff:127.0.0.1", False),
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("93.184.216.34", True),
        ("2606:2800:220:1:248:1893:25c8:1946", True),
    ],
)
def test_address_classification(ip, public):
    assert address_is_public(ip) is public


@pytest.fixture(scope="module")
def socks_proxy():
    """pproxy as a real SOCKS5 proxy process on loopback (like a local Tor client)."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pproxy", "-l", f"socks5://127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    else:
        stop_process(proc)
        raise RuntimeError("pproxy did not start")
    yield port, proc
    stop_process(proc)


def test_fetches_through_a_socks_proxy(site, socks_proxy):
    port, _proc = socks_proxy
    fetcher = Fetcher(ALLOW.replace(fetch_proxy=f"socks5h://127.0.0.1:{port}"))
    result = fetcher.fetch(site.url(f"/articles/{seed_names()[0]}.html"))
    assert result.status == 200 and b"<article>" in result.body


def test_a_dead_proxy_fails_instead_of_going_direct(site):
    fetcher = Fetcher(ALLOW.replace(fetch_proxy=f"socks5h://127.0.0.1:{free_port()}"))
    before = len(site.hits)
    with pytest.raises(FetchError) as info:
        fetcher.fetch(site.url("/empty.html"))
    assert info.value.reason in {"refused", "connection", "proxy"}
    assert len(site.hits) == before  # nothing leaked around the proxy


def test_private_targets_are_refused_before_reaching_the_proxy(socks_proxy):
    port, _proc = socks_proxy
    guarded = Fetcher(Settings(fetch_proxy=f"socks5h://127.0.0.1:{port}"))
    for url in ("http://10.255.255.1/secret", "http://localhost/admin", "http://[::1]/"):
        with pytest.raises(FetchError) as info:
            guarded.fetch(url)
        assert info.value.reason == "blocked_address"


def test_brotli_pages_are_decoded(site):
    result = Fetcher(ALLOW).fetch(site.url("/brotli.html"))
    assert result.body == article_html(seed_names()[0])


def test_every_redirect_hop_is_kept_as_received(site):
    name = seed_names()[0]
    result = Fetcher(ALLOW).fetch(site.url(f"/old/{name}.html"))
    urls = [site.url(f"/{step}/{name}.html") for step in ("old", "moved", "gzip")]
    assert [hop.url for hop in result.hops] == urls
    assert [hop.status for hop in result.hops] == [301, 302, 200]
    assert {hop.http_version for hop in result.hops} == {"HTTP/1.0"}  # what the test site speaks
    assert [dict(hop.headers).get("Location") for hop in result.hops[:2]] == [
        f"/moved/{name}.html",
        f"/gzip/{name}.html",
    ]
    assert result.hops[0].body == f'<a href="/moved/{name}.html">Moved</a>'.encode()
    agents = {hop.request_headers["User-Agent"] for hop in result.hops}
    assert len(agents) == 1 and agents.pop().startswith("SamizdatMirror/")
    dates = [hop.started_at for hop in result.hops]
    assert all(d.tzinfo is not None for d in dates) and dates == sorted(dates)


def test_an_encoded_body_is_read_decoded_and_kept_as_received(site):
    name = seed_names()[0]
    result = Fetcher(ALLOW).fetch(site.url(f"/gzip/{name}.html"))
    assert result.body == gzip_article_html(name)  # what the pipeline splits, hashes and serves
    final = result.hops[-1]
    assert final.body == gzip_article_gz(name)  # what the WARC stores, byte for byte
    assert ("Content-Encoding", "gzip") in final.headers


def test_a_body_within_the_cap_once_decoded_but_not_as_sent_is_refused(site):
    # Random bytes grow when gzipped: decoded they fit the cap exactly, as sent they do not,
    # and what was sent is what the WARC keeps.
    at_cap = ALLOW.replace(fetch_max_bytes=len(INCOMPRESSIBLE))
    assert fetch_error(at_cap, site.url("/gzip-incompressible")).reason == "too_large"
    roomier = ALLOW.replace(fetch_max_bytes=2 * len(INCOMPRESSIBLE))
    assert Fetcher(roomier).fetch(site.url("/gzip-incompressible")).body == INCOMPRESSIBLE


def test_redirect_bodies_count_against_the_cap(site):
    css_gz = gzip.compress(SITE_CSS, mtime=0)
    # Enough for the stylesheet as sent and decoded, not for it plus the redirect body before it.
    tight = ALLOW.replace(fetch_max_bytes=max(len(css_gz), len(SITE_CSS)) + 10)
    assert Fetcher(tight).fetch(site.url("/static/site-gz.css")).body == SITE_CSS
    assert fetch_error(tight, site.url("/static/moved.css")).reason == "too_large"


# --- The wall-clock deadline: a server that keeps sending must not keep the fetch. ---

DEADLINE = ALLOW.replace(fetch_timeout=2.0, fetch_connect_timeout=2.0)
SLACK = 5.0  # seconds past the deadline a cut-off fetch may take to report it (a loaded CI machine;
# the trickler would hold a fetch 15 s without the deadline, so this still tells the two apart)


@pytest.fixture(scope="module")
def http_proxy():
    """A real forwarding HTTP proxy (pproxy) on loopback."""
    proxy = Pproxy("http")
    yield proxy.url
    proxy.close()


@pytest.fixture(params=["direct", "http proxy"])
def deadline_fetcher(request, http_proxy) -> Fetcher:
    """A fetcher with a 2 s deadline, connecting directly or through the HTTP proxy."""
    proxy = http_proxy if request.param == "http proxy" else ""
    return Fetcher(DEADLINE.replace(fetch_proxy=proxy))


@pytest.mark.parametrize("path", ["/headers", "/length", "/chunked"])
def test_a_trickling_server_is_cut_off_at_the_deadline(trickler, deadline_fetcher, path):
    started = time.monotonic()
    with pytest.raises(FetchError) as info:
        deadline_fetcher.fetch(trickler.url(path))
    elapsed = time.monotonic() - started
    assert info.value.reason == "timeout"
    assert DEADLINE.fetch_timeout - 0.1 <= elapsed < DEADLINE.fetch_timeout + SLACK


def test_requisites_share_one_wall_clock_budget(trickler, site, deadline_fetcher):
    # The stylesheet trickles past the budget; the image after it is not even started.
    urls = [trickler.url("/length"), site.url("/static/photo.png")]
    budget = 1.5
    started = time.monotonic()
    fetched, notes = fetch_requisites(deadline_fetcher, urls, 10 * 1024 * 1024, budget)
    elapsed = time.monotonic() - started
    assert fetched == []
    assert notes == [f"{urls[0]}: timeout", f"{urls[1]}: skipped, time budget spent"]
    assert budget - 0.1 <= elapsed < budget + SLACK


def test_a_pooled_connection_outlives_the_deadline_of_the_fetch_that_opened_it(trickler):
    # A finished fetch's deadline must not fire on the connection the next fetch reuses.
    fetcher = Fetcher(ALLOW.replace(fetch_timeout=1.0))
    before = trickler.connections
    assert fetcher.fetch(trickler.url("/quick")).body == TricklingServer.QUICK
    time.sleep(1.3)
    assert fetcher.fetch(trickler.url("/quick")).body == TricklingServer.QUICK
    assert trickler.connections == before + 1  # the same connection, kept alive and reused
