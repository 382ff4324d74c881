"""The fetcher: one bounded, SSRF-guarded HTTP fetch of one page.

Every connection is checked after DNS resolution and before connecting, so neither a hostname
pointing at a private address nor a redirect to one reaches the inside of the network (unless
``fetch_allow_private`` is set, or the exact host:port is listed in ``fetch_allow_hosts``).

A fetch ends by its wall-clock deadline whatever the server does: socket timeouts bound only
the silence between two bytes, so a server trickling one byte a second would never trip them.
Each request's sockets are watched by a timer that shuts them down when the deadline passes.
"""

from __future__ import annotations

import io
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from urllib.parse import urljoin, urlsplit

import urllib3
from urllib3 import connection as u3conn
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ProtocolError,
    ProxyError,
    ReadTimeoutError,
    SSLError,
)
from urllib3.util import connection as u3util

from config.settings import Settings, endpoint_key
from mirror.charset import detect_charset
from mirror.urls import normalize_url
from samizdat.addresses import (
    address_is_public,
    allow_any_address,
    check_proxied_host,
    resolve_allowed,
)
from samizdat.errors import FetchError, InvalidURLError

REDIRECT_CODES = {301, 302, 303, 307, 308}
TEXT_TYPES = {"", "application/xhtml+xml", "application/xml"}
CHUNK = 64 * 1024


@dataclass(frozen=True)
class Hop:
    """One request of a fetch and the response to it, as sent and as received.

    ``body`` is the entity body as it arrived (transfer coding removed, Content-Encoding kept):
    what a WARC response record stores, so its digests match the bytes the server sent.
    """

    url: str
    started_at: datetime  # when the request was sent, in UTC: the WARC-Date of its records
    request_headers: dict[str, str]
    status: int
    reason: str
    http_version: str  # "HTTP/1.1", as the server answered
    headers: list[tuple[str, str]]  # as received, repeated headers (Set-Cookie) kept
    body: bytes

    def header(self, name: str) -> str:
        """Response header ``name`` (any case), repeated fields joined with ", " as HTTP (and
        urllib3) read them; "" when absent."""
        return ", ".join(v for k, v in self.headers if k.lower() == name.lower())


@dataclass
class FetchResult:
    """What one successful fetch returned: ``body`` is decoded, ``hops`` hold what was received."""

    url: str
    final_url: str
    status: int
    headers: dict[str, str]
    content_type: str
    charset: str | None
    body: bytes
    elapsed: float
    redirects: list[str] = field(default_factory=list)
    reason: str = ""
    request_headers: dict[str, str] = field(default_factory=dict)
    charset_source: str = ""
    # Every request of the fetch in order, redirects first and the final response last.
    hops: list[Hop] = field(default_factory=list)


class _DeadlineWatch:
    """Shuts down the sockets of one request when its wall-clock deadline passes.

    Shutting a socket down wakes a thread blocked reading it, at any stage: TLS handshake,
    proxy tunnel, status line, headers, body. The watch keeps its own duplicate of each socket
    (``shutdown`` acts on the connection, whichever descriptor names it), so it still reaches
    the connection once TLS has taken over the original, and never touches a descriptor that
    the fetch has closed and the process has reused for something else.
    """

    def __init__(self, deadline: float):
        self.expired = False
        self._lock = threading.Lock()
        self._armed = True
        self._twins: list[socket.socket] = []
        self._timer = threading.Timer(max(0.0, deadline - time.monotonic()), self._expire)
        self._timer.daemon = True
        self._timer.start()

    def add(self, sock: socket.socket) -> None:
        """Watch ``sock`` (shut down at once if the deadline has already passed)."""
        try:
            fd = os.dup(sock.fileno())
        except OSError:
            return  # already closed: nothing left to stop
        twin = socket.socket(sock.family, sock.type, sock.proto, fileno=fd)
        with self._lock:
            if not self._armed:
                twin.close()
                return
            self._twins.append(twin)
            if self.expired:
                _shut_down(twin)

    def _expire(self) -> None:
        with self._lock:
            if not self._armed:
                return
            self.expired = True
            for twin in self._twins:
                _shut_down(twin)

    def disarm(self) -> None:
        """Stop watching; called before the connection may return to the pool for another fetch."""
        self._timer.cancel()
        with self._lock:
            self._armed = False
            twins, self._twins = self._twins, []
        for twin in twins:
            twin.close()


def _shut_down(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed by the peer or the fetch: nothing left to stop


# The watch of the request this thread is making: the connection pool is shared by every
# thread of the process, and only the thread that sends a request knows its deadline.
_current = threading.local()


def _watch(sock: socket.socket | None) -> None:
    watch = getattr(_current, "watch", None)
    if watch is not None and sock is not None:
        watch.add(sock)


class _DeadlineConnectionMixin:
    """Puts every socket a request uses under the requesting thread's deadline watch."""

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        _watch(sock)  # a fresh connection, before its TLS handshake or proxy tunnel
        return sock

    def request(self, *args, **kwargs):
        _watch(self.sock)  # a pooled connection, reused: it never goes through _new_conn
        return super().request(*args, **kwargs)


class _GuardedConnectionMixin:
    """Resolves and checks the destination itself, then connects to a checked address only."""

    allow_address: Callable[[str], bool] = staticmethod(address_is_public)
    allowed_endpoints: frozenset[tuple[str, int]] = frozenset()

    def _new_conn(self) -> socket.socket:
        policy = self.allow_address
        if endpoint_key(self._dns_host, self.port) in self.allowed_endpoints:
            policy = allow_any_address  # listed exactly, as written: the operator vouched for it
        infos = resolve_allowed(self._dns_host, self.port, policy)
        last_error: OSError | None = None
        for family, socktype, proto, _name, sockaddr in infos:
            sock = socket.socket(family, socktype, proto)
            try:
                u3util._set_socket_options(sock, self.socket_options)
                if self.timeout is not None:
                    sock.settimeout(self.timeout)
                sock.connect(sockaddr)
                return sock
            except TimeoutError as exc:
                sock.close()
                raise ConnectTimeoutError(self, f"connection to {self.host} timed out") from exc
            except OSError as exc:
                sock.close()
                last_error = exc
        raise NewConnectionError(self, f"Failed to establish a new connection: {last_error}")


def _guarded_pool_classes(
    allow_address: Callable[[str], bool], allowed_endpoints: frozenset[tuple[str, int]]
) -> dict[str, type]:
    policy = {"allow_address": staticmethod(allow_address), "allowed_endpoints": allowed_endpoints}
    guarded_http = type(
        "GuardedHTTPConnection", (_GuardedConnectionMixin, u3conn.HTTPConnection), policy
    )
    guarded_https = type(
        "GuardedHTTPSConnection", (_GuardedConnectionMixin, u3conn.HTTPSConnection), policy
    )
    return {
        "http": type("GuardedHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": guarded_http}),
        "https": type("GuardedHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": guarded_https}),
    }


def _with_deadlines(pool_classes: dict[str, type]) -> dict[str, type]:
    """The same pools, whose connections (direct, to an HTTP proxy or SOCKS) obey the deadline."""
    watched = {}
    for scheme, pool in pool_classes.items():
        connection = pool.ConnectionCls
        watched_connection = type(
            f"Deadline{connection.__name__}", (_DeadlineConnectionMixin, connection), {}
        )
        watched[scheme] = type(
            f"Deadline{pool.__name__}", (pool,), {"ConnectionCls": watched_connection}
        )
    return watched


def _proxy_manager(proxy: str) -> urllib3.PoolManager:
    """A pool manager that sends every request through ``proxy`` (HTTP or SOCKS)."""
    if proxy.startswith("socks"):
        from urllib3.contrib.socks import SOCKSProxyManager

        return SOCKSProxyManager(proxy, num_pools=20, maxsize=4, retries=False)
    return urllib3.ProxyManager(proxy, num_pools=20, maxsize=4, retries=False)


def _parse_content_type(value: str) -> tuple[str, str | None]:
    """Split a Content-Type header into the media type and the charset parameter."""
    if not value:
        return "", None
    media, _, params = value.partition(";")
    charset = None
    for param in params.split(";"):
        key, _, val = param.strip().partition("=")
        if key.strip().lower() == "charset" and val.strip():
            charset = val.strip().strip("\"'").lower()
    return media.strip().lower(), charset


def _http_version(version: int) -> str:
    """The protocol the server answered with (http.client's 10 or 11) as a status line has it.

    Not urllib3's ``version_string``: that is the version the client asked with."""
    return f"HTTP/{version // 10}.{version % 10}" if version else "HTTP/1.1"


class Fetcher:
    """Fetches pages within the configured time, size and redirect bounds."""

    def __init__(self, settings: Settings, allow_address: Callable[[str], bool] | None = None):
        """``allow_address`` overrides the address policy (default: public addresses only)."""
        self.settings = settings
        if allow_address is None:
            allow_address = allow_any_address if settings.fetch_allow_private else address_is_public
        self.allow_address = allow_address
        self.proxied = bool(settings.fetch_proxy)
        if self.proxied:
            # Through a proxy (Tor, say) the proxy resolves and connects, so local DNS is never
            # consulted (no leak); _check_proxied_target refuses what can be refused up front.
            self.pool = _proxy_manager(settings.fetch_proxy)
        else:
            self.pool = urllib3.PoolManager(num_pools=20, maxsize=4, retries=False)
            # Swap in guarded connection pools so every socket goes through resolve_allowed().
            self.pool.pool_classes_by_scheme = _guarded_pool_classes(
                allow_address, settings.fetch_allowed_endpoints
            )
        self.pool.pool_classes_by_scheme = _with_deadlines(self.pool.pool_classes_by_scheme)

    def fetch(self, url: str, deadline: float | None = None) -> FetchResult:
        """Fetch ``url``, following at most ``fetch_max_redirects`` redirects, and give up at
        ``fetch_timeout`` seconds of wall clock, or at ``deadline`` (``time.monotonic()``) if
        that comes first.

        Raises FetchError with a short ``reason`` (dns, refused, blocked_address, timeout,
        http_error, redirect_loop, too_many_redirects, too_large, tls, connection).
        """
        s = self.settings
        started = time.monotonic()
        own = started + s.fetch_timeout
        deadline = own if deadline is None else min(own, deadline)
        requested = current = normalize_url(url)
        seen = {current}
        redirects: list[str] = []
        hops: list[Hop] = []
        # The bodies of every hop, as received, together stay within the cap: they are all kept.
        stored = 0
        while True:
            hop = self._hop(current, deadline, s.fetch_max_bytes - stored)
            hops.append(hop)
            stored += len(hop.body)
            if hop.status in REDIRECT_CODES:
                location = hop.header("Location")
                if not location:
                    raise FetchError("http_error", f"HTTP {hop.status} without a Location")
                try:
                    target = normalize_url(urljoin(current, location))
                except InvalidURLError as exc:
                    raise FetchError("bad_redirect", f"redirect to an unusable URL: {exc}") from None
                if target in seen:
                    raise FetchError("redirect_loop", f"redirect loop back to {target}")
                if len(redirects) >= s.fetch_max_redirects:
                    raise FetchError(
                        "too_many_redirects", f"more than {s.fetch_max_redirects} redirects"
                    )
                seen.add(target)
                redirects.append(target)
                current = target
                continue
            break
        body = self._decode(hop.body, hop.header("Content-Encoding"), deadline)
        content_type, header_charset = _parse_content_type(hop.header("Content-Type"))
        charset, charset_source = None, ""
        if content_type in TEXT_TYPES or content_type.startswith("text/"):
            charset, charset_source = detect_charset(body, header_charset)
        return FetchResult(
            url=requested,
            final_url=current,
            status=hop.status,
            headers=dict(hop.headers),
            content_type=content_type,
            charset=charset,
            body=body,
            elapsed=time.monotonic() - started,
            redirects=redirects,
            reason=hop.reason,
            request_headers=hop.request_headers,
            charset_source=charset_source,
            hops=hops,
        )

    def _check_proxied_target(self, url: str) -> None:
        """With a proxy, refuse literal private addresses and local names before any request."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        if endpoint_key(host, port) in self.settings.fetch_allowed_endpoints:
            return
        check_proxied_host(host, self.allow_address, self.settings.fetch_allow_private)

    def request_headers(self) -> dict[str, str]:
        """The headers every fetch sends (also written to the WARC request record)."""
        return {
            "User-Agent": self.settings.fetch_user_agent,
            "Accept": "text/html,application/xhtml+xml,*/*;q=0.8",
            # br is decoded by urllib3 through the Brotli package (pinned in requirements.txt).
            "Accept-Encoding": "gzip, deflate, br",
        }

    def _request(self, url: str, deadline: float) -> urllib3.BaseHTTPResponse:
        s = self.settings
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise FetchError("timeout", f"no answer within {s.fetch_timeout:g} s")
        if self.proxied:
            self._check_proxied_target(url)
        timeout = urllib3.Timeout(
            connect=min(s.fetch_connect_timeout, remaining), read=remaining
        )
        headers = self.request_headers()
        try:
            return self.pool.request(
                "GET",
                url,
                headers=headers,
                timeout=timeout,
                redirect=False,
                retries=False,
                preload_content=False,
            )
        except FetchError:
            raise
        except NewConnectionError as exc:
            # Checked before the timeouts: urllib3 makes NewConnectionError a ConnectTimeoutError.
            text = str(exc).rsplit("connection: ", 1)[-1]
            reason = "refused" if "refused" in text.lower() else "connection"
            raise FetchError(reason, f"cannot connect to {url}: {text}") from None
        except (ConnectTimeoutError, ReadTimeoutError) as exc:
            raise FetchError("timeout", f"timed out fetching {url}: {exc}") from None
        except ProxyError as exc:
            raise FetchError("proxy", f"the proxy failed for {url}: {exc}") from None
        except SSLError as exc:
            raise FetchError("tls", f"TLS failure for {url}: {exc}") from None
        except (ProtocolError, HTTPError, OSError) as exc:
            raise FetchError("connection", f"connection failure for {url}: {exc}") from None

    def _hop(self, url: str, deadline: float, cap: int) -> Hop:
        """Send one request and read its response as received (at most ``cap`` body bytes).

        An error status (>= 400) raises FetchError before its body is read: it is not kept."""
        started_at = datetime.now(timezone.utc)
        watch = _DeadlineWatch(deadline)
        _current.watch = watch
        try:
            response = self._request(url, deadline)
            try:
                if response.status >= 400:
                    raise FetchError(
                        "http_error",
                        f"HTTP {response.status} from {url}",
                        status=response.status,
                        final_url=url,
                    )
                body = self._read_raw(response, deadline, cap)
            finally:
                # Disarmed before the connection can go back to the pool and to another fetch.
                watch.disarm()
                response.release_conn()
        except FetchError:
            if not watch.expired:
                raise
        finally:
            watch.disarm()
            _current.watch = None
        if watch.expired:
            # The watch cut the connection. Whatever that broke (or cut short without an error,
            # as a header section ended by the shutdown), the cause is the clock.
            limit = self.settings.fetch_timeout
            raise FetchError(
                "timeout", f"{url} did not answer in full within the time limit ({limit:g} s)"
            )
        return Hop(
            url=url,
            started_at=started_at,
            request_headers=self.request_headers(),
            status=response.status,
            reason=response.reason or "",
            http_version=_http_version(response.version),
            headers=list(response.headers.items()),
            body=body,
        )

    def _read_raw(self, response: urllib3.BaseHTTPResponse, deadline: float, cap: int) -> bytes:
        """Read the body as received (still content-encoded), at most ``cap`` bytes."""
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > cap:
            raise FetchError("too_large", f"declared body of {declared} bytes exceeds {cap}")
        return self._collect(response.stream(CHUNK, decode_content=False), cap, deadline, "body")

    def _decode(self, raw: bytes, content_encoding: str, deadline: float) -> bytes:
        """Undo the Content-Encoding of a received body, stopping at the cap (bombs included).

        urllib3 decodes from an in-memory response, so every coding it knows (gzip, deflate, br,
        chains) is handled exactly as it would be on the wire; unknown codings pass unchanged.
        """
        if content_encoding.strip().lower() in ("", "identity"):
            return raw  # nothing to undo: the same bytes, not a copy
        replay = urllib3.HTTPResponse(
            body=io.BytesIO(raw),
            headers={"Content-Encoding": content_encoding},
            preload_content=False,
            decode_content=True,
        )
        # decode_content=True counts decompressed bytes, so a gzip bomb hits the cap too.
        chunks = replay.stream(CHUNK, decode_content=True)
        return self._collect(chunks, self.settings.fetch_max_bytes, deadline, "decoded body")

    def _collect(self, chunks: Iterator[bytes], cap: int, deadline: float, what: str) -> bytes:
        """Join ``chunks``, aborting past ``cap`` bytes or the total deadline."""
        parts: list[bytes] = []
        total = 0
        try:
            for chunk in chunks:
                total += len(chunk)
                if total > cap:
                    raise FetchError("too_large", f"{what} exceeds {cap} bytes")
                if time.monotonic() > deadline:
                    raise FetchError(
                        "timeout", f"{what} not complete within {self.settings.fetch_timeout:g} s"
                    )
                parts.append(chunk)
        except FetchError:
            raise
        except ReadTimeoutError:
            raise FetchError("timeout", f"timed out reading the {what}") from None
        except (ProtocolError, HTTPError, OSError) as exc:
            raise FetchError("connection", f"{what} read failed: {exc}") from None
        return b"".join(parts)
