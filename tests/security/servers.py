"""Loopback servers for the attack tests: a listener that counts every connection it accepts, and
a hostile origin whose pages point the fetcher at it.

Nothing here leaves 127.0.0.1: the "internal service" an attacker wants the fetcher to reach is
the counting listener, so a test can prove the guard refused (0 connections) and, in a control
case with private addresses allowed, that the same request would have reached it (> 0).
"""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from tests.sites import PHOTO_PNG, SITE_CSS


class _CountingServer(ThreadingHTTPServer):
    daemon_threads = True

    def verify_request(self, request, client_address) -> bool:
        # Called once per accepted connection, before any byte is read: a TCP connect counts.
        with self.lock:
            self.connections += 1
        return True


class _ListenerHandler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802 - the stdlib's name
        # Answers like the internal service it stands for, so allowed fetches succeed.
        path = urlsplit(self.path).path
        if path.endswith(".css"):
            body, kind = SITE_CSS, "text/css"
        elif path.endswith(".png"):
            body, kind = PHOTO_PNG, "image/png"
        else:
            body, kind = b"<html><title>internal secret</title><p>metadata</p></html>", "text/html"
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class CountingListener:
    """An HTTP server on 127.0.0.1 standing for an internal service; counts TCP connections."""

    def __init__(self):
        self.server = _CountingServer(("127.0.0.1", 0), _ListenerHandler)
        self.server.lock = threading.Lock()
        self.server.connections = 0
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def connections(self) -> int:
        """TCP connections accepted so far."""
        return self.server.connections

    def close(self) -> None:
        """Stop listening."""
        self.server.shutdown()
        self.server.server_close()


def trap_page(listener_port: int) -> bytes:
    """A page whose every requisite form (link, img, srcset, @import, url(), icon, a redirecting
    stylesheet) leads to the listener at 127.0.0.1, the same host as the origin."""
    inner = f"http://127.0.0.1:{listener_port}"
    return f"""<!doctype html><html><head><title>Trap</title>
<link rel="stylesheet" href="{inner}/link.css">
<link rel="icon" href="{inner}/icon.png">
<link rel="stylesheet" href="/redirect?to={inner}/redirected.css">
<style>@import url({inner}/import.css); body {{ background: url({inner}/bg.png) }}</style>
</head><body><article><h1>Trap</h1>
<img src="{inner}/img.png" srcset="{inner}/srcset.png 2x" alt="x">
<img src="/redirect?to={inner}/redirected.png" alt="y">
<p style="background-image: url('{inner}/style.png')">A paragraph long enough to be kept as a
fragment of this hostile page, which tries to reach an internal service.</p>
</article></body></html>""".encode()


class _OriginHandler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802 - the stdlib's name
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        if parts.path == "/redirect":  # one hop to wherever ?to= says
            return self._send(302, b"", {"Location": query["to"][0]})
        if parts.path == "/chain":  # a harmless first redirect, then /redirect: the 3rd hop
            target = "/redirect?to=" + query["to"][0]
            return self._send(301, b"", {"Location": target})
        if parts.path == "/trap.html":
            return self._send(200, trap_page(int(query["port"][0])))
        return self._send(404, b"not here")

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)


class HostileOrigin:
    """A page server on 127.0.0.1 that the tests allow-list by exact host:port
    (``SAMIZDAT_FETCH_ALLOW_HOSTS``), so what it redirects to or embeds is still guarded."""

    def __init__(self):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _OriginHandler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def endpoint(self) -> str:
        """``127.0.0.1:<port>``, as ``fetch_allow_hosts`` lists it."""
        return f"127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        """The absolute URL of ``path`` here."""
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()


class Pproxy:
    """A real pproxy process on loopback: an HTTP proxy, or SOCKS5 that resolves names itself."""

    def __init__(self, kind: str):
        import socket
        import subprocess
        import sys
        import time

        from tests.services import free_port, stop_process

        port = free_port()
        listen = "http" if kind == "http" else "socks5"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pproxy", "-l", f"{listen}://127.0.0.1:{port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        self.url = f"{kind}://127.0.0.1:{port}"
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        stop_process(self.proc)
        raise RuntimeError(f"pproxy ({kind}) did not start on port {port}")

    def close(self) -> None:
        """Stop the proxy process."""
        from tests.services import stop_process

        stop_process(self.proc)


class TricklingServer:
    """A hostile HTTP server on 127.0.0.1 that never stops sending, one byte at a time.

    ``/headers`` trickles an endless header line, ``/length`` a body under a large
    Content-Length, ``/chunked`` a chunked body of one-byte chunks. Each connection gives up
    after ``give_up`` seconds, so a fetch that waits for it ends one way or another. ``/quick``
    answers at once and keeps the connection open for the next request; ``connections`` counts
    the connections accepted.
    """

    QUICK = b"body { color: black }"

    def __init__(self, interval: float = 0.5, give_up: float = 15.0):
        self.interval = interval
        self.give_up = give_up
        self.connections = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        """The absolute URL of ``path`` here."""
        return f"http://127.0.0.1:{self.port}{path}"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return  # closed
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                buffered = b""
                while True:
                    while b"\r\n\r\n" not in buffered:
                        data = conn.recv(4096)
                        if not data:
                            return
                        buffered += data
                    request, _, buffered = buffered.partition(b"\r\n\r\n")
                    path = urlsplit(request.split(b" ", 2)[1].decode()).path
                    if path != "/quick":
                        return self._trickle(conn, path)
                    conn.sendall(
                        b"HTTP/1.1 200 OK\r\nContent-Type: text/css\r\n"
                        b"Content-Length: %d\r\n\r\n%s" % (len(self.QUICK), self.QUICK)
                    )
            except OSError:
                return  # the client hung up: what a bounded fetch does

    def _trickle(self, conn: socket.socket, path: str) -> None:
        head, drip = {
            "/headers": (b"HTTP/1.1 200 OK\r\nContent-Type: text/css\r\nX-Slow: ", b"a"),
            "/length": (
                b"HTTP/1.1 200 OK\r\nContent-Type: text/css\r\nContent-Length: 1000000\r\n\r\n",
                b"a",
            ),
            "/chunked": (
                b"HTTP/1.1 200 OK\r\nContent-Type: text/css\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n",
                b"1\r\na\r\n",
            ),
        }[path]
        ends = time.monotonic() + self.give_up
        conn.sendall(head)
        while time.monotonic() < ends:
            time.sleep(self.interval)
            conn.sendall(drip)

    def close(self) -> None:
        """Stop accepting connections."""
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
        except OSError:
            pass
        self.listener.close()
