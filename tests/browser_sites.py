"""Loopback fixtures for the recording proxy's tests: a small site and counting listeners.

The site (:class:`ProxySite`) serves a page with subresources (stylesheet, image, script, and
JSON the script fetches after load), redirects to any URL, a decompression bomb, large bodies,
and "attack" pages whose script reaches for the targets a test chooses, by fetch, by image, by
redirect and by WebSocket. A :class:`CountingListener` stands where an attacker would aim (other
loopback addresses, other ports) and counts every TCP connection it accepts: the proof that the
guard stopped a request is that count staying at 0.
"""

from __future__ import annotations

import gzip
import html
import ipaddress
import ssl
import json
import socket
import sys
import threading
import zlib
from datetime import datetime, timedelta, timezone
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

# A 1x1 transparent PNG.
PIXEL_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)
BOMB_UNPACKED = 1 << 30  # the bomb inflates to 1 GiB of zeros


@cache
def gzip_bomb() -> bytes:
    """1 GiB of zeros, gzipped (about 4.5 MiB on the wire); built once per test session.

    Level 1: level 9 packs it to 1 MiB but takes several times longer to build."""
    packer = zlib.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = bytes(1 << 24)
    parts = [packer.compress(chunk) for _ in range(BOMB_UNPACKED >> 24)]
    parts.append(packer.flush())
    return b"".join(parts)


PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Recorded page</title>
<link rel="stylesheet" href="/style.css"></head>
<body><h1>Recorded page</h1><img src="/pixel.png" alt=""><p id="filled">waiting</p>
<script src="/app.js"></script></body></html>"""

APP_JS = """fetch('/data.json').then(r => r.json()).then(d => {
  document.getElementById('filled').textContent = d.text;
  document.title = 'done';
});"""

# Reaches for every target in every way a page can; the title says when all have settled.
ATTACK = """<!doctype html><html><head><meta charset="utf-8"><title>attacking</title></head>
<body><script>
const targets = %s;
const tries = [];
for (const url of targets.fetch) {
  tries.push(fetch(url, {mode: 'no-cors'}).catch(() => null));
}
for (const url of targets.image) {
  tries.push(new Promise(done => { const i = new Image(); i.onload = i.onerror = done; i.src = url; }));
}
for (const url of targets.websocket) {
  tries.push(new Promise(done => {
    try {
      const ws = new WebSocket(url);
      ws.onopen = ws.onerror = ws.onclose = () => done();
    } catch (e) { done(); }
  }));
}
Promise.all(tries).then(() => { document.title = 'done'; });
</script></body></html>"""


class _Handler(BaseHTTPRequestHandler):
    server: ProxySite
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def _send(self, status: int, body: bytes, content_type: str, **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        with self.server.lock:
            self.server.hits.append(parts.path)
        if parts.path == "/page":
            self._send(200, PAGE.encode(), "text/html; charset=utf-8")
        elif parts.path == "/style.css":
            self._send(200, b"h1 { color: #333; }", "text/css")
        elif parts.path == "/pixel.png":
            self._send(200, PIXEL_PNG, "image/png")
        elif parts.path == "/app.js":
            self._send(200, APP_JS.encode(), "application/javascript")
        elif parts.path == "/data.json":
            self._send(200, json.dumps({"text": "filled by script"}).encode(), "application/json")
        elif parts.path == "/redirect":
            self._send(302, b"", "text/plain", Location=query["to"][0])
        elif parts.path == "/attack":
            body = ATTACK % html.escape(json.dumps(self.server.attack_targets), quote=False)
            self._send(200, body.encode(), "text/html; charset=utf-8")
        elif parts.path == "/bomb":
            self._send(200, gzip_bomb(), "text/plain", Content_Encoding="gzip")
        elif parts.path == "/bomb-page":
            page = '<!doctype html><title>bomb</title><script src="/bomb"></script><p>after</p>'
            self._send(200, page.encode(), "text/html; charset=utf-8")
        elif parts.path == "/big":
            self._send(200, bytes(int(query["n"][0])), "application/octet-stream")
        elif parts.path == "/small":
            self._send(200, gzip.compress(b"small"), "text/plain", Content_Encoding="gzip")
        else:
            self._send(404, b"not here", "text/plain")


class ProxySite(ThreadingHTTPServer):
    """The fixture site on ``127.0.0.1:<free port>``; ``hits`` lists the paths it served."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.hits: list[str] = []
        self.attack_targets: dict[str, list[str]] = {"fetch": [], "image": [], "websocket": []}
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return self.server_address[1]

    @property
    def endpoint(self) -> str:
        """``127.0.0.1:<port>``, as SAMIZDAT_FETCH_ALLOW_HOSTS lists it."""
        return f"127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def handle_error(self, request, client_address) -> None:
        """A client (the proxy) hanging up mid-body is what the limit tests expect: stay quiet."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


def self_signed_context(directory: Path) -> ssl.SSLContext:
    """A server TLS context for 127.0.0.1 with a throwaway self-signed certificate."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    pem = directory / "site.pem"
    pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        + cert.public_bytes(serialization.Encoding.PEM)
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pem)
    return context


class TlsProxySite(ProxySite):
    """The same site over HTTPS (self-signed), to prove CONNECT tunnels are recorded."""

    def __init__(self, directory: Path) -> None:
        self.tls = self_signed_context(directory)
        super().__init__()

    def get_request(self):
        sock, address = super().get_request()
        return self.tls.wrap_socket(sock, server_side=True), address

    def url(self, path: str) -> str:
        return f"https://127.0.0.1:{self.port}{path}"


class CountingListener:
    """A TCP listener on ``host`` (a free port) that counts the connections it accepts."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.sock = socket.create_server((host, 0))
        self.host = host
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()

    def url(self, scheme: str = "http", host: str | None = None) -> str:
        return f"{scheme}://{host or self.host}:{self.port}/secret"

    def close(self) -> None:
        self._stop = True
        self.sock.close()
