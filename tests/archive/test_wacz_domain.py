"""Domain-mode WACZ signatures: a real export signed with a domain certificate from a test CA and
time-stamped by the real OpenSSL TSA on loopback, accepted by `wacz validate --verify-auth` against
webrecorder's own verifier (authsign's FastAPI app under uvicorn on loopback, trusting the test CA
and the test TSA root) and by our standalone verifier; each forgery is refused by both."""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import os
import socket
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from flask import Flask

from archive.wacz_signing import DomainSigner, load_domain_identity
from config.settings import SettingsError, load_settings
from mirror.pipeline import capture_source
from mirror.sources import add_source
from provenance.appender import append_captures, log_signer
from provenance.timestamp import request_timestamps
from samizdat import migrate
from samizdat.app import create_app
from tests.archive.changing_site import ChangingSite
from tests.conftest import make_settings
from tests.provenance.tsa import OpenSSLTSA

DOMAIN = "archive.localhost"
REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PACKAGE, DIGEST = "datapackage.json", "datapackage-digest.json"


# --- a test CA ----------------------------------------------------------------------------------

def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


@dataclass
class CA:
    """A root certificate and its key."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @classmethod
    def make(cls, name: str) -> CA:
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(_name(name)).issuer_name(_name(name))
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=365))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .sign(key, hashes.SHA256()))
        return cls(cert, key)

    def issue(self, domain: str, not_before: datetime.datetime | None = None
              ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        """A leaf for ``domain`` (valid from a minute ago unless told) and its key."""
        key = ec.generate_private_key(ec.SECP256R1())
        start = not_before or datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=1)
        cert = (x509.CertificateBuilder().subject_name(_name(domain)).issuer_name(self.cert.subject)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(start).not_valid_after(start + datetime.timedelta(days=90))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(domain)]), critical=False)
                .sign(self.key, hashes.SHA256()))
        return cert, key


def pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def key_pem(key, password: bytes | None = None) -> bytes:
    encryption = (serialization.BestAvailableEncryption(password) if password
                  else serialization.NoEncryption())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


# --- authsign's verifier, served on loopback -----------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Authsign:
    """authsign's app under uvicorn; ``url`` is its /verify endpoint."""

    process: subprocess.Popen
    url: str


def start_authsign(directory: Path, ca: CA, tsa: OpenSSLTSA) -> Authsign:
    """authsign.main:app trusting ``ca`` for domain certificates and ``tsa``'s root for tokens.

    Its signer half needs a certificate and key of its own at start (cert.pem, private-key.pem
    under the passphrase authsign uses); given a fresh one it never renews (NO_RENEW) and so never
    calls an ACME server. The proxy variables point at a closed loopback port all the same, so a
    mistake here cannot reach beyond loopback.
    """
    data = directory / "data"
    data.mkdir(parents=True)
    cert, key = ca.issue(DOMAIN)
    (data / "cert.pem").write_bytes(pem(cert))
    (data / "private-key.pem").write_bytes(key_pem(key, b"passphrase"))
    roots = directory / "roots.yaml"
    roots.write_text(json.dumps({"domain_cert_roots": [fingerprint(ca.cert)],
                                 "timestamp_cert_roots": [fingerprint(tsa.root)]}))
    port = free_port()
    config = directory / "config.yaml"
    config.write_text(json.dumps({
        "signing": {"domain": DOMAIN, "email": "test@archive.localhost", "port": free_port(),
                    "output": str(data)},
        "trusted_roots": str(roots)}))
    env = {**os.environ, "CONFIG": str(config), "NO_RENEW": "1",
           "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9",
           "http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9",
           "NO_PROXY": "", "no_proxy": ""}
    log = open(directory / "authsign.log", "wb")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen(
        [str(BIN / "python"), "-m", "uvicorn", "authsign.main:app", "--host", "127.0.0.1",
         "--port", str(port)], cwd=directory, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("authsign's server exited: "
                               + (directory / "authsign.log").read_text()[-2000:])
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return Authsign(process, f"http://127.0.0.1:{port}/verify")
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("authsign's server did not listen within 60 s: "
                       + (directory / "authsign.log").read_text()[-2000:])


# --- the archive --------------------------------------------------------------------------------

@dataclass
class Signed:
    """The module's archive (domain mode configured), its export and the parties around it."""

    app: Flask
    ca: CA
    tsa: OpenSSLTSA
    authsign: Authsign
    wacz: Path
    source_id: int
    tmp: Path


@pytest.fixture(scope="module")
def signed(tmp_path_factory) -> Signed:
    tmp = tmp_path_factory.mktemp("wacz-domain")
    ca = CA.make("Samizdat test domain CA")
    tsa = OpenSSLTSA(tmp / "tsa", "Samizdat test TSA")
    leaf, key = ca.issue(DOMAIN)
    (tmp / "domain.pem").write_bytes(pem(leaf, ca.cert))
    (tmp / "domain.key").write_bytes(key_pem(key))
    url = f"sqlite:///{tmp / 'samizdat.db'}"
    migrate.upgrade(url)
    settings = make_settings(tmp, url, wacz_domain_cert=str(tmp / "domain.pem"),
                             wacz_domain_key=str(tmp / "domain.key"), tsa_urls=tsa.url,
                             tsa_roots=str(tsa.directory / "ca.pem"))
    app = create_app(settings)
    rt = app.extensions["samizdat"]
    site = ChangingSite(tmp / "site")
    page = site.publish("Bài viết bị chặn", "The censored article, signed by its archive. " * 8)
    with rt.Session() as session:
        source_id = add_source(session, page, 60, collection="vietnam").source.id
        session.commit()
    capture_source(rt, source_id)
    append_captures(rt)  # the log holds the capture, its checkpoint time-stamped by the TSA
    wacz = tmp / "signed.wacz"
    result = app.test_cli_runner().invoke(
        args=["archive", "export-wacz", "--source", str(source_id), "-o", str(wacz)])
    assert result.exit_code == 0, result.output
    authsign = start_authsign(tmp / "authsign", ca, tsa)
    yield Signed(app, ca, tsa, authsign, wacz, source_id, tmp)
    authsign.process.terminate()
    authsign.process.wait(timeout=30)
    site.close()
    tsa.close()
    rt.dispose()


def verify_auth(signed: Signed, path: Path) -> subprocess.CompletedProcess:
    """`wacz validate --verify-auth` with authsign's server as the verifier, as the issue asks."""
    return subprocess.run(
        [str(BIN / "wacz"), "validate", "-f", str(path), "--verify-auth", "--verifier-url",
         signed.authsign.url], capture_output=True, text=True, timeout=300)


def our_verifier(signed: Signed, path: Path, *extra: str) -> tuple[int, list[str]]:
    """`python -m provenance.verify` on ``path`` with the log's key, the TSA root and the CA."""
    vkey = log_signer(signed.app.extensions["samizdat"].settings).verifier.vkey
    result = subprocess.run(
        [sys.executable, "-m", "provenance.verify", str(path), "--key", vkey,
         "--tsa-root", str(signed.tsa.directory / "ca.pem"), *extra],
        cwd=REPO, capture_output=True, text=True, timeout=120)
    return result.returncode, result.stdout.splitlines()


def members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {info.filename: zf.read(info) for info in zf.infolist()}


def rewritten(path: Path, out: Path, changes: dict[str, bytes]) -> Path:
    """A copy of the WACZ with the members named in ``changes`` replaced (each keeps its
    compression)."""
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            dst.writestr(info, changes.get(info.filename, src.read(info)))
    return out


def digest_of(path: Path) -> dict:
    return json.loads(members(path)["datapackage-digest.json"])


def with_signed_data(signed: Signed, out: Path, **fields) -> Path:
    """The export with its signedData's ``fields`` replaced (datapackage.json untouched)."""
    digest = digest_of(signed.wacz)
    digest["signedData"].update(fields)
    return rewritten(signed.wacz, out, {DIGEST: json.dumps(digest).encode()})


def sign_and_stamp(signed: Signed, digest_hash: str, key) -> dict:
    """A signature of ``digest_hash`` by ``key`` and a genuine token of the TSA over it."""
    signature = base64.b64encode(key.sign(digest_hash.encode(), ec.ECDSA(hashes.SHA256()))).decode()
    stamps = request_timestamps(signature.encode(), [signed.tsa.url], [signed.tsa.root])
    assert stamps.timestamps, stamps.failures
    return {"signature": signature,
            "timeSignature": base64.b64encode(stamps.timestamps[0].token).decode()}


def domain_root_args(signed: Signed, ca: CA | None = None) -> list[str]:
    root = signed.tmp / f"root-{fingerprint((ca or signed.ca).cert)[:8]}.pem"
    root.write_bytes(pem((ca or signed.ca).cert))
    return ["--domain-root", str(root)]


# --- accepted -----------------------------------------------------------------------------------

def test_a_domain_signed_export_passes_wacz_validate_verify_auth_with_authsign(signed):
    data = digest_of(signed.wacz)["signedData"]
    assert data["domain"] == DOMAIN and "publicKey" not in data
    assert set(data) >= {"hash", "created", "software", "version", "signature", "domain",
                         "domainCert", "timeSignature", "timestampCert"}
    package = json.loads(members(signed.wacz)["datapackage.json"])
    assert data["created"] == package["created"]
    result = verify_auth(signed, signed.wacz)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Successfully verified signature via: {signed.authsign.url}" in result.stdout


def test_a_domain_signed_export_carries_log_proofs_and_tokens_our_verifier_accepts(signed):
    names = set(members(signed.wacz))
    assert "provenance/checkpoint" in names
    assert any(n.startswith("provenance/timestamp-") for n in names)
    code, lines = our_verifier(signed, signed.wacz, *domain_root_args(signed))
    assert code == 0, lines
    assert "ok  domain root (trusted (sha-256 " + fingerprint(signed.ca.cert) + "))" in lines
    assert f"ok  signature (by the key of the certificate for {DOMAIN})" in lines
    assert any(line.startswith("ok  signature time-stamp: ") for line in lines), lines
    assert any(line.startswith("ok  inclusion of entry 0 (archive/capture-") for line in lines)
    assert any(line.startswith("ok  timestamp: ") for line in lines), lines


def test_our_verifier_wants_the_domain_root_pinned_or_unpinned_allowed(signed):
    code, lines = our_verifier(signed, signed.wacz)
    assert code == 1
    assert [line for line in lines if line.startswith("FAIL")] == [
        f"FAIL domain root: sha-256 {fingerprint(signed.ca.cert)}: give the roots you trust with "
        "--domain-root PEM, or --allow-unpinned"]
    code, lines = our_verifier(signed, signed.wacz, "--allow-unpinned")
    assert code == 0, lines


# --- refused ------------------------------------------------------------------------------------

def test_a_datapackage_altered_after_signing_is_refused(signed, tmp_path):
    package = json.loads(members(signed.wacz)["datapackage.json"])
    package["title"] = "A forged title"
    forged = json.dumps(package, indent=2).encode()
    # As it is: the digest no longer matches.
    naive = rewritten(signed.wacz, tmp_path / "naive.wacz", {PACKAGE: forged})
    assert verify_auth(signed, naive).returncode == 1
    # The digest and the signed hash both updated: the signature is over the old hash.
    new_hash = "sha256:" + hashlib.sha256(forged).hexdigest()
    digest = digest_of(signed.wacz)
    digest["hash"] = new_hash
    digest["signedData"]["hash"] = new_hash
    bold = rewritten(signed.wacz, tmp_path / "bold.wacz",
                     {PACKAGE: forged, DIGEST: json.dumps(digest).encode()})
    result = verify_auth(signed, bold)
    assert result.returncode == 1 and "Signature not verified via" in result.stdout
    code, lines = our_verifier(signed, bold, *domain_root_args(signed))
    assert code == 1
    assert f"FAIL signature: it does not verify with the key of {DOMAIN}'s certificate" in lines


def test_a_signature_by_a_key_not_of_the_certificate_is_refused(signed, tmp_path):
    data = digest_of(signed.wacz)["signedData"]
    # Genuinely time-stamped, so only the key is wrong.
    other = sign_and_stamp(signed, data["hash"], ec.generate_private_key(ec.SECP256R1()))
    forged = with_signed_data(signed, tmp_path / "other-key.wacz", **other)
    result = verify_auth(signed, forged)
    assert result.returncode == 1 and "Signature not verified via" in result.stdout
    code, lines = our_verifier(signed, forged, *domain_root_args(signed))
    assert code == 1
    assert f"FAIL signature: it does not verify with the key of {DOMAIN}'s certificate" in lines


def test_a_certificate_from_an_untrusted_ca_is_refused(signed, tmp_path):
    rogue = CA.make("Samizdat test domain CA")  # the same name, another key
    leaf, key = rogue.issue(DOMAIN)
    data = digest_of(signed.wacz)["signedData"]
    forged = with_signed_data(signed, tmp_path / "rogue.wacz", domainCert=pem(leaf, rogue.cert).decode(),
                              **sign_and_stamp(signed, data["hash"], key))
    result = verify_auth(signed, forged)
    assert result.returncode == 1 and "Signature not verified via" in result.stdout
    code, lines = our_verifier(signed, forged, *domain_root_args(signed))
    assert code == 1
    assert [line for line in lines if line.startswith("FAIL")] == [
        f"FAIL domain root: sha-256 {fingerprint(rogue.cert)} is not one of the roots given with "
        "--domain-root"]
    # The signature itself is sound: only the root's trust is missing.
    assert f"ok  signature (by the key of the certificate for {DOMAIN})" in lines


def test_a_time_stamp_token_for_other_bytes_is_refused(signed, tmp_path):
    stamps = request_timestamps(b"some other signature", [signed.tsa.url], [signed.tsa.root])
    token = base64.b64encode(stamps.timestamps[0].token).decode()
    forged = with_signed_data(signed, tmp_path / "other-token.wacz", timeSignature=token)
    result = verify_auth(signed, forged)
    assert result.returncode == 1 and "Signature not verified via" in result.stdout
    code, lines = our_verifier(signed, forged, *domain_root_args(signed))
    assert code == 1
    assert ("FAIL signature time-stamp: the token is for other bytes: its messageImprint is not "
            "SHA-256 of these") in lines


# --- configuration ------------------------------------------------------------------------------

def env_for(signed: Signed, **values: str) -> dict[str, str]:
    base = {"SAMIZDAT_DATA_DIR": str(signed.tmp / "data"),
            "SAMIZDAT_TSA_URLS": signed.tsa.url,
            "SAMIZDAT_TSA_ROOTS": str(signed.tsa.directory / "ca.pem"),
            "SAMIZDAT_WACZ_DOMAIN_CERT": str(signed.tmp / "domain.pem"),
            "SAMIZDAT_WACZ_DOMAIN_KEY": str(signed.tmp / "domain.key")}
    base.update(values)
    return {k: v for k, v in base.items() if v is not None}


def test_a_sound_domain_configuration_loads(signed):
    settings = load_settings(env_for(signed))
    identity = load_domain_identity(Path(settings.wacz_domain_cert), Path(settings.wacz_domain_key))
    assert identity.domain == DOMAIN and len(identity.chain) == 2


@pytest.mark.parametrize("change, words", [
    ({"SAMIZDAT_WACZ_DOMAIN_KEY": None}, "go together"),
    ({"SAMIZDAT_TSA_URLS": None, "SAMIZDAT_TSA_ROOTS": None}, "needs SAMIZDAT_TSA_URLS"),
    ({"SAMIZDAT_WACZ_DOMAIN_KEY": "OTHER_KEY"}, "is not the key of the first certificate"),
    ({"SAMIZDAT_WACZ_DOMAIN_CERT": "REVERSED"}, "is not a chain"),
    ({"SAMIZDAT_WACZ_DOMAIN_CERT": "GARBAGE"}, "is not a PEM chain"),
    ({"SAMIZDAT_WACZ_DOMAIN_CERT": "MISSING"}, "cannot read the WACZ domain certificate"),
])
def test_a_broken_domain_configuration_stops_the_start_in_one_line(signed, tmp_path, change, words):
    leaf = x509.load_pem_x509_certificates((signed.tmp / "domain.pem").read_bytes())[0]
    files = {"OTHER_KEY": key_pem(ec.generate_private_key(ec.SECP256R1())),
             "REVERSED": pem(signed.ca.cert, leaf), "GARBAGE": b"not a certificate"}
    for name, value in list(change.items()):
        if value in files:
            (tmp_path / value).write_bytes(files[value])
        if value in (*files, "MISSING"):
            change[name] = str(tmp_path / value)
    with pytest.raises(SettingsError) as error:
        load_settings(env_for(signed, **change))
    assert words in str(error.value) and "\n" not in str(error.value)


def test_a_stale_certificate_signs_anonymously_and_doctor_warns(signed, tmp_path):
    old = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=8)
    leaf, key = signed.ca.issue(DOMAIN, not_before=old)
    (tmp_path / "old.pem").write_bytes(pem(leaf, signed.ca.cert))
    (tmp_path / "old.key").write_bytes(key_pem(key))
    settings = signed.app.extensions["samizdat"].settings.replace(
        wacz_domain_cert=str(tmp_path / "old.pem"), wacz_domain_key=str(tmp_path / "old.key"))
    app = create_app(settings)
    try:
        doctor = app.test_cli_runner().invoke(args=["doctor"])
        line = next(line for line in doctor.output.splitlines() if line.startswith("wacz signing"))
        assert "warn" in line.lower() and "renew the certificate" in line, line
        out = tmp_path / "stale.wacz"
        result = app.test_cli_runner().invoke(
            args=["archive", "export-wacz", "--source", str(signed.source_id), "-o", str(out)])
        assert result.exit_code == 0, result.output
    finally:
        app.extensions["samizdat"].dispose()
    data = digest_of(out)["signedData"]
    assert "publicKey" in data and "domainCert" not in data  # anonymous, as before


def test_doctor_reports_domain_mode_with_its_window(signed):
    doctor = signed.app.test_cli_runner().invoke(args=["doctor"])
    line = next(line for line in doctor.output.splitlines() if line.startswith("wacz signing"))
    assert f"domain mode for {DOMAIN}" in line and "usable until" in line, line


def test_the_signer_is_domain_mode_when_configured(signed):
    from archive.wacz_signing import wacz_signer_for

    assert isinstance(wacz_signer_for(signed.app.extensions["samizdat"].settings), DomainSigner)


def test_without_a_tsa_answering_the_export_is_signed_anonymously_and_logged(signed, caplog):
    from archive.wacz_signing import wacz_signer_for

    signer = wacz_signer_for(signed.app.extensions["samizdat"].settings)
    closed = f"http://127.0.0.1:{free_port()}/tsr"
    down = DomainSigner(signer.identity, (closed,), signer.tsa_roots, signer.fallback, timeout=5)
    with caplog.at_level("WARNING", logger="archive.wacz_signing"):
        data = down.signed_data("sha256:" + "0" * 64, "2026-01-01T00:00:00Z", "test")
    assert "publicKey" in data and "domainCert" not in data
    assert any("no TSA time-stamped the domain signature" in r.getMessage() and closed in r.getMessage()
               for r in caplog.records)


def test_a_signature_past_the_certificates_seven_day_window_is_refused(signed, tmp_path):
    old = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=8)
    leaf, key = signed.ca.issue(DOMAIN, not_before=old)  # valid for 90 days, but not fresh
    data = digest_of(signed.wacz)["signedData"]
    forged = with_signed_data(signed, tmp_path / "stale.wacz",
                              domainCert=pem(leaf, signed.ca.cert).decode(),
                              **sign_and_stamp(signed, data["hash"], key))
    result = verify_auth(signed, forged)
    assert result.returncode == 1 and "Signature not verified via" in result.stdout
    code, lines = our_verifier(signed, forged, *domain_root_args(signed))
    assert code == 1
    assert any(line.startswith("FAIL signature date: created ") and "over 7 days after" in line
               for line in lines), lines


def test_the_key_revocation_check_leaves_a_domain_signed_wacz_to_its_ca(signed):
    settings = signed.app.extensions["samizdat"].settings
    vkey = log_signer(settings).verifier.vkey
    result = subprocess.run(
        [sys.executable, "-m", "provenance.verify", "--keys", "--log", str(settings.log_path),
         "--key", vkey, "--check-wacz", str(signed.wacz)],
        cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (f"ok  WACZ {signed.wacz} (not signed by a WACZ key revoked before its signing time)"
            in result.stdout.splitlines())


def test_domain_files_that_no_longer_load_leave_exports_signed_anonymously(signed, tmp_path, caplog):
    from archive.wacz_signing import WaczSigner, wacz_signer_for

    (tmp_path / "renewed.pem").write_bytes(b"half a renewal")
    settings = signed.app.extensions["samizdat"].settings.replace(
        wacz_domain_cert=str(tmp_path / "renewed.pem"))
    with caplog.at_level("ERROR", logger="archive.wacz_signing"):
        assert isinstance(wacz_signer_for(settings), WaczSigner)
    assert any("the domain certificate cannot be used" in r.getMessage() for r in caplog.records)
