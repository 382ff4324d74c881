"""Loopback in disguise: every way of writing 127.0.0.1 is refused, through a proxy or not.

The proxied tests go through a real pproxy process (HTTP and SOCKS5 with remote DNS): on a
proxy, the proxy resolves names, so a host it would read as loopback must never reach it.
"""

from __future__ import annotations

import ipaddress
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from config.settings import Settings
from mirror.fetch import Fetcher
from samizdat.addresses import HOSTS_FILE, address_is_public, check_proxied_host, parse_inet_aton
from samizdat.errors import FetchError
from tests.services import free_port, stop_process

# Every one of these reaches 127.0.0.1 (or 0.0.0.0, which Linux treats as loopback).
LOOPBACK_FORMS = [
    "127.1", "0x7f.1", "2130706433", "0177.0.0.1", "0", "localhost.", "127.0.0.1.",
    "0x7f000001", "127.0.1", "[::ffff:127.0.0.1]", "[::1]",
]
# IPv6 addresses that carry 127.0.0.1 or 10.0.0.1 inside (NAT64, 6to4, IPv4-compatible).
EMBEDDED_PRIVATE = [
    "64:ff9b::7f00:1", "64:ff9b::10.0.0.1", "2002:7f00:1::", "2002:a00:1::1", "::127.0.0.1",
    "::10.0.0.1", "64:ff9b:1::a00:1",
]
ALLOW = Settings(fetch_allow_private=True, fetch_timeout=3.0, fetch_connect_timeout=3.0)
GUARDED = Settings(fetch_timeout=3.0, fetch_connect_timeout=3.0)


def loopback_names_in_hosts_file() -> list[str]:
    """Names /etc/hosts maps to a loopback address, as the proxy's resolver would see them."""
    names = []
    for line in HOSTS_FILE.read_text().splitlines():
        fields = line.split("#", 1)[0].split()
        if len(fields) >= 2 and ipaddress.ip_address(fields[0].split("%")[0]).is_loopback:
            names.extend(fields[1:])
    return names


@pytest.fixture(scope="module", params=["http", "socks5h"])
def proxy(request) -> Iterator[str]:
    """A real pproxy on loopback, as an HTTP proxy or a SOCKS5 one that resolves names itself."""
    port = free_port()
    listen = "http" if request.param == "http" else "socks5"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pproxy", "-l", f"{listen}://127.0.0.1:{port}"],
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
    yield f"{request.param}://127.0.0.1:{port}"
    stop_process(proc)


@pytest.mark.parametrize("host", LOOPBACK_FORMS)
def test_proxied_loopback_forms_are_refused_before_the_proxy(site, proxy, host):
    fetcher = Fetcher(GUARDED.replace(fetch_proxy=proxy))
    before = len(site.hits)
    with pytest.raises(FetchError) as info:
        fetcher.fetch(f"http://{host}:{site.port}/empty.html")
    assert info.value.reason == "blocked_address"
    assert len(site.hits) == before  # the proxy never fetched it


def test_proxied_hosts_file_names_are_refused(site, proxy):
    names = loopback_names_in_hosts_file()
    assert names  # every Linux hosts file names localhost at least
    fetcher = Fetcher(GUARDED.replace(fetch_proxy=proxy))
    before = len(site.hits)
    for name in names:
        with pytest.raises(FetchError) as info:
            fetcher.fetch(f"http://{name}:{site.port}/empty.html")
        assert info.value.reason == "blocked_address", name
    assert len(site.hits) == before


@pytest.mark.parametrize("ip", EMBEDDED_PRIVATE)
def test_proxied_ipv6_wrapping_a_private_ipv4_is_refused(proxy, ip):
    with pytest.raises(FetchError) as info:
        Fetcher(GUARDED.replace(fetch_proxy=proxy)).fetch(f"http://[{ip}]/")
    assert info.value.reason == "blocked_address"


@pytest.mark.parametrize("ip", EMBEDDED_PRIVATE)
def test_direct_ipv6_wrapping_a_private_ipv4_is_refused_without_connecting(ip):
    started = time.monotonic()
    with pytest.raises(FetchError) as info:
        Fetcher(GUARDED).fetch(f"http://[{ip}]/")
    assert info.value.reason == "blocked_address"
    assert time.monotonic() - started < 1.0  # judged, not tried


def test_allow_private_still_reaches_loopback_through_the_proxy(site, proxy):
    fetcher = Fetcher(ALLOW.replace(fetch_proxy=proxy))
    for host in ("127.0.0.1", "127.1", "localhost"):
        result = fetcher.fetch(f"http://{host}:{site.port}/empty.html")
        assert result.status == 200, host


def test_public_names_still_pass_the_proxied_check():
    names = ("example.org", "news.example.vn.", "xn--80ak6aa92e.com")
    for host in (*names, "8.8.8.8", "[2001:4860::8888]"):
        check_proxied_host(host, address_is_public, allow_private=False)


def test_a_hosts_file_entry_pointing_inside_is_refused(tmp_path):
    hosts = tmp_path / "hosts"
    hosts.write_text(
        "# office\n10.1.2.3  wiki.corp.example.org wiki\n93.184.215.14 public.example\n"
    )
    with pytest.raises(FetchError, match="hosts file"):
        check_proxied_host("WIKI.corp.example.org.", address_is_public, False, hosts_file=hosts)
    check_proxied_host("public.example", address_is_public, False, hosts_file=hosts)


@pytest.mark.parametrize(
    "host", ["1.2.3.4.5", "0x7g.1", "08.0.0.1", "example.0x1", "256.256.256.256", "4294967296"]
)
def test_numeric_looking_hosts_that_are_no_address_are_refused(host):
    with pytest.raises(FetchError) as info:
        check_proxied_host(host, address_is_public, allow_private=True)
    assert info.value.reason == "blocked_address"


@pytest.mark.parametrize(
    "text, address",
    [
        ("127.1", "127.0.0.1"), ("0x7f.1", "127.0.0.1"), ("2130706433", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"), ("0", "0.0.0.0"), ("10.0x10203", "10.1.2.3"),
        ("192.168.1", "192.168.0.1"), ("8.8.8.8", "8.8.8.8"), ("example.org", None),
        ("1.2.3.4.5", None), ("256.1", None), ("1..2", None),
    ],
)
def test_hosts_are_read_with_inet_aton_rules(text, address):
    parsed = parse_inet_aton(text)
    assert (str(parsed) if parsed else None) == address


@pytest.mark.parametrize("ip", EMBEDDED_PRIVATE + ["::ffff:127.0.0.1", "::1", "::"])
def test_embedded_private_ipv4_is_not_public(ip):
    assert not address_is_public(ip)


@pytest.mark.parametrize(
    "ip", ["64:ff9b::808:808", "2002:808:808::1", "::ffff:8.8.8.8", "2606:4700::1111"]
)
def test_embedded_public_ipv4_stays_public(ip):
    assert address_is_public(ip)
