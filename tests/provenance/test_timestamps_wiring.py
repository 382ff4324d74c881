"""RFC 3161 time-stamps wired into the app's log: each append pass asks the configured TSAs (real
ones on loopback, OpenSSL's ``ts -reply``) for tokens over the latest checkpoint's body text and
publishes them as ``timestamp/<size>/<k>.tsr``; the app serves them; the verifier checks them."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from config.settings import Settings, SettingsError, load_settings
from provenance import note
from provenance.appender import StampReport, append_captures, log_signer, timestamp_checkpoint
from provenance.entries import capture_entry
from provenance.errors import TimestampError
from provenance.log import LogWriter
from provenance.note import open_checkpoint
from provenance.tiles import timestamp_path
from provenance.timestamp import MAX_TOKEN_BYTES, request_timestamps, verify_timestamp
from provenance.verify import main as standalone_verify
from provenance.verify import read_manifest
from samizdat.app import create_app
from samizdat.tasks import TASKS_KEY
from tests.browser.conftest import serve
from tests.provenance.capturing import capture_and_download
from tests.provenance.tsa import OpenSSLTSA, ScriptedTSA

REPO = Path(__file__).resolve().parents[2]
ORIGIN = "samizdat.test/log"


def _roots(path: Path, *tsas: OpenSSLTSA) -> Path:
    """A PEM bundle of the given TSAs' roots, as an operator's SAMIZDAT_TSA_ROOTS file."""
    path.write_bytes(b"".join((t.directory / "ca.pem").read_bytes() for t in tsas))
    return path


def _app(settings: Settings, tsa_urls: str, roots: Path):
    return create_app(settings.replace(tsa_urls=tsa_urls, tsa_roots=str(roots)))


def _pass(app) -> int:
    """One pass of the log's task exactly as the app hands it to the scheduler."""
    task = next(t for t in app.extensions[TASKS_KEY] if t.id == "provenance.append-captures")
    return task.func(app.extensions["samizdat"])


def _body(settings: Settings) -> bytes:
    """The published checkpoint's tree head (what the tokens are over), its signature checked."""
    data = (settings.log_path / "checkpoint").read_bytes()
    checkpoint, _ = open_checkpoint(data, settings.log_origin_name, log_signer(settings).verifier)
    return checkpoint.tree_head().encode()


def _tokens(log_path: Path, size: int) -> list[str]:
    folder = log_path / "timestamp" / str(size)
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


@pytest.fixture
def stamped_app(local_settings, tsa, tmp_path):
    """The app on SQLite and the local store, asking the real loopback TSA."""
    application = _app(local_settings, tsa.url, _roots(tmp_path / "roots.pem", tsa))
    yield application
    application.extensions["samizdat"].dispose()


def test_an_append_pass_stamps_its_new_checkpoint_and_the_app_serves_the_token(
        stamped_app, site, tsa, tmp_path):
    runtime = stamped_app.extensions["samizdat"]
    settings = runtime.settings
    folder = tmp_path / "download"
    capture_and_download(stamped_app, stamped_app.test_client(), site, folder)
    assert _pass(stamped_app) == 1
    assert _tokens(settings.log_path, 1) == ["0.tsr"]
    token = (settings.log_path / "timestamp/1/0.tsr").read_bytes()
    # Over the body text, the same bytes whatever cosignatures are added to the file later; not
    # over the signed note.
    assert verify_timestamp(token, _body(settings), [tsa.root])
    with pytest.raises(TimestampError, match="for other bytes"):
        verify_timestamp(token, (settings.log_path / "checkpoint").read_bytes(), [tsa.root])
    # A pass with nothing new asks no TSA again: the checkpoint keeps its one token.
    assert _pass(stamped_app) == 0
    assert _tokens(settings.log_path, 1) == ["0.tsr"]
    assert (settings.log_path / "timestamp/1/0.tsr").read_bytes() == token

    client = stamped_app.test_client()
    served = client.get("/log/timestamp/1/0.tsr")
    assert served.status_code == 200
    assert served.mimetype == "application/timestamp-reply"
    assert served.data == token
    assert "immutable" in served.headers["Cache-Control"]
    assert served.headers["Access-Control-Allow-Origin"] == "*"
    assert (settings.log_path / ".timestamps.json").exists()
    for path in ("/log/timestamp/1/1.tsr", "/log/timestamp/01/0.tsr", "/log/timestamp/1/8.tsr",
                 "/log/timestamp/1/0", "/log/timestamp/1/0.tsr.tmp", "/log/timestamp/1/",
                 "/log/.timestamps.json", "/log/timestamp/../.timestamps.json",
                 "/log/timestamp/%2e%2e/.timestamps.json", "/log/timestamp/../checkpoint",
                 "/log/timestamp/../../keys/log-ed25519.pem", "/log/timestamp/1/../../checkpoint"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert b"PRIVATE" not in response.data and b"tsa_urls" not in response.data

    # The standalone verifier, over HTTP from the live app, checks the token with the TSA's root.
    live = serve(stamped_app)
    try:
        url = f"http://127.0.0.1:{live.server.server_port}/log"
        result = subprocess.run(
            [sys.executable, "-m", "provenance.verify", str(folder), "--log", url,
             "--key", log_signer(settings).verifier.vkey, "--tsa-root", settings.tsa_roots],
            cwd=REPO, capture_output=True, text=True, timeout=60)
    finally:
        live.server.shutdown()
        live.server.server_close()
    assert result.returncode == 0, result.stdout + result.stderr
    [line] = [line for line in result.stdout.splitlines() if "timestamp" in line]
    assert line.startswith("ok  timestamp: CN=Samizdat test TSA, serial ")
    assert "says the checkpoint of size 1 existed by 20" in line


def _closed(server: OpenSSLTSA) -> None:
    server.close()
    with socket.socket() as probe:  # really down: the port refuses connections
        assert probe.connect_ex(server.server.server_address) != 0


def test_one_tsa_down_the_other_token_is_published_and_the_next_pass_asks_it_again(
        local_settings, site, tsa, tmp_path, caplog):
    flaky = OpenSSLTSA(tmp_path / "flaky-tsa", "Flaky TSA")
    _closed(flaky)
    # The TSA that is down comes first: tokens are numbered without a gap all the same.
    app = _app(local_settings, f"{flaky.url}, {tsa.url}",
               _roots(tmp_path / "roots.pem", flaky, tsa))
    runtime = app.extensions["samizdat"]
    log_path = runtime.settings.log_path
    try:
        with caplog.at_level(logging.WARNING, logger="provenance.appender"):
            report = append_captures(runtime)  # the empty log's first checkpoint, size 0
        assert report.published and report.size == 0
        assert report.stamps.written == ["timestamp/0/0.tsr"]
        assert [f.tsa_url for f in report.stamps.failures] == [flaky.url]
        [failure] = [r for r in caplog.records if flaky.url in r.getMessage()]
        assert failure.getMessage().startswith(f"checkpoint 0 not time-stamped by {flaky.url}: no reply")
        assert verify_timestamp((log_path / "timestamp/0/0.tsr").read_bytes(), _body(runtime.settings),
                                [tsa.root])

        # A new checkpoint: both TSAs are asked for it; the old one's missing token is let go.
        capture_and_download(app, app.test_client(), site, tmp_path / "download")
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="provenance.appender"):
            assert _pass(app) == 1
        assert [r.getMessage().partition(": ")[0] for r in caplog.records] == \
            [f"checkpoint 1 not time-stamped by {flaky.url}"]
        assert _tokens(log_path, 1) == ["0.tsr"]

        # Still down at the next pass: asked again (one line), the answering TSA is not re-asked.
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="provenance.appender"):
            report = append_captures(runtime)
        assert not report.published and report.stamps.written == []
        assert [f.tsa_url for f in report.stamps.failures] == [flaky.url]
        assert len([r for r in caplog.records if flaky.url in r.getMessage()]) == 1
        assert _tokens(log_path, 1) == ["0.tsr"]

        # Back up: the next pass gets its token for the latest checkpoint, and only that one.
        flaky.restart()
        report = append_captures(runtime)
        assert report.stamps.written == ["timestamp/1/1.tsr"] and report.stamps.failures == []
        assert _tokens(log_path, 1) == ["0.tsr", "1.tsr"]
        assert _tokens(log_path, 0) == ["0.tsr"]
        body = _body(runtime.settings)
        assert verify_timestamp((log_path / "timestamp/1/1.tsr").read_bytes(), body, [flaky.root])
        assert verify_timestamp((log_path / "timestamp/1/0.tsr").read_bytes(), body, [tsa.root])
        # Every TSA answered: later passes ask nobody.
        assert append_captures(runtime).stamps == StampReport()
        assert _tokens(log_path, 1) == ["0.tsr", "1.tsr"]
    finally:
        flaky.close()
        app.extensions["samizdat"].dispose()


def _der(tag: int, body: bytes) -> bytes:
    assert len(body) < 128
    return bytes([tag, len(body)]) + body


def test_a_tsa_refusal_cannot_write_a_second_log_line_or_a_terminal_escape(
        local_settings, tsa, tmp_path, caplog):
    # A TimeStampResp with status 2 (rejection) whose statusString a hostile TSA wrote.
    text = "no\ncheckpoint 9 time-stamped by everyone\x1b[2J"
    refusal = _der(0x30, _der(0x30, _der(0x02, b"\x02") + _der(0x30, _der(0x0C, text.encode()))))
    hostile = ScriptedTSA(body=refusal)
    app = _app(local_settings, hostile.url, _roots(tmp_path / "roots.pem", tsa))
    try:
        with caplog.at_level(logging.WARNING, logger="provenance.appender"):
            report = append_captures(app.extensions["samizdat"])
        [failure] = report.stamps.failures
        assert failure.reason == "the TSA refused: status 2 (no?checkpoint 9 time-stamped by everyone?[2J)"
        [line] = [r.getMessage() for r in caplog.records]
        assert line == f"checkpoint 0 not time-stamped by {hostile.url}: {failure.reason}"
        assert not (app.extensions["samizdat"].settings.log_path / "timestamp").exists()
    finally:
        hostile.close()
        app.extensions["samizdat"].dispose()


def test_unreadable_roots_leave_the_log_unstamped_but_appended(local_settings, tsa, tmp_path, caplog):
    app = _app(local_settings, tsa.url, tmp_path / "absent.pem")
    runtime = app.extensions["samizdat"]
    try:
        with caplog.at_level(logging.WARNING, logger="provenance.appender"):
            report = append_captures(runtime)
        assert report.published and report.stamps.written == []
        assert "cannot read the TSA roots" in report.stamps.failures[0].reason
        assert any("checkpoint 0 not time-stamped: cannot read the TSA roots" in r.getMessage()
                   for r in caplog.records)
        assert not (runtime.settings.log_path / "timestamp").exists()
        assert (runtime.settings.log_path / "checkpoint").exists()
        # `flask log append` makes the same pass and says what it could not do.
        result = app.test_cli_runner().invoke(args=["log", "append"])
        assert result.exit_code == 0, result.output
        assert f"no time-stamp from {tsa.url}: cannot read the TSA roots" in result.output
        assert result.output.rstrip().endswith("(asked again next pass)")
    finally:
        app.extensions["samizdat"].dispose()


def test_the_settings_take_a_list_of_tsa_urls_and_require_their_roots(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = load_settings({"SAMIZDAT_TSA_URLS": " http://127.0.0.1:318/tsr,https://tsa.example/ "
                                                   "https://other.example/tsr",
                              "SAMIZDAT_TSA_ROOTS": "roots.pem"})
    assert settings.tsa_url_list == ["http://127.0.0.1:318/tsr", "https://tsa.example/",
                                     "https://other.example/tsr"]
    assert settings.tsa_roots == str(tmp_path / "roots.pem")
    assert load_settings({}).tsa_url_list == []
    for urls, roots, message in [
        ("ftp://tsa.example/", "r.pem", "SAMIZDAT_TSA_URLS must list http(s) URLs"),
        ("https://tsa.example/ file:///etc/passwd", "r.pem", "not an http"),
        ("http://127.0.0.1:99999/tsr", "r.pem", "SAMIZDAT_TSA_URLS"),
        ("https://tsa.example/", "", "SAMIZDAT_TSA_ROOTS must name a PEM file"),
        ("https://a.example/ https://a.example/", "r.pem", "with repeats"),
        (" ".join(f"https://t{i}.example/" for i in range(9)), "r.pem", "at most 8"),
    ]:
        with pytest.raises(SettingsError, match=re.escape(message)):
            load_settings({"SAMIZDAT_TSA_URLS": urls, "SAMIZDAT_TSA_ROOTS": roots})


def _doctor_line(app) -> str:
    """`flask doctor`'s timestamps line."""
    output = app.test_cli_runner().invoke(args=["doctor"]).output
    return next(row for row in output.splitlines() if row.startswith("timestamps "))


def test_doctor_says_whether_checkpoints_are_time_stamped(local_settings, tsa, tmp_path):
    line = _doctor_line
    plain = create_app(local_settings)
    try:
        assert line(plain).split(None, 2)[1:] == [
            "off", "not configured (SAMIZDAT_TSA_URLS is empty): checkpoints get no RFC 3161 "
                   "time-stamps"]
    finally:
        plain.extensions["samizdat"].dispose()
    down = f"http://127.0.0.1:{_free_port()}/tsr"
    app = _app(local_settings, f"{tsa.url} {down}", _roots(tmp_path / "roots.pem", tsa))
    try:
        append_captures(app.extensions["samizdat"])
        assert line(app).split(None, 2)[1:] == [
            "warn", "2 TSA(s), 1 trusted root(s); the checkpoint of size 0 has 1 token(s) "
                    "(the scheduler's log names the failing TSAs)"]
    finally:
        app.extensions["samizdat"].dispose()
    broken = _app(local_settings, tsa.url, tmp_path / "absent.pem")
    try:
        assert line(broken).split(None, 2)[1] == "FAILING"
    finally:
        broken.extensions["samizdat"].dispose()


def test_every_tsa_gives_the_new_checkpoint_a_token_in_their_order(
        local_settings, tsa, other_tsa, tmp_path):
    app = _app(local_settings, f"{other_tsa.url},{tsa.url}",
               _roots(tmp_path / "roots.pem", tsa, other_tsa))
    runtime = app.extensions["samizdat"]
    log_path = runtime.settings.log_path
    try:
        report = append_captures(runtime)
        assert report.stamps.written == ["timestamp/0/0.tsr", "timestamp/0/1.tsr"]
        assert report.stamps.failures == []
        body = _body(runtime.settings)
        assert verify_timestamp((log_path / "timestamp/0/0.tsr").read_bytes(), body, [other_tsa.root])
        assert verify_timestamp((log_path / "timestamp/0/1.tsr").read_bytes(), body, [tsa.root])
        assert _doctor_line(app).split(None, 2)[1:] == [
            "ok", "2 TSA(s), 2 trusted root(s); the checkpoint of size 0 has 2 token(s)"]
    finally:
        app.extensions["samizdat"].dispose()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- The verifier: a capture folder, a log of two checkpoints, each with its token. ---


@pytest.fixture(scope="module")
def stamped_log(tmp_path_factory, tsa):
    """(folder, log directory, verifier key, roots file): the folder's capture is entry 0; the
    checkpoints of size 1 and 2 each have a token from the trusted TSA."""
    base = tmp_path_factory.mktemp("verifier")
    folder = base / "capture"
    folder.mkdir()
    page = b"<html><body>A page a government blocked.</body></html>"
    (folder / "index.html").write_bytes(page)
    (folder / "manifest.json").write_text(json.dumps({
        "samizdat_manifest": 2, "url": "https://news.example/a", "fetched_at": "2026-12-07T20:00:00+00:00",
        "parts": [{"name": "index.html", "sha256": hashlib.sha256(page).hexdigest(), "cid": None}]}))
    entry = capture_entry(*read_manifest(folder)).encode()
    roots = _roots(base / "roots.pem", tsa)
    settings = Settings(data_dir=base, tsa_urls=tsa.url, tsa_roots=str(roots))
    signer = note.Ed25519Signer.generate(ORIGIN)
    log = base / "log"
    with LogWriter(log, signer) as writer:
        for batch in ([entry], [b'{"other": 1}']):
            writer.append(batch)
            writer.publish()
            assert timestamp_checkpoint(settings, log, writer.checkpoint).written == \
                [timestamp_path(writer.size, 0)]
    return folder, log, signer.verifier.vkey, roots


def _verify(folder: Path, log: Path, vkey: str, *roots: Path, capsys) -> tuple[int, list[str]]:
    """The standalone verifier's entry point, in-process; (exit status, lines printed)."""
    args = [str(folder), "--log", str(log), "--key", vkey]
    for root in roots:
        args += ["--tsa-root", str(root)]
    status = standalone_verify(args)
    return status, capsys.readouterr().out.splitlines()


def _stamps(lines: list[str]) -> list[str]:
    """The verifier's time-stamp lines (they follow the checkpoint's, whatever the input)."""
    return [line for line in lines if line.startswith(("ok  timestamp", "FAIL timestamp"))]


def _copy(log: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(log, tmp_path / "log"))


def test_the_verifier_accepts_the_token_and_says_who_vouches_for_when(stamped_log, capsys):
    folder, log, vkey, roots = stamped_log
    status, lines = _verify(folder, log, vkey, roots, capsys=capsys)
    assert status == 0, lines
    assert "ok  inclusion of entry 0 (under the checkpoint of size 2)" in lines
    (stamp,) = _stamps(lines)
    assert stamp.startswith("ok  timestamp: CN=Samizdat test TSA, serial ")
    assert " says the checkpoint of size 2 existed by 20" in stamp
    # Without roots, time-stamps are not checked (nor required).
    status, lines = _verify(folder, log, vkey, capsys=capsys)
    assert status == 0 and not any("timestamp" in line for line in lines)


def test_flask_verify_takes_tsa_roots_too(stamped_log, local_app):
    folder, log, vkey, roots = stamped_log
    result = local_app.test_cli_runner().invoke(args=[
        "verify", str(folder), "--log", str(log), "--key", vkey, "--tsa-root", str(roots)])
    assert result.exit_code == 0, result.output
    assert "says the checkpoint of size 2 existed by" in _stamps(result.output.splitlines())[0]


@pytest.fixture
def local_app(local_settings):
    application = create_app(local_settings)
    yield application
    application.extensions["samizdat"].dispose()


def test_a_token_for_other_bytes_is_refused(stamped_log, tmp_path, capsys):
    folder, log, vkey, roots = stamped_log
    copy = _copy(log, tmp_path)
    # The genuine token of the checkpoint of size 1, offered for the checkpoint of size 2.
    shutil.copyfile(copy / "timestamp/1/0.tsr", copy / "timestamp/2/0.tsr")
    status, lines = _verify(folder, copy, vkey, roots, capsys=capsys)
    assert status == 1
    assert _stamps(lines)[-2] == ("FAIL timestamp/2/0.tsr: the token is for other bytes: its "
                         "messageImprint is not SHA-256 of these")
    assert _stamps(lines)[-1] == "FAIL timestamps: no valid time-stamp token for the checkpoint of size 2"


def test_a_token_from_an_untrusted_tsa_is_refused(stamped_log, other_tsa, tmp_path, capsys):
    folder, log, vkey, roots = stamped_log
    copy = _copy(log, tmp_path)
    body = (copy / "checkpoint").read_bytes().split(b"\n\n")[0] + b"\n"
    foreign = request_timestamps(body, [other_tsa.url], [other_tsa.root]).timestamps[0].token
    (copy / "timestamp/2/0.tsr").write_bytes(foreign)
    status, lines = _verify(folder, copy, vkey, roots, capsys=capsys)
    assert status == 1
    assert _stamps(lines)[-2].startswith("FAIL timestamp/2/0.tsr: the token is not signed by a trusted TSA: ")
    assert _stamps(lines)[-1] == "FAIL timestamps: no valid time-stamp token for the checkpoint of size 2"
    # The same token verifies for whoever trusts that TSA's root.
    other_root = _roots(tmp_path / "other.pem", other_tsa)
    status, lines = _verify(folder, copy, vkey, other_root, capsys=capsys)
    assert status == 0 and _stamps(lines)[-1].startswith("ok  timestamp: CN=Another TSA, serial ")


def test_a_truncated_token_is_refused(stamped_log, tmp_path, capsys):
    folder, log, vkey, roots = stamped_log
    copy = _copy(log, tmp_path)
    token = copy / "timestamp/2/0.tsr"
    token.write_bytes(token.read_bytes()[:200])
    status, lines = _verify(folder, copy, vkey, roots, capsys=capsys)
    assert status == 1
    assert _stamps(lines)[-2].startswith("FAIL timestamp/2/0.tsr: not an RFC 3161 time-stamp response")
    assert _stamps(lines)[-1].startswith("FAIL timestamps: no valid time-stamp token")


def test_an_oversized_token_is_refused_without_being_read_whole(stamped_log, tmp_path, capsys):
    folder, log, vkey, roots = stamped_log
    copy = _copy(log, tmp_path)
    # 64 GiB, sparse: reading it whole would exhaust the machine's memory long before the end.
    with open(copy / "timestamp/2/0.tsr", "r+b") as f:
        f.truncate(64 << 30)
    started = time.monotonic()
    status, lines = _verify(folder, copy, vkey, roots, capsys=capsys)
    assert status == 1
    assert _stamps(lines)[-2] == f"FAIL timestamp/2/0.tsr: timestamp/2/0.tsr is larger than {MAX_TOKEN_BYTES} bytes"
    assert _stamps(lines)[-1].startswith("FAIL timestamps: no valid time-stamp token")
    assert time.monotonic() - started < 30


def test_roots_given_but_no_token_published_fails(stamped_log, tmp_path, capsys):
    folder, log, vkey, roots = stamped_log
    copy = _copy(log, tmp_path)
    shutil.rmtree(copy / "timestamp/2")
    status, lines = _verify(folder, copy, vkey, roots, capsys=capsys)
    assert status == 1
    assert "ok  inclusion of entry 0 (under the checkpoint of size 2)" in lines
    assert _stamps(lines)[-1] == "FAIL timestamps: no valid time-stamp token for the checkpoint of size 2"
    # A roots file that holds no certificate is refused in one line before anything is fetched.
    (tmp_path / "bad.pem").write_text("not a certificate\n")
    status, lines = _verify(folder, log, vkey, tmp_path / "bad.pem", capsys=capsys)
    assert status == 1
    assert lines == [f"FAIL TSA roots: the TSA roots {tmp_path / 'bad.pem'} hold no PEM certificate"]
