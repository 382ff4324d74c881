"""SSRF: the fetcher, sent anywhere inside the network, reaches nothing (item: security tests).

Traffic goes to loopback only. An internal service is stood for by a listener on 127.0.0.1 that
counts TCP connections: a refusal must leave it at 0, and the same request with private
addresses allowed must reach it (the control, so these tests can fail). Addresses that are not
loopback (metadata, RFC 1918, multicast…) are judged by the guard without connecting. The
hostile origin serving redirects and requisites is allow-listed by its exact host:port
(``SAMIZDAT_FETCH_ALLOW_HOSTS``), which is how a loopback first hop is reachable while every
later hop and requisite stays guarded.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from config.settings import Settings, SettingsError, load_settings
from mirror.fetch import Fetcher, resolve_allowed
from samizdat.addresses import address_is_public, check_proxied_host
from mirror.models import CapturePart
from mirror.pipeline import capture_source
from mirror.sources import add_source
from samizdat.errors import FetchError
from samizdat.runtime import build_runtime
from tests.conftest import make_settings
from tests.mirror.test_hosts import loopback_names_in_hosts_file
from tests.security.servers import CountingListener, HostileOrigin, Pproxy

GUARDED = Settings(fetch_timeout=3.0, fetch_connect_timeout=3.0)

# Addresses inside some network, never connected to: the guard's verdict alone is checked.
INTERNAL = [
    "169.254.169.254", "10.0.0.1", "172.16.0.1", "192.168.1.1", "100.64.0.1", "0.0.0.0",
    "224.0.0.1", "240.0.0.1", "255.255.255.255", "fd00::", "fd00::1", "fe80::1", "ff02::1",
    "::ffff:169.254.169.254", "64:ff9b::a00:1", "2002:a00:1::", "fec0::", "fec0::1", "::1", "::",
]
# 169.254.169.254 and 10.0.0.1 as inet_aton also reads them: decimal, hex, octal, short forms.
INTERNAL_SPELLINGS = [
    "2852039166", "0xa9fea9fe", "0251.0376.0251.0376", "169.254.43518", "0xa9.0xfe.0xa9.0xfe",
    "10.1", "0xa.0.0.1", "012.0.0.1", "167772161", "10.0.1",
]


def loopback_forms(port: int) -> list[str]:
    """The listener's URL in every disguise: numbers, IPv6 wrappers, names that resolve to it."""
    hosts = [
        "127.0.0.1", "127.1", "0x7f.1", "2130706433", "0177.0.0.1", "0x7f000001", "127.0.0.1.",
        "0", "localhost", "localhost.", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "[::1]",
        *loopback_names_in_hosts_file(),
    ]
    return [f"http://{host}:{port}/latest/meta-data/" for host in dict.fromkeys(hosts)]


@pytest.fixture(scope="module")
def listener() -> Iterator[CountingListener]:
    """The internal service the attacker aims at."""
    server = CountingListener()
    yield server
    server.close()


@pytest.fixture(scope="module")
def origin() -> Iterator[HostileOrigin]:
    """The attacker's page server (allow-listed by exact host:port in these tests)."""
    server = HostileOrigin()
    yield server
    server.close()


@pytest.fixture(scope="module")
def proxies() -> Iterator[dict[str, Pproxy]]:
    """Real pproxy processes by kind, started when a test first needs one."""
    started: dict[str, Pproxy] = {}
    yield started
    for proxy in started.values():
        proxy.close()


@pytest.fixture(params=["direct", "http", "socks5h"])
def route(request, proxies) -> str:
    """"" for a direct fetcher, else the URL of a real pproxy (HTTP, then SOCKS5h)."""
    if request.param == "direct":
        return ""
    if request.param not in proxies:
        proxies[request.param] = Pproxy(request.param)
    return proxies[request.param].url


def refused(fetcher: Fetcher, url: str) -> FetchError:
    """The error of a fetch the guard must refuse."""
    with pytest.raises(FetchError) as info:
        fetcher.fetch(url)
    return info.value


@pytest.mark.parametrize("ip", INTERNAL)
def test_the_guard_judges_internal_addresses_private(ip):
    assert not address_is_public(ip)
    literal = f"[{ip}]" if ":" in ip else ip
    with pytest.raises(FetchError) as info:
        check_proxied_host(literal, address_is_public, allow_private=False)
    assert info.value.reason == "blocked_address"


@pytest.mark.parametrize("host", INTERNAL_SPELLINGS)
def test_internal_addresses_in_any_spelling_are_refused_before_any_connection(host):
    # Direct: the resolver reads the spelling (as the socket would) and the guard drops it.
    with pytest.raises(FetchError) as info:
        resolve_allowed(host, 80, address_is_public)
    assert info.value.reason == "blocked_address"
    # Proxied: refused before the proxy, which would read the spelling the same way.
    with pytest.raises(FetchError) as info:
        check_proxied_host(host, address_is_public, allow_private=False)
    assert info.value.reason == "blocked_address"


def test_every_disguise_of_loopback_is_refused_and_the_listener_sees_nothing(listener, route):
    fetcher = Fetcher(GUARDED.replace(fetch_proxy=route))
    before = listener.connections
    for url in loopback_forms(listener.port):
        # "dns": the resolver cannot read 127.0.0.1. as a name; the proxy path reads it as 127.0.0.1.
        assert refused(fetcher, url).reason in {"blocked_address", "dns"}, url
    assert listener.connections == before


def test_control_with_private_allowed_the_same_urls_reach_the_listener(listener, route):
    fetcher = Fetcher(GUARDED.replace(fetch_proxy=route, fetch_allow_private=True))
    before = listener.connections
    result = fetcher.fetch(f"http://127.0.0.1:{listener.port}/latest/meta-data/")
    assert b"internal secret" in result.body
    for url in loopback_forms(listener.port):
        try:
            fetcher.fetch(url)
        except FetchError:
            pass  # [::1]: the listener is IPv4 only
    assert listener.connections - before > len(loopback_forms(listener.port)) // 2


def redirect_urls(origin: HostileOrigin, listener: CountingListener) -> list[str]:
    """The origin's redirects to the listener, on the first hop and on the third."""
    targets = [
        f"http://{host}:{listener.port}/latest/meta-data/"
        for host in ("127.0.0.1", "localhost", "2130706433", "[::ffff:127.0.0.1]", "0x7f.1")
    ]
    return [origin.url(f"/{how}?to={target}") for target in targets for how in ("redirect", "chain")]


def test_a_redirect_to_loopback_on_any_hop_is_refused(origin, listener, route):
    fetcher = Fetcher(GUARDED.replace(fetch_proxy=route, fetch_allow_hosts=origin.endpoint))
    before = listener.connections
    for url in redirect_urls(origin, listener):
        assert refused(fetcher, url).reason == "blocked_address", url
    assert listener.connections == before


def test_control_with_private_allowed_the_redirects_reach_the_listener(origin, listener, route):
    fetcher = Fetcher(GUARDED.replace(fetch_proxy=route, fetch_allow_private=True))
    before = listener.connections
    for url in redirect_urls(origin, listener)[:2]:
        assert b"internal secret" in fetcher.fetch(url).body
    assert listener.connections - before >= 2


def test_the_allow_list_admits_only_the_exact_host_and_port(origin, listener, route):
    fetcher = Fetcher(GUARDED.replace(fetch_proxy=route, fetch_allow_hosts=origin.endpoint))
    assert fetcher.fetch(origin.url("/trap.html?port=1")).status == 200
    before = listener.connections
    # Same host, another port; same port, another spelling of the host: both still guarded.
    for url in (
        f"http://127.0.0.1:{listener.port}/",
        f"http://localhost:{origin.port}/trap.html?port=1",
        f"http://127.1:{origin.port}/trap.html?port=1",
    ):
        assert refused(fetcher, url).reason == "blocked_address", url
    assert listener.connections == before


@pytest.mark.parametrize(
    "value", ["127.0.0.1", "127.0.0.1:", "127.0.0.1:99999", ":80", "::1:80", "host:http"]
)
def test_a_garbled_allow_list_is_a_settings_error(value):
    with pytest.raises(SettingsError, match="FETCH_ALLOW_HOSTS"):
        load_settings({"SAMIZDAT_FETCH_ALLOW_HOSTS": value})


def test_allow_list_entries_are_read_loosely_but_exactly():
    settings = load_settings({"SAMIZDAT_FETCH_ALLOW_HOSTS": " Intranet.Example.:8080, [::1]:81 "})
    assert settings.fetch_allowed_endpoints == {("intranet.example", 8080), ("::1", 81)}
    assert Settings().fetch_allowed_endpoints == frozenset()


def capture_trap(tmp_path, sqlite_url, origin, listener, **settings) -> tuple[str, bytes]:
    """Capture the origin's trap page through the whole pipeline; (status, offline copy)."""
    config = make_settings(tmp_path, sqlite_url, **{"fetch_allow_private": False, **settings})
    runtime = build_runtime(config)
    try:
        with runtime.Session() as session:
            source = add_source(session, origin.url(f"/trap.html?port={listener.port}"), 60).source
            session.commit()
            source_id = source.id
        outcome = capture_source(runtime, source_id)
        with runtime.Session() as session:
            part = session.scalar(
                select(CapturePart).where(
                    CapturePart.capture_id == outcome.capture_id, CapturePart.name == "offline.html"
                )
            )
            sha256 = part.sha256 if part is not None else None
        offline = runtime.stores["local"].get(sha256) if sha256 else b""
        return outcome.status, offline
    finally:
        runtime.dispose()


def test_requisites_never_reach_a_private_address(tmp_path, sqlite_url, origin, listener, route):
    before = listener.connections
    status, offline = capture_trap(
        tmp_path, sqlite_url, origin, listener, fetch_allow_hosts=origin.endpoint,
        fetch_proxy=route,
    )
    assert status == "ok"
    assert listener.connections == before  # link, icon, img, redirected css and png: all refused
    # Nor can the offline copy send a reader there: every URL to the listener is gone.
    assert offline and f":{listener.port}".encode() not in offline


def test_control_with_private_allowed_the_requisites_reach_the_listener(
    tmp_path, sqlite_url, origin, listener, route
):
    before = listener.connections
    status, _ = capture_trap(
        tmp_path, sqlite_url, origin, listener, fetch_allow_private=True, fetch_proxy=route
    )
    assert status == "ok"
    assert listener.connections > before
