"""The address policy: which addresses are public, which names are local, resolving under a policy.

One place for every outbound connection Samizdat makes, whoever makes it: the HTTP fetcher
(mirror/fetch.py) and the browser's recording proxy (browser/guard.py) both judge addresses here.

A direct connection resolves the name once with :func:`resolve_allowed`, keeps only addresses
:func:`address_is_public` (or the operator's override) allows, and connects to one of those.
Through a proxy the proxy resolves, so :func:`check_proxied_host` must judge the host as written:
it reads numeric hosts the way ``inet_aton`` (and so the proxy's resolver) does (``127.1``,
``0x7f.1``, ``2130706433``, ``0177.0.0.1``, ``0``), strips the trailing dot of ``localhost.``,
refuses other numeric-looking hosts and local names (single labels, ``*.localhost``, names in
the hosts file) before the proxy ever sees them.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from pathlib import Path

from samizdat.errors import FetchError

HOSTS_FILE = Path("/etc/hosts")
# Names under these suffixes only ever mean something inside a network (RFC 6761, 6762, 8375).
LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".localdomain", ".home.arpa", ".lan")
# RFC 6052's well-known NAT64 prefix and RFC 8215's local-use one: the last 32 bits are IPv4.
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
# IPv4-compatible addresses (::a.b.c.d, deprecated by RFC 4291) sit in ::/96.
_V4_COMPATIBLE = ipaddress.ip_network("::/96")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def embedded_ipv4(addr: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, NAT64, 6to4, v4-compatible), if any."""
    if isinstance(addr, ipaddress.IPv4Address):
        return None
    if addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    if addr.sixtofour is not None:
        return addr.sixtofour
    if any(addr in net for net in _NAT64) or (addr in _V4_COMPATIBLE and int(addr) > 1):
        # :: and ::1 are themselves unspecified and loopback, judged as IPv6 below.
        return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    return None


def address_is_public(ip: str) -> bool:
    """Whether ``ip`` is a globally routable unicast address (not loopback/private/link-local).

    An IPv6 address that embeds an IPv4 one is judged by both: ``64:ff9b::7f00:1`` (NAT64) and
    ``2002:7f00:1::`` (6to4) reach 127.0.0.1 on networks that translate them.
    """
    addr = ipaddress.ip_address(ip)
    inner = embedded_ipv4(addr)
    if inner is not None and not (inner.is_global and not inner.is_multicast):
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return True  # judged above by its IPv4 address alone (::ffff:0:0/96 is not "global")
    if isinstance(addr, ipaddress.IPv6Address) and addr.is_site_local:
        # fec0::/10 was deprecated (RFC 3879) but old networks still route it internally, and
        # Python's registry calls it global.
        return False
    return addr.is_global and not addr.is_multicast


def allow_any_address(_ip: str) -> bool:
    """The policy when SAMIZDAT_FETCH_ALLOW_PRIVATE is on (tests, closed networks)."""
    return True


def resolve_allowed(host: str, port: int, allow_address: Callable[[str], bool]) -> list[tuple]:
    """Resolve ``host`` once and keep only the addresses the policy lets us connect to.

    The caller connects to one of the returned ``getaddrinfo`` entries and never resolves the
    name again for that connection, so a name cannot change its answer between check and connect.
    Raises FetchError("dns") when the name does not resolve, FetchError("blocked_address") when
    no address is allowed.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise FetchError("dns", f"cannot resolve {host}: {exc.strerror or exc}") from None
    allowed = [info for info in infos if allow_address(info[4][0])]
    if not allowed:
        shown = ", ".join(sorted({info[4][0] for info in infos}))
        raise FetchError(
            "blocked_address",
            f"{host} resolves to a private, loopback or link-local address ({shown}); refused",
        )
    return allowed


def _inet_aton_part(text: str) -> int | None:
    """One dotted part as inet_aton reads it: 0x hex, leading-0 octal, or decimal."""
    try:
        if text[:2].lower() == "0x":
            return int(text[2:] or "0", 16)
        if len(text) > 1 and text.startswith("0"):
            return int(text[1:], 8)
        return int(text, 10) if text.isdigit() else None
    except ValueError:
        return None


def parse_inet_aton(host: str) -> ipaddress.IPv4Address | None:
    """``host`` as the C library's inet_aton reads it (``127.1``, ``0x7f.1``, ``2130706433``).

    One to four parts; the last fills the remaining bytes. None when it is not such a number.
    """
    parts = host.split(".")
    if not 1 <= len(parts) <= 4 or not all(parts):
        return None
    values = [_inet_aton_part(p) for p in parts]
    if any(v is None or v < 0 for v in values):
        return None
    *leading, last = values
    if any(v > 0xFF for v in leading) or last >= 1 << (8 * (5 - len(parts))):
        return None
    number = 0
    for v in leading:
        number = number << 8 | v
    return ipaddress.IPv4Address(number << (8 * (5 - len(parts))) | last)


def _looks_numeric(label: str) -> bool:
    """Whether a name's last label reads as a number (WHATWG: such a host must be an IPv4)."""
    if label[:2].lower() == "0x":
        return all(c in "0123456789abcdefABCDEF" for c in label[2:])
    return label.isdigit()


def hosts_file_addresses(name: str, path: Path = HOSTS_FILE) -> list[str]:
    """The addresses the hosts file gives ``name`` (read now, so edits count at once)."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        fields = line.split("#", 1)[0].split()
        if len(fields) >= 2 and name in (f.lower().rstrip(".") for f in fields[1:]):
            found.append(fields[0])
    return found


def check_proxied_host(
    host: str,
    allow_address: Callable[[str], bool],
    allow_private: bool,
    hosts_file: Path = HOSTS_FILE,
) -> None:
    """Raise FetchError("blocked_address") unless ``host`` may be handed to a proxy to resolve.

    ``allow_private`` (tests, closed networks) lets local names through; numbers are still read
    as the proxy would and judged by ``allow_address``.
    """
    name = host.lower().strip("[]").rstrip(".")
    if not name:
        raise FetchError("blocked_address", f"{host!r} is not a usable host; refused")
    try:
        literal: IPAddress | None = ipaddress.ip_address(name)
    except ValueError:
        literal = parse_inet_aton(name)
    if literal is not None:
        if not allow_address(str(literal)):
            raise FetchError("blocked_address", f"{host} is a private address; refused")
        return
    if _looks_numeric(name.rsplit(".", 1)[-1]):
        # A resolver may read it as an address in ways we cannot predict: never pass it on.
        raise FetchError("blocked_address", f"{host} looks like a malformed address; refused")
    if allow_private:
        return
    if "." not in name or name == "localhost" or name.endswith(LOCAL_SUFFIXES):
        # Single labels are completed by the proxy's search domains: always somewhere inside.
        raise FetchError("blocked_address", f"{host} is a local name; refused")
    if any(not _is_allowed(ip, allow_address) for ip in hosts_file_addresses(name, hosts_file)):
        raise FetchError("blocked_address", f"{host} is a local name (hosts file); refused")


def _is_allowed(ip: str, allow_address: Callable[[str], bool]) -> bool:
    """``allow_address`` for a hosts-file entry, which may be garbage: garbage is not allowed."""
    try:
        return allow_address(ip.split("%", 1)[0])
    except ValueError:
        return False
