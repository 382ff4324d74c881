"""The settings loader: defaults, parsing and clear errors."""

from pathlib import Path

import pytest

from config.settings import Settings, SettingsError, load_settings


def test_defaults_give_embedded_sqlite_and_no_remote_backends():
    settings = load_settings({})
    assert settings.data_dir == Path("var")
    assert settings.sqlalchemy_url == "sqlite:///var/samizdat.db"
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
