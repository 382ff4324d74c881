"""The recording proxy: warcprox, in-process, one per capture, behind the SSRF guard.

Chromium sends every request of a page here (``--proxy-server``); warcprox forwards it and
writes the request and the response, byte for byte as they crossed the wire, into a gzipped
WARC under ``warc_dir``. HTTPS is intercepted with a CA made for this capture alone (its
certificate is ``endpoint.ca_cert_path``; its key never leaves a private temporary directory
and is deleted when the capture ends).

Why one in-process proxy per capture: the stats, limits and refusals then belong to exactly one
page, the WARC is complete and closed when the ``with`` block ends, and nothing one hostile page
leaves behind (pooled upstream connections, warcprox's cache of failing hosts, a half-written
record) reaches the next capture. Threads, not a subprocess: the guard must sit inside warcprox
(at the socket it opens), which a subprocess would not let us reach without forking warcprox's
CLI; starting a proxy costs one RSA key for the CA (a fraction of a second), small beside a page.

What the page can no longer do through warcprox: send ``Warcprox-Meta`` (it could route records
to another prefix, or set warcprox's own limits and blocks), call ``WARCPROX_WRITE_RECORD`` or
``PUTMETA`` (it could write records of its choosing), or read ``/status``.
"""

from __future__ import annotations

import logging
import secrets
import shutil
import socket
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

import warcprox
import warcprox.controller
import warcprox.warcproxy
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from urllib3.connection import HTTPConnection
from urllib3.connectionpool import HTTPConnectionPool

from browser.guard import PROXIED_SCHEMES, ConnectionGuard, refusal
from browser.records import ProxyEndpoint, ProxyLimits, ProxyStats
from config.settings import Settings
from samizdat.addresses import address_is_public, allow_any_address
from samizdat.errors import FetchError

log = logging.getLogger(__name__)

# A page that keeps asking after its limit is refused every time; the list keeps the first ones.
MAX_REFUSALS_KEPT = 200
UPSTREAM_SOCKET_TIMEOUT = 30.0  # silence between two bytes from a server
WARC_SUFFIXES = (".warc.gz", ".warc")


class OutsideRootError(ValueError):
    """A file the proxy would write, or did write, is not under its WARC directory."""


class _Capture:
    """The shared, locked state of one capture: limits, counters, refusals."""

    def __init__(self, limits: ProxyLimits):
        self.limits = limits
        self.stats = ProxyStats()
        self.lock = threading.Lock()

    def refuse(self, entry: str) -> None:
        with self.lock:
            self.stats.refused_count += 1
            if len(self.stats.refused) < MAX_REFUSALS_KEPT:
                self.stats.refused.append(entry)

    def admit(self) -> int | None:
        """Count one request and give its byte budget; None when a limit has ended the capture."""
        with self.lock:
            s, lim = self.stats, self.limits
            if s.ended_by is None and s.requests >= lim.max_requests:
                s.ended_by = "max_requests"
            if s.ended_by is None and s.bytes >= lim.max_bytes:
                s.ended_by = "max_bytes"
            if s.ended_by is not None:
                return None
            s.requests += 1
            return min(lim.max_response_bytes, lim.max_bytes - s.bytes)

    def account(self, url: str, size: int, truncated: bytes | None) -> None:
        """Add one response's bytes (as read from the wire, headers included)."""
        with self.lock:
            self.stats.bytes += size
            if truncated:
                self.stats.truncated.append(f"{url} {truncated.decode('ascii', 'replace')}")
            if self.stats.ended_by is None and self.stats.bytes >= self.limits.max_bytes:
                self.stats.ended_by = "max_bytes"


def _guarded_pool_class(guard: ConnectionGuard) -> type[HTTPConnectionPool]:
    """A urllib3 pool whose every new socket comes from ``guard.connect`` (resolve once)."""

    class GuardedConnection(HTTPConnection):
        def _new_conn(self) -> socket.socket:
            timeout = self.timeout if isinstance(self.timeout, int | float) else None
            return guard.connect(self._dns_host, self.port, timeout)

    return type("GuardedPool", (HTTPConnectionPool,), {"ConnectionCls": GuardedConnection})


class _RecordingHandler(warcprox.warcproxy.WarcProxyHandler):
    """warcprox's handler with the guard, the limits, and the page kept away from warcprox's
    own controls. ``self.server.samizdat`` is the capture's :class:`_Capture`."""

    allow_localhost = True  # the guard decides by the policy; loopback is refused there
    _socket_timeout = UPSTREAM_SOCKET_TIMEOUT

    @property
    def _capture(self) -> _Capture:
        return self.server.samizdat

    def _refuse(self, code: int, host: str, port: int | str, reason: str) -> None:
        self._capture.refuse(refusal(host, port, reason))
        self.send_error(code, f"refused by Samizdat's recording proxy: {reason}")

    def _parse_warcprox_meta(self) -> None:
        return None  # Warcprox-Meta is the page's to send, never ours to obey

    def _enforce_limits_and_blocks(self) -> None:
        pass  # warcprox's Warcprox-Meta limits and blocks: ours are in _Capture instead

    def do_GET(self) -> None:
        self.do_COMMAND()  # no /status page: the browser gets proxying or a refusal

    def do_WARCPROX_WRITE_RECORD(self, warc_type: str | None = None) -> None:
        self._refuse(405, *self._target(), "warcprox_method")

    def do_PUTMETA(self) -> None:
        self._refuse(405, *self._target(), "warcprox_method")

    def _target(self) -> tuple[str, int | str]:
        if self.is_connect:
            return self.hostname, self.port
        parts = urlsplit(self.path)
        try:
            return parts.hostname or "", parts.port or 80
        except ValueError:
            return parts.hostname or "", "?"

    def _connect_to_remote_server(self) -> socket.socket:
        try:
            return super()._connect_to_remote_server()
        except FetchError as exc:
            self._refuse(403, self.hostname, self.port, exc.reason)
            raise warcprox.RequestBlockedByRule(exc.reason) from None

    def do_CONNECT(self) -> None:
        # Connect upstream before answering 200, so a refused tunnel (HTTPS, ws://, wss://) is
        # refused here, once, with the address checked by the same lookup that connects.
        self.is_connect = True
        try:
            self._determine_host_port()
        except Exception:  # noqa: BLE001 - any malformed CONNECT target
            self.send_error(400, "unusable CONNECT target")
            return
        if self._capture.stats.ended_by is not None:
            self._refuse(403, self.hostname, self.port, f"limit:{self._capture.stats.ended_by}")
            return
        try:
            self._connect_to_remote_server()
        except warcprox.RequestBlockedByRule:
            return
        except Exception as exc:  # noqa: BLE001 - the upstream failed; tell the browser
            log.info("CONNECT %s:%s failed: %r", self.hostname, self.port, exc)
            self.send_error(502, "cannot reach the server")
            return
        # The tunnelled request takes this checked connection back out of the pool.
        self._conn_pool._put_conn(self._remote_server_conn)
        super().do_CONNECT()

    def do_COMMAND(self) -> None:
        if not self.is_connect:
            parts = urlsplit(self.path)
            host, port = self._target()
            if parts.scheme.lower() not in PROXIED_SCHEMES:
                self._refuse(403, host, port, f"scheme:{parts.scheme.lower() or 'none'}")
                return
            if port == "?" or not host:
                self._refuse(400, host, port, "bad_url")
                return
        budget = self._capture.admit()
        if budget is None:
            self._refuse(403, *self._target(), f"limit:{self._capture.stats.ended_by}")
            return
        # warcprox cuts a response once it has read more than this (checked every 64 KiB read)
        # and marks the record WARC-Truncated: length.
        self._max_resource_size = max(budget, 1)
        super().do_COMMAND()

    def _proxy_request(self):  # noqa: ANN202 - warcprox's RecordedUrl
        recorded = super()._proxy_request()
        self._capture.account(str(self.url), recorded.size, recorded.truncated)
        return recorded


class RecordingProxy:
    """A warcprox for one capture: ``with RecordingProxy(...) as proxy:`` point Chromium at
    ``proxy.endpoint``; after the block, ``proxy.warc_paths`` are the finished WARC files and
    ``proxy.stats`` says what happened."""

    def __init__(
        self,
        warc_dir: Path,
        allow_address: Callable[[str], bool],
        limits: ProxyLimits,
        allow_hosts: frozenset[str] = frozenset(),
    ):
        """``allow_address`` judges every resolved address (``address_is_public`` in production);
        ``allow_hosts`` are ``host:port`` pairs allowed whatever they resolve to."""
        self.warc_dir = Path(warc_dir)
        self.limits = limits
        self.guard = ConnectionGuard(allow_address, allow_hosts)
        self.prefix = f"capture-{secrets.token_hex(6)}"
        self._capture = _Capture(limits)
        self._controller: warcprox.controller.WarcproxController | None = None
        self._ca_dir: Path | None = None
        self._endpoint: ProxyEndpoint | None = None
        self._warc_paths: list[Path] = []

    @classmethod
    def for_settings(
        cls, settings: Settings, warc_dir: Path, limits: ProxyLimits
    ) -> RecordingProxy:
        """The proxy with the fetcher's policy: SAMIZDAT_FETCH_ALLOW_PRIVATE and _ALLOW_HOSTS."""
        allow = allow_any_address if settings.fetch_allow_private else address_is_public
        hosts = frozenset(i.strip() for i in settings.fetch_allow_hosts.split(",") if i.strip())
        return cls(warc_dir, allow, limits, hosts)

    @property
    def stats(self) -> ProxyStats:
        """Requests, bytes, refusals and the limit that ended the capture (live while open)."""
        return self._capture.stats

    @property
    def endpoint(self) -> ProxyEndpoint:
        """Where Chromium connects, and the CA certificate it must trust (or ignore errors of)."""
        if self._endpoint is None:
            raise RuntimeError("the recording proxy is not running")
        return self._endpoint

    @property
    def warc_paths(self) -> list[Path]:
        """The WARC files this proxy wrote, complete once the ``with`` block has ended."""
        return list(self._warc_paths)

    def _root(self) -> Path:
        self.warc_dir.mkdir(parents=True, exist_ok=True)
        return self.warc_dir.resolve(strict=True)

    def __enter__(self) -> RecordingProxy:
        root = self._root()
        self._ca_dir = Path(tempfile.mkdtemp(prefix="samizdat-proxy-ca-"))
        ca_file = self._ca_dir / "ca.pem"
        options = warcprox.Options(
            address="127.0.0.1",
            port=0,
            directory=str(root),
            prefix=self.prefix,
            gzip=True,
            cacert=str(ca_file),
            certs_dir=str(self._ca_dir / "certs"),
            dedup_db_file="/dev/null",
            stats_db_file="/dev/null",
            rollover_size=2 * self.limits.max_bytes + (1 << 20),
            max_threads=24,
            queue_size=max(self.limits.max_requests, 100),
            fetch_timeout=self.limits.max_response_seconds,
        )
        try:
            controller = warcprox.controller.WarcproxController(options)
            server = controller.proxy
            server.RequestHandlerClass = _RecordingHandler
            server.samizdat = self._capture
            server.remote_connection_pool.pool_classes_by_scheme = {
                "http": _guarded_pool_class(self.guard)
            }
            controller.start()
        except BaseException:
            shutil.rmtree(self._ca_dir, ignore_errors=True)
            raise
        self._controller = controller
        cert = x509.load_pem_x509_certificate(ca_file.read_bytes())
        cert_path = self._ca_dir / "ca-cert.pem"
        cert_path.write_bytes(cert.public_bytes(Encoding.PEM))
        self._endpoint = ProxyEndpoint("127.0.0.1", server.server_address[1], cert_path)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop the proxy, finish the WARC, delete the CA; safe to call twice."""
        controller, self._controller = self._controller, None
        if controller is not None:
            # warcprox's writer thread drains its queue and closes (renames) the WARC files.
            controller.shutdown()
            self._warc_paths = self._collect()
        if self._ca_dir is not None:
            shutil.rmtree(self._ca_dir, ignore_errors=True)
            self._ca_dir = None
        self._endpoint = None

    def _collect(self) -> list[Path]:
        """This capture's finished WARCs, each checked to lie inside the WARC directory."""
        root = self._root()
        found = []
        for path in sorted(root.iterdir()):
            if not (path.name.startswith(self.prefix + "-") and path.name.endswith(WARC_SUFFIXES)):
                continue
            if path.is_symlink() or not path.resolve().is_relative_to(root):
                raise OutsideRootError(f"{path} is not a file under {root}; refused")
            found.append(path)
        return found
