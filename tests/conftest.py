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
from samizdat.db import Base, import_all_models
from samizdat.runtime import build_runtime
from tests import services
from tests.security.servers import TricklingServer
from tests.sites import FixtureSite



@pytest.fixture(scope="session", autouse=True)
def aws_credentials():
    """boto3 reads credentials from its standard chain; give it throwaway ones for moto."""
    with pytest.MonkeyPatch.context() as mp:
        for key, value in services.AWS_TEST_ENV.items():
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
def trickler():
    """A hostile loopback server sending one byte every half second, for 15 s per connection."""
    server = TricklingServer(interval=0.5, give_up=15.0)
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
    """Empty every Samizdat table (not Alembic's), restarting ids, so each test starts clean."""
    import_all_models()
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
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


# --- Accounts: users, tokens and logged-in clients for the archivist endpoints. ---

TEST_PASSWORD = "correct horse battery staple"


def log_decisions(app_or_runtime) -> None:
    """One provenance log pass (as the scheduler runs after curation): what archivists approved
    becomes public, since a decision not yet in the log is not yet public (issue #15)."""
    from provenance.appender import append_captures

    runtime = getattr(app_or_runtime, "extensions", {}).get("samizdat", app_or_runtime)
    append_captures(runtime)


def create_account(app, name: str, role: str = "archivist", password: str = TEST_PASSWORD):
    """Store a user directly (as `flask users create` would) and return it."""
    from accounts.users import create_user

    with app.extensions["samizdat"].Session() as session:
        user = create_user(session, name, role, password)
        session.commit()
        return user


def issue_account_token(app, name: str, role: str) -> str:
    """Create user ``name`` with ``role`` and return a fresh plain API token for them."""
    from accounts.users import issue_token

    user = create_account(app, name, role)
    with app.extensions["samizdat"].Session() as session:
        plain = issue_token(session, session.merge(user), "tests").plain
        session.commit()
    return plain


@pytest.fixture
def archivist_token(app) -> str:
    """A Bearer token of the archivist 'arch'."""
    return issue_account_token(app, "arch", "archivist")


@pytest.fixture
def admin_token(app) -> str:
    """A Bearer token of the admin 'boss'."""
    return issue_account_token(app, "boss", "admin")


def csrf_of(client) -> str:
    """The CSRF token in ``client``'s session (what the pages put in every form)."""
    with client.session_transaction() as sess:
        return sess["csrf"]


@pytest.fixture
def login():
    """``login(client, name, password)`` posts the login form; returns the session's CSRF token."""

    def do_login(client, name: str, password: str = TEST_PASSWORD) -> str:
        client.get("/login")
        response = client.post(
            "/login", data={"name": name, "password": password, "csrf_token": csrf_of(client)}
        )
        assert response.status_code == 303, response.get_data(as_text=True)
        return csrf_of(client)

    return do_login


# --- The browser: one real Chromium per session, shared by every browser test. ---

CHROMIUM = "/usr/bin/chromium"
# No sandbox: the tests may run as root in a container. The rest keeps Chromium from phoning home.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]


@pytest.fixture(scope="session")
def chromium():
    """A headless Chromium for the whole session (Playwright cannot download browsers here)."""
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
    except PlaywrightError as exc:
        playwright.stop()
        pytest.fail(f"cannot start Chromium at {CHROMIUM} (`make test` installs it): {exc}")
    yield browser
    browser.close()
    playwright.stop()
