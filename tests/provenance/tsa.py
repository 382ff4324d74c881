"""A real RFC 3161 time-stamping authority on loopback: OpenSSL's ``ts -reply`` behind HTTP.

Each ``OpenSSLTSA`` has a throwaway root CA and a TSA certificate of its own (critical
extendedKeyUsage timeStamping), made with ``cryptography`` into a temporary directory, and an
``openssl.cnf`` whose ``[tsa]`` section OpenSSL signs with. ``ScriptedTSA`` answers with bytes a
test chooses (garbage, a truncated or foreign token, an endless stream) to test refusals.
"""

from __future__ import annotations

import datetime
import shutil
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

MAX_QUERY_BYTES = 16 * 1024

OPENSSL_CNF = """\
[ tsa ]
default_tsa = tsa_config

[ tsa_config ]
dir = {dir}
serial = $dir/serial
crypto_device = builtin
signer_cert = $dir/tsa.pem
signer_key = $dir/tsa.key
signer_digest = sha256
default_policy = 1.3.6.1.4.1.4146.2.3
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = yes
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""


def openssl_binary() -> str:
    """The path of ``openssl``; raises (the tests fail, never skip) when it is not installed."""
    path = shutil.which("openssl")
    if path is None:
        raise RuntimeError("openssl is not installed: the RFC 3161 tests need its `ts` command "
                           "(apt-get install openssl)")
    return path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _pem(path: Path, data: bytes) -> None:
    path.write_bytes(data)


def make_tsa_certificates(directory: Path, name: str) -> tuple[x509.Certificate, x509.Certificate]:
    """Write ``ca.pem``, ``tsa.pem`` and ``tsa.key`` under ``directory``; return (root, TSA cert)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = now - datetime.timedelta(days=1), now + datetime.timedelta(days=30)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca = (x509.CertificateBuilder().subject_name(_name(f"{name} root")).issuer_name(_name(f"{name} root"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(start).not_valid_after(end)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                       key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, key_cert_sign=True, crl_sign=True,
                                       encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    tsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    tsa = (x509.CertificateBuilder().subject_name(_name(name)).issuer_name(ca.subject)
           .public_key(tsa_key.public_key()).serial_number(x509.random_serial_number())
           .not_valid_before(start).not_valid_after(end)
           .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
           .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=True,
                                        key_encipherment=False, data_encipherment=False,
                                        key_agreement=False, key_cert_sign=False, crl_sign=False,
                                        encipher_only=False, decipher_only=False), critical=True)
           # RFC 3161 §2.3: the TSA's certificate has exactly this purpose, marked critical.
           .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
           .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                          critical=False)
           .sign(ca_key, hashes.SHA256()))
    _pem(directory / "ca.pem", ca.public_bytes(serialization.Encoding.PEM))
    _pem(directory / "tsa.pem", tsa.public_bytes(serialization.Encoding.PEM))
    _pem(directory / "tsa.key", tsa_key.private_bytes(serialization.Encoding.PEM,
                                                      serialization.PrivateFormat.PKCS8,
                                                      serialization.NoEncryption()))
    return ca, tsa


class _Server:
    """A threaded HTTP server on 127.0.0.1 with a handler bound to ``self``."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        owner = self

        class Bound(handler):  # type: ignore[misc, valid-type]
            tsa = owner

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Bound)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/tsr"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()

    def restart(self) -> None:
        """Serve again at the same address after :meth:`close` (a TSA back from an outage)."""
        self.server = ThreadingHTTPServer(self.server.server_address, self.server.RequestHandlerClass)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()


class _Handler(BaseHTTPRequestHandler):
    tsa: _Server

    def log_message(self, format, *args):  # noqa: A002 - http.server's signature
        pass

    def _query(self) -> bytes | None:
        length = int(self.headers.get("Content-Length") or 0)
        if not 0 < length <= MAX_QUERY_BYTES:
            self.send_error(400, "bad query length")
            return None
        return self.rfile.read(length)

    def _reply(self, body: bytes, announce: int | None = None) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/timestamp-reply")
        self.send_header("Content-Length", str(len(body) if announce is None else announce))
        self.end_headers()
        self.wfile.write(body)


class _OpenSSLHandler(_Handler):
    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        query = self._query()
        if query is not None:
            self._reply(self.tsa.reply(query))


class OpenSSLTSA(_Server):
    """A TSA on loopback: each POSTed TimeStampReq is answered by ``openssl ts -reply``."""

    def __init__(self, directory: Path, name: str) -> None:
        self.openssl = openssl_binary()
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.root, self.certificate = make_tsa_certificates(directory, name)
        (directory / "serial").write_text("01\n")
        self.config = directory / "openssl.cnf"
        self.config.write_text(OPENSSL_CNF.format(dir=directory))
        self._lock = threading.Lock()  # openssl ts rewrites its serial file: one reply at a time
        super().__init__(_OpenSSLHandler)

    def reply(self, query: bytes) -> bytes:
        """OpenSSL's TimeStampResp (DER) to ``query``; a malformed query gets OpenSSL's rejection."""
        with self._lock:
            (self.directory / "query.tsq").write_bytes(query)
            subprocess.run([self.openssl, "ts", "-reply", "-config", str(self.config),
                            "-queryfile", str(self.directory / "query.tsq"),
                            "-out", str(self.directory / "reply.tsr")],
                           check=True, capture_output=True, timeout=30)
            return (self.directory / "reply.tsr").read_bytes()


class _ScriptedHandler(_Handler):
    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        if self._query() is None:
            return
        if self.tsa.endless:
            self.send_response(200)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.end_headers()  # no Content-Length: the client must stop on its own
            block = b"\x30" * 65536
            try:
                while self.tsa.sent < self.tsa.endless:
                    self.wfile.write(block)
                    self.tsa.sent += len(block)
            except OSError:  # the client hung up, as it should
                pass
            return
        if self.tsa.drip:
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            try:
                for _ in range(1000):  # one byte per drip interval: each read returns in time
                    self.wfile.write(b"\x30")
                    self.wfile.flush()
                    time.sleep(self.tsa.drip)
            except OSError:  # the client gave up, as it should
                pass
            return
        if self.tsa.status != 200:
            self.send_response(self.tsa.status)
            if self.tsa.location:
                self.send_header("Location", self.tsa.location)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self._reply(self.tsa.body, self.tsa.announce)


class ScriptedTSA(_Server):
    """Answers every query with ``body`` (announced as ``announce`` bytes if given), with up to
    ``endless`` bytes and no Content-Length, or with an empty reply of another ``status`` (and a
    ``location`` to redirect to), or one byte every ``drip`` seconds."""

    def __init__(self, body: bytes = b"", endless: int = 0, status: int = 200,
                 location: str | None = None, announce: int | None = None,
                 drip: float = 0) -> None:
        self.body = body
        self.drip = drip
        self.announce = announce
        self.endless = endless
        self.status = status
        self.location = location
        self.sent = 0
        super().__init__(_ScriptedHandler)
