"""The settings loader: defaults, parsing and clear errors."""

from pathlib import Path

import pytest

from config.settings import Settings, SettingsError, load_settings


def test_defaults_give_embedded_sqlite_and_no_remote_backends():
    settings = load_settings({})
    assert settings.data_dir == Path.cwd() / "var"
    assert settings.sqlalchemy_url == f"sqlite:///{Path.cwd() / 'var' / 'samizdat.db'}"
    assert settings.s3_bucket == "" and settings.ipfs_api == ""
    assert settings.fetch_allow_private is False


def test_variables_are_parsed_to_their_types():
    settings = load_settings(
        {
            "SAMIZDAT_DATA_DIR": "/srv/samizdat",
            "SAMIZDAT_DATABASE_URL": "postgresql+psycopg://u@h/db",
            "SAMIZDAT_S3_BUCKET": "archive",
            "SAMIZDAT_S3_ENDPOINT_URL": "http://127.0.0.1:9000",
            "SAMIZDAT_IPFS_API": "/ip4/127.0.0.1/tcp/5001/http",
            "SAMIZDAT_FETCH_ALLOW_PRIVATE": "1",
            "SAMIZDAT_FETCH_MAX_BYTES": "1024",
            "SAMIZDAT_FETCH_TIMEOUT": "2.5",
            "UNRELATED": "ignored",
        }
    )
    assert settings.data_dir == Path("/srv/samizdat")
    assert settings.sqlalchemy_url == "postgresql+psycopg://u@h/db"
    assert settings.s3_bucket == "archive"
    assert settings.fetch_allow_private is True
    assert settings.fetch_max_bytes == 1024
    assert settings.fetch_timeout == 2.5


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("SAMIZDAT_FETCH_ALLOW_PRIVATE", "maybe", "must be a boolean"),
        ("SAMIZDAT_FETCH_MAX_BYTES", "lots", "must be a number"),
        ("SAMIZDAT_FETCH_TIMEOUT", "-1", "must be positive"),
        ("SAMIZDAT_IPFS_API", "http://127.0.0.1:5001", "must be a multiaddr"),
        ("SAMIZDAT_DATA_DIR", "  ", "must not be empty"),
        ("SAMIZDAT_FETCH_PROXY", "tor:9050", "FETCH_PROXY must be"),
        ("SAMIZDAT_FRAGMENT_MIN_CHARS", "500", "must be below"),
    ],
)
def test_bad_values_raise_one_clear_error(name, value, message):
    with pytest.raises(SettingsError, match=message):
        load_settings({name: value})


def test_secret_key_is_not_shown_in_repr():
    assert "hunter2" not in repr(Settings(secret_key="hunter2"))


def test_relative_paths_are_resolved_once_against_the_working_directory(tmp_path, monkeypatch):
    """A relative path means the directory the process started in, for every reader of it.

    Flask's send_from_directory read the default "var" against the app's package, so every
    published embed file answered 404 on the README's own setup (issue 14, item 1).
    """
    monkeypatch.chdir(tmp_path)
    settings = load_settings({
        "SAMIZDAT_DATA_DIR": "var",
        "SAMIZDAT_PUBLIC_DIR": "pub",
        "SAMIZDAT_TRANSLATIONS_DIR": "tr",
        "SAMIZDAT_EMBED_SIGNING_KEY": "keys/k.pem",
        "SAMIZDAT_EMBED_PREVIOUS_KEYS": "old/a.pem, /abs/b.pem",
        "SAMIZDAT_DATABASE_URL": "sqlite:///db/s.db?timeout=5",
    })
    monkeypatch.chdir("/")
    assert settings.data_dir == tmp_path / "var"
    assert settings.public_path == tmp_path / "pub"
    assert settings.translations_path == tmp_path / "tr"
    assert settings.embed_signing_key_path == tmp_path / "keys" / "k.pem"
    assert settings.embed_previous_key_paths == [tmp_path / "old" / "a.pem", Path("/abs/b.pem")]
    assert settings.sqlalchemy_url == f"sqlite:///{tmp_path}/db/s.db?timeout=5"
    assert settings.spool_dir == tmp_path / "var" / "blobs"
    # Constructed directly (as tests and tools do) the same holds, and replace() keeps it so.
    assert Settings(data_dir=Path("x")).data_dir == Path("/x")
    assert settings.replace(s3_bucket="b").data_dir == tmp_path / "var"


def test_public_url_follows_the_bind_address_unless_set():
    assert load_settings({}).public_url == "http://127.0.0.1:8000"
    assert load_settings({"SAMIZDAT_BIND": "127.0.0.1:8123"}).public_url == "http://127.0.0.1:8123"
    assert load_settings({"SAMIZDAT_BIND": "0.0.0.0:80"}).public_url == "http://127.0.0.1:80"
    assert load_settings({
        "SAMIZDAT_BIND": "127.0.0.1:8123", "SAMIZDAT_PUBLIC_URL": "https://samizdat.example",
    }).public_url == "https://samizdat.example"


def test_the_log_origin_follows_the_public_address_and_its_key_stays_outside_public(tmp_path):
    settings = load_settings({"SAMIZDAT_PUBLIC_URL": "https://Archive.example.org/samizdat/",
                              "SAMIZDAT_DATA_DIR": str(tmp_path)})
    assert settings.log_origin_name == "archive.example.org/samizdat/log"
    assert settings.log_signing_key_path == tmp_path / "keys" / "log-ed25519.pem"
    assert settings.log_path == tmp_path / "public" / "log"
    assert load_settings({"SAMIZDAT_BIND": "0.0.0.0:8080"}).log_origin_name == "127.0.0.1:8080/log"
    assert load_settings({"SAMIZDAT_LOG_ORIGIN": "samizdat.example/log"}).log_origin_name == \
        "samizdat.example/log"
    for bad in ("a+b/log", "two words/log"):
        with pytest.raises(SettingsError, match="SAMIZDAT_LOG_ORIGIN must be a name"):
            load_settings({"SAMIZDAT_LOG_ORIGIN": bad})


def test_the_widgets_checkpoint_max_age_may_be_0_for_off_and_the_log_refresh_must_be_positive():
    assert load_settings({}).embed_checkpoint_max_age_hours == 72.0
    assert load_settings({}).log_refresh_seconds == 21600.0
    assert load_settings({"SAMIZDAT_EMBED_CHECKPOINT_MAX_AGE_HOURS": "0"}).embed_checkpoint_max_age_hours == 0
    assert load_settings({"SAMIZDAT_EMBED_CHECKPOINT_MAX_AGE_HOURS": "24"}).embed_checkpoint_max_age_hours == 24
    for name, value in (("SAMIZDAT_EMBED_CHECKPOINT_MAX_AGE_HOURS", "-1"),
                        ("SAMIZDAT_LOG_REFRESH_SECONDS", "0")):
        with pytest.raises(SettingsError, match=name):
            load_settings({name: value})
