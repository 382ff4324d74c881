"""The witness in the app: registered only when configured, `flask witness` key, add-log, status,
and the settings that configure both sides."""

from __future__ import annotations

import os
import stat

import pytest

from config.settings import SettingsError, load_settings
from provenance.cosignature import CosignatureSigner
from provenance.log import LogWriter
from provenance.note import Ed25519Signer
from samizdat.app import create_app


def test_without_witnessed_logs_there_is_no_witness_endpoint(local_settings):
    app = create_app(local_settings)
    try:
        response = app.test_client().post("/witness/add-checkpoint", data=b"old 0\n\n")
        assert response.status_code == 404
        result = app.test_cli_runner().invoke(args=["witness", "status"])
        assert "not a witness" in result.output
        result = app.test_cli_runner().invoke(args=["witness", "add-log", "a.test/log", "k"])
        assert result.exit_code == 1 and "SAMIZDAT_WITNESSED_LOGS" in result.output
    finally:
        app.extensions["samizdat"].dispose()


def test_flask_witness_key_add_log_and_status(local_settings, tmp_path):
    settings = local_settings.replace(witnessed_logs=str(tmp_path / "witnessed"),
                                      witness_name="w.test/witness")
    app = create_app(settings)
    try:
        cli = app.test_cli_runner()
        key = cli.invoke(args=["witness", "key"])
        assert key.exit_code == 0 and key.output.startswith("w.test/witness+")
        assert stat.S_IMODE(os.stat(settings.data_dir / "keys" / "witness-ed25519.pem").st_mode) == 0o600
        log_key = Ed25519Signer.generate("a.test/log")
        added = cli.invoke(args=["witness", "add-log", "a.test/log", log_key.verifier.vkey])
        assert added.exit_code == 0 and "now witnessing a.test/log" in added.output
        again = cli.invoke(args=["witness", "add-log", "a.test/log", log_key.verifier.vkey])
        assert "already witnessing" in again.output
        bad = cli.invoke(args=["witness", "add-log", "a.test/log", "a.test/log+00000000+AAAA"])
        assert bad.exit_code == 1 and "Error:" in bad.output and "Traceback" not in bad.output
        assert cli.invoke(args=["witness", "status"]).output.splitlines()[-1] == \
            "a.test/log  nothing cosigned yet"
        # The file added to is the one the running app reads: the log is witnessed at once.
        with LogWriter(tmp_path / "log", log_key) as writer:
            writer.append([b"one"])
            note = writer.publish()
        response = app.test_client().post("/witness/add-checkpoint", data=b"old 0\n\n" + note)
        assert response.status_code == 200, response.data
        assert response.data.decode().startswith(f"— w.test/witness ")
        assert response.data.decode().endswith("\n") and response.data.count(b"\n") == 1
        status = cli.invoke(args=["witness", "status"]).output
        assert "a.test/log  cosigned size 1 at " in status
        assert key.output.strip() in status
    finally:
        app.extensions["samizdat"].dispose()


def test_witness_settings_are_checked_when_loaded(tmp_path):
    vkey = CosignatureSigner.generate("w.test/witness").verifier.vkey
    base = {"SAMIZDAT_DATA_DIR": str(tmp_path)}
    settings = load_settings({**base, "SAMIZDAT_WITNESSES": f"{vkey} http://127.0.0.1:9/witness/"})
    assert settings.witness_list == [(vkey, "http://127.0.0.1:9/witness")]
    assert settings.witness_quorum_count == 1  # the documented default with witnesses
    assert load_settings(base).witness_quorum_count == 0
    assert settings.witness_key_name == "127.0.0.1:8000/witness"
    named = load_settings({**base, "SAMIZDAT_PUBLIC_URL": "https://archive.example/s/",
                           "SAMIZDAT_LOG_ORIGIN": "archive.example/provenance"})
    assert named.witness_key_name == "archive.example/s/witness"
    for bad in [{"SAMIZDAT_WITNESSES": "just-a-key"},
                {"SAMIZDAT_WITNESSES": f"{vkey} ftp://host/"},
                {"SAMIZDAT_WITNESSES": f"{Ed25519Signer.generate('x').verifier.vkey} http://h/"},
                {"SAMIZDAT_WITNESSES": f"{vkey} http://h/a,{vkey} http://h/b"},
                {"SAMIZDAT_WITNESSES": f"{vkey} http://h/", "SAMIZDAT_WITNESS_QUORUM": "2"},
                {"SAMIZDAT_WITNESS_NAME": "has space"}]:
        with pytest.raises(SettingsError):
            load_settings({**base, **bad})


def test_the_verifiers_policy_options_refuse_what_cannot_be_checked(local_settings, tmp_path):
    app = create_app(local_settings)
    log_vkey = Ed25519Signer.generate("a.test/log").verifier.vkey
    witness = CosignatureSigner.generate("w.test/witness").verifier.vkey
    base = ["verify", str(tmp_path), "--log", str(tmp_path), "--key", log_vkey]
    try:
        cli = app.test_cli_runner()
        cases = {
            ("--quorum", "1"): "FAIL witness policy: --quorum needs the witnesses it counts",
            ("--witness", log_vkey): "FAIL witness policy: witness key",  # a log key, type 0x01
            ("--witness", witness, "--quorum", "2"): "FAIL witness policy: a policy of 2 of 1",
            ("--witness", witness, "--witness", witness): "listed twice",
        }
        for extra, expected in cases.items():
            result = cli.invoke(args=[*base, *extra])
            assert result.exit_code == 1, (extra, result.output)
            assert expected in result.output and len(result.output.splitlines()) == 1, result.output
    finally:
        app.extensions["samizdat"].dispose()


def test_flask_witness_revoke_log_key(local_settings, tmp_path):
    logs = tmp_path / "witnessed"
    app = create_app(local_settings.replace(witnessed_logs=str(logs), witness_name="w.test/witness"))
    try:
        cli = app.test_cli_runner()
        old, new = Ed25519Signer.generate("a.test/log"), Ed25519Signer.generate("a.test/log")
        args = ["witness", "revoke-log-key", "a.test/log", old.verifier.vkey, "--from-size", "2"]
        unknown = cli.invoke(args=args)
        assert unknown.exit_code == 1 and "nothing to revoke" in unknown.output
        assert cli.invoke(args=["witness", "add-log", "a.test/log", old.verifier.vkey]).exit_code == 0
        for bad in (["--from-size", "-1"], ["--from-size", "x"], []):
            result = cli.invoke(args=args[:4] + bad)
            assert result.exit_code == 2 and "Traceback" not in result.output
        done = cli.invoke(args=args)
        assert done.exit_code == 0 and "revoked: a.test/log checkpoints of size 2" in done.output
        assert "already revoked" in cli.invoke(args=args).output
        assert logs.read_text().splitlines()[-1] == f"a.test/log {old.verifier.vkey} revoked-from=2"
        with LogWriter(tmp_path / "log", old) as writer:
            writer.append([b"one"])
            client = app.test_client()
            assert client.post("/witness/add-checkpoint", data=b"old 0\n\n" + writer.publish()
                               ).status_code == 200
            writer.append([b"two"])
            # Refused for its key before its (missing) proof is even looked at.
            refused = client.post("/witness/add-checkpoint", data=b"old 1\n\n" + writer.publish())
            assert refused.status_code == 403 and b"revoked log key(s)" in refused.data
        status = cli.invoke(args=["witness", "status"]).output.splitlines()[-1]
        assert status.startswith("a.test/log  cosigned size 1 at ")
        assert status.endswith(f"; key a.test/log+{old.key_id:08x} revoked from size 2")
    finally:
        app.extensions["samizdat"].dispose()
