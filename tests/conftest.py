"""Fixtures: real services started once per session, a fresh database and bucket per test.

Nothing here is mocked: S3 is moto's standalone server over HTTP, IPFS a js-ipfs daemon over its
RPC API, PostgreSQL the machine's server, sites to mirror a real HTTP server on loopback.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from config.settings import Settings
from samizdat import migrate
from samizdat.app import create_app
from samizdat.runtime import build_runtime
from tests import services
from tests.sites import FixtureSite

AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "samizdat-test",
    "AWS_SECRET_ACCESS_KEY": "samizdat-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="session", autouse=True)
def aws_credentials():
    """boto3 reads credentials from its standard chain; give it throwaway ones for moto."""
    with pytest.MonkeyPatch.context() as mp:
        for key, value in AWS_ENV.items():
            mp.setenv(key, value)
        # Never let a developer's real AWS profile leak into the tests.
        mp.delenv("AWS_PROFILE", raising=False)
        mp.delenv("AWS_SESSION_TOKEN", raising=False)
        yield


@pytest.fixture(scope="session")
def s3_server(aws_credentials):
    """moto's S3 server as its own process."""
    server = services.start_s3_server()
    yield server
    if server.proc.poll() is None:
        server.resume()  # a test may have left it paused; a stopped process ignores SIGTERM
    services.stop_process(server.proc)


@pytest.fixture(scope="session")
def ipfs_node():
    """A js-ipfs daemon with a throwaway repository."""
    node = services.start_ipfs_node()
    yield node
    services.stop_ipfs_node(node)


@pytest.fixture(scope="session")
def site():
    """The fixture web site on loopback."""
    server = FixtureSite()
    yield server
    server.close()


@pytest.fixture(scope="session")
def postgres_url():
    """A fresh PostgreSQL database for this session, migrated to the latest schema, then dropped."""
    url = services.create_postgres_database()
    migrate.upgrade(url)
    yield url
    services.drop_postgres_database(url)


def _truncate_all(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE fragments, captures, sources RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path: Path) -> str:
    """A migrated, empty database: a new SQLite file, or the session's PostgreSQL emptied."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'samizdat.db'}"
        migrate.upgrade(url)
        return url
    url = request.getfixturevalue("postgres_url")
    _truncate_all(url)
    return url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A migrated SQLite database, for tests that are about something other than the database."""
    url = f"sqlite:///{tmp_path / 'samizdat.db'}"
    migrate.upgrade(url)
    return url


@pytest.fixture
def bucket() -> str:
    """A bucket name no other test uses (the S3 server is shared by the session)."""
    return f"samizdat-{uuid.uuid4().hex[:16]}"


def make_settings(tmp_path: Path, database_url: str, **overrides) -> Settings:
    """Settings for a test: loopback fetching allowed, short timeouts."""
    values = dict(
        data_dir=tmp_path / "data",
        database_url=database_url,
        fetch_allow_private=True,
        fetch_timeout=2.0,
        fetch_connect_timeout=2.0,
        fetch_max_bytes=2 * 1024 * 1024,
        scheduler_tick_seconds=0.5,
        ipfs_timeout=10.0,
    )
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings(tmp_path, database_url, s3_server, ipfs_node, bucket) -> Settings:
    """Full settings: the parametrised database, S3 and IPFS all on."""
    return make_settings(
        tmp_path,
        database_url,
        s3_endpoint_url=s3_server.endpoint_url,
        s3_bucket=bucket,
        ipfs_api=ipfs_node.api_multiaddr,
    )


@pytest.fixture
def local_settings(tmp_path, sqlite_url) -> Settings:
    """Embedded defaults only: SQLite and the local store, no S3, no IPFS."""
    return make_settings(tmp_path, sqlite_url)


@pytest.fixture
def runtime(settings):
    """The runtime for the full settings."""
    rt = build_runtime(settings)
    yield rt
    rt.dispose()


@pytest.fixture
def app(settings):
    """The web app for the full settings."""
    application = create_app(settings)
    yield application
    application.extensions["samizdat"].dispose()


@pytest.fixture
def client(app):
    """A test client for the web app."""
    return app.test_client()


@pytest.fixture
def cli(app):
    """Runs `flask …` commands in-process against the app."""
    return app.test_cli_runner()
