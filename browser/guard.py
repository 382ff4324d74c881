"""The browser's SSRF guard: every connection the recording proxy makes goes through here.

The browser follows redirects, opens tunnels and upgrades to WebSocket by itself, and each of
those arrives at the proxy as a new request or a new CONNECT. The proxy never resolves a name on
its own: :meth:`ConnectionGuard.connect` resolves it once (``samizdat.addresses.resolve_allowed``),
keeps only the addresses the policy allows, and connects to one of those, so a name that answers
differently a second time (DNS rebinding) never gets the second lookup.

The policy is the fetcher's: public unicast addresses only, unless SAMIZDAT_FETCH_ALLOW_PRIVATE
lets everything through or the exact ``host:port`` (as written in the URL) is listed in
SAMIZDAT_FETCH_ALLOW_HOSTS.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable

from config.settings import endpoint_key, parse_endpoint
from samizdat.addresses import allow_any_address, resolve_allowed
from samizdat.errors import FetchError

# What the proxy forwards: plain HTTP requests, and CONNECT tunnels (HTTPS, wss:// and ws://).
PROXIED_SCHEMES = frozenset({"http"})


class ConnectionGuard:
    """Decides, and makes, every outbound connection of one recording proxy."""

    def __init__(self, allow_address: Callable[[str], bool], allow_hosts: Iterable[str] = ()):
        """``allow_address`` judges one resolved address; ``allow_hosts`` lists ``host:port``
        endpoints (as in SAMIZDAT_FETCH_ALLOW_HOSTS) whose every address is allowed."""
        self.allow_address = allow_address
        self.allowed_endpoints = frozenset(parse_endpoint(item) for item in allow_hosts)

    def policy_for(self, host: str, port: int) -> Callable[[str], bool]:
        """The address policy for ``host:port``: any address when the operator listed it."""
        if endpoint_key(host, port) in self.allowed_endpoints:
            return allow_any_address
        return self.allow_address

    def connect(self, host: str, port: int, timeout: float | None) -> socket.socket:
        """A socket connected to a checked address of ``host`` (resolved here, once).

        Raises FetchError("blocked_address" or "dns") before any packet leaves for a refused
        address, and OSError when no allowed address accepts the connection.
        """
        infos = resolve_allowed(host, port, self.policy_for(host, port))
        last_error: OSError | None = None
        for family, socktype, proto, _name, sockaddr in infos:
            sock = socket.socket(family, socktype, proto)
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if timeout is not None:
                    sock.settimeout(timeout)
                sock.connect(sockaddr)
                return sock
            except OSError as exc:
                sock.close()
                last_error = exc
        raise last_error or OSError(f"cannot connect to {host}:{port}")


def refusal(host: str, port: int | str, reason: str) -> str:
    """One entry of ``ProxyStats.refused``: ``host:port reason``."""
    shown = f"[{host}]" if ":" in host else host
    return f"{shown}:{port} {reason}"


__all__ = ["ConnectionGuard", "FetchError", "PROXIED_SCHEMES", "refusal"]
