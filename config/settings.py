"""One typed settings loader, shared by the web app, the scheduler and the CLI.

Every setting comes from a ``SAMIZDAT_*`` environment variable (see the README's table). Nothing
reads ``os.environ`` at import time: callers build a :class:`Settings` with :func:`load_settings`
(or construct one directly in tests) and pass it down.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

PREFIX = "SAMIZDAT_"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
LOG_FORMATS = ("text", "json")


class SettingsError(ValueError):
    """A SAMIZDAT_* variable holds a value that cannot be used."""


@dataclass(frozen=True)
class Settings:
    """Everything a Samizdat process needs to know about its environment."""

    data_dir: Path = Path("var")
    database_url: str = ""  # empty: sqlite file inside data_dir
    s3_endpoint_url: str = ""  # empty: AWS itself
    s3_bucket: str = ""  # empty: S3 off
    s3_region: str = "us-east-1"
    s3_timeout: float = 20.0  # per S3 request (read); a timeout opens the back-end's breaker
    ipfs_api: str = ""  # empty: IPFS off; a multiaddr such as /ip4/127.0.0.1/tcp/5001/http
    ipfs_timeout: float = 30.0
    fetch_allow_private: bool = False
    # Exact host:port pairs the fetcher may reach at any address (an intranet source, the tests'
    # loopback fixture site), comma-separated; every other host, redirect hop and requisite stays
    # guarded. Names are matched as written in the URL, not after resolution.
    fetch_allow_hosts: str = ""
    fetch_proxy: str = ""  # empty: direct; http://host:port or socks5h://host:port (e.g. Tor)
    fetch_connect_timeout: float = 10.0
    fetch_timeout: float = 60.0
    fetch_max_bytes: int = 20 * 1024 * 1024
    fetch_max_redirects: int = 5
    fetch_user_agent: str = (
        "SamizdatMirror/0.1 (+https://github.com/samizdat-archive; archiving blocked pages)"
    )
    default_interval_minutes: int = 360
    scheduler_tick_seconds: float = 60.0
    jobs_poll_seconds: float = 2.0
    reconcile_seconds: float = 60.0
    replica_retry_seconds: float = 30.0  # first retry delay; doubles per attempt
    replica_retry_max_seconds: float = 3600.0
    # The scheduler asks the back-ends whether this many stored replicas (least recently checked
    # first) are still there, every so often; a lost one is pushed again from the spool.
    replica_verify_seconds: float = 3600.0
    replica_verify_batch: int = 1000
    capture_concurrency: int = 4
    # Browser capture (docs/configuration.md, "Browser capture"): how many pages Chromium renders
    # at once (each is a Chromium process tree: hundreds of MB), and the Chromium to run: a path
    # or a command name; empty: `chromium` or `chromium-browser` on PATH, else browser capture is
    # off (auto falls back to HTTP).
    browser_concurrency: int = 1
    chromium: str = ""
    # The bounds of one browser capture; whichever comes first ends it with what it has, marked
    # as such (browser.configure.browser_limits maps these onto PageLimits and ProxyLimits).
    browser_wall_seconds: float = 60.0  # the whole page, whether or not data keeps arriving
    browser_scroll_steps: int = 40
    browser_max_height: int = 20_000  # pixels scrolled and screenshotted
    browser_max_requests: int = 500
    browser_max_bytes: int = 50 * 1024 * 1024  # every response of the page together
    # A Chromium process is closed and a fresh one started after this many pages (and after any
    # crash or hang): whatever one page leaks dies with it.
    browser_pages_per_process: int = 50
    fragment_min_chars: int = 60  # fragment length bounds; fragments never cut inside a word
    fragment_max_chars: int = 280
    requisites_max_count: int = 20  # same-site stylesheets and images kept per capture
    requisites_max_bytes: int = 10 * 1024 * 1024
    standby_retry_seconds: float = 10.0
    # Whether the active scheduler also captures and processes; off when `flask worker` processes
    # do (scale-out): the scheduler then only queues due sources, reconciles and re-queues.
    scheduler_runs_jobs: bool = True
    secret_key: str = field(default="", repr=False)  # empty: generated once into data_dir
    session_cookie_secure: bool = False  # true behind HTTPS: the login cookie is never sent in clear
    # Curation: an edited fragment goes back to review; by default someone else must approve it.
    fragment_self_approve: bool = False  # true for one-person archives
    # Leases: a running job renews its heartbeat; one silent for this long died and is re-queued.
    job_lease_seconds: float = 120.0
    # A processing claim (split + offline copy) not finished within this long is taken again.
    processing_lease_seconds: float = 300.0
    # After a back-end times out it is treated as down this long (then one short probe).
    backend_cooldown_seconds: float = 60.0
    # Requests larger than this get 413 before any parsing (default: just above the 50 MiB import).
    max_request_bytes: int = 51 * 1024 * 1024
    # Login attempts per client address and per account name (flask-limiter syntax).
    login_rate_limit: str = "10 per minute; 50 per hour"
    # Requests per API token (keyed by the token's id, never its value), whoever sends them.
    token_rate_limit: str = "600 per minute"
    # Public JSON API (/api/sources…, /oembed) per client address (kept only as a keyed hash).
    api_rate_limit: str = "300 per minute"
    # Full-text searches of the reader archive (?q=) per client: they cost more than a listing.
    search_rate_limit: str = "60 per minute"
    # Archivist sessions end this long after login, and after this long without an archivist page.
    session_lifetime_hours: int = 12
    session_idle_minutes: int = 60
    # Redis for shared rate-limit counters across workers; empty: each worker counts in memory.
    redis_url: str = field(default="", repr=False)
    # Embed packs: the Ed25519 key that signs them (empty: data_dir/keys/embed-ed25519.pem, 0600)
    # and where they are written for the app's own static route.
    # The app's address as readers and supporters reach it (links in packs, embed.js, oEmbed).
    # Empty: http://<bind>, so moving the server to another port moves its links with it.
    public_url: str = ""
    # Where gunicorn listens (config/gunicorn.conf.py); also the default public address.
    bind: str = "127.0.0.1:8000"
    # Where S3 serves the bucket publicly (default: the endpoint's path-style bucket URL).
    s3_public_url: str = ""
    # Public IPFS gateways, in order (comma-separated http(s) base URLs): readers get links to a
    # capture's CIDs through each, and supporters' pages try each for the packs.
    ipfs_gateways: str = "https://ipfs.io,https://dweb.link"
    # The scheduler republishes the packs once curation has held still this long (debounce).
    embed_publish_quiet_seconds: float = 30.0
    # Signed pack indexes expire this long after they are published; the scheduler republishes
    # at half this age even when nothing changed (docs/embed.md says why a week).
    embed_index_ttl_hours: float = 168.0
    # The scheduler re-exports the reader archive's static copy (`flask archive publish`) once new
    # captures have held still this long; off: only the command exports it.
    archive_publish: bool = True
    archive_publish_quiet_seconds: float = 60.0
    embed_signing_key: str = ""
    # WACZ exports: the ECDSA P-384 key that signs them (empty: data_dir/keys/wacz-ecdsa.pem, 0600).
    wacz_signing_key: str = ""
    # WACZ domain-mode signatures (docs/archive.md, "Signatures"): the operator's certificate
    # chain (PEM, leaf first, ending with the root verifiers trust) and the leaf's unencrypted
    # ECDSA key. Both or neither; with them, SAMIZDAT_TSA_URLS time-stamps each signature.
    wacz_domain_cert: str = ""
    wacz_domain_key: str = ""
    # Retired signing keys that still co-sign packs during a rotation (comma-separated paths).
    embed_previous_keys: str = ""
    public_dir: str = ""  # empty: data_dir/public
    # The provenance log (docs/provenance.md): the Ed25519 key that signs its checkpoints (empty:
    # data_dir/keys/log-ed25519.pem, made on first use, 0600) and its origin, the name verifiers
    # know it by (empty: the public address's host and path + "/log", such as example.org/log).
    log_signing_key: str = ""
    log_origin: str = ""
    # The secret under which a logged decision names its archivist by an opaque key id (an HMAC
    # of the user id), never by name. Empty: derived from the secret key (so changing that key
    # changes every archivist's id from then on; set this to keep them apart).
    log_archivist_secret: str = field(default="", repr=False)
    # RFC 3161 time-stamping authorities asked for a token over each new checkpoint (http(s) URLs,
    # comma- or space-separated, at most 8; empty: no time-stamps) and the PEM bundle of their
    # trusted roots (required with URLs): a token that does not verify against it is not published.
    tsa_urls: str = ""
    tsa_roots: str = ""
    # Witnesses the log asks to cosign each new checkpoint (C2SP tlog-witness): entries
    # "<witness vkey> <submission URL>", comma- or newline-separated; empty: no witnesses. The
    # quorum is how many cosignatures a checkpoint needs to satisfy the log's own policy (0: 1 when
    # any witness is configured — one honest witness suffices to expose a fork, and a second one
    # being down does not make every checkpoint unacceptable).
    witnesses: str = ""
    witness_quorum: int = 0
    # The log re-signs its checkpoint (with a new time line, asking the witnesses to cosign it
    # afresh) once the newest is this old, even when nothing was appended: widgets and verifiers
    # refuse checkpoints older than their maximum age, so a quiet archive must stay fresh.
    log_refresh_seconds: float = 21600.0
    # The widget (embed.js, when pinned to the log) refuses a checkpoint older than this, so a
    # stolen pack key cannot replay an index from before its revocation for long; 0: off. It must
    # exceed the refresh interval plus the time the archive may be down (docs/security.md, "Keys").
    embed_checkpoint_max_age_hours: float = 72.0
    # This server as a witness of other logs (docs/provenance.md, "Witnesses"): its Ed25519
    # cosigning key (empty: data_dir/keys/witness-ed25519.pem, made on first use, 0600), its key
    # name (empty: the public address's host and path + "/witness") and the file listing the logs
    # it witnesses, one "<origin> <log vkey>" per line (empty: this server witnesses nothing).
    witness_key: str = ""
    witness_name: str = ""
    witnessed_logs: str = ""
    # Compiled gettext catalogues (<lang>/LC_MESSAGES/messages.mo, built by `make install`);
    # empty: translations/ beside the code. A language without one is served in English.
    translations_dir: str = ""
    # Operations (docs/operations.md). Log lines as "text" or "json" (one object per line), for
    # the web app, the scheduler and the CLI alike; never a client address, agent or query.
    log_format: str = "text"
    # A Bearer token for /metrics besides archivists' API tokens (empty: API tokens only).
    metrics_token: str = field(default="", repr=False)
    # /readyz gives each dependency this long before it counts as failing.
    ready_timeout_seconds: float = 3.0
    # /metrics answers database-derived figures from a cache this old at most (per worker).
    metrics_cache_seconds: float = 10.0

    @property
    def s3_public_base(self) -> str:
        """The public URL of the S3 bucket, without a trailing slash ("" when S3 is off)."""
        if not self.s3_bucket:
            return ""
        if self.s3_public_url:
            return self.s3_public_url.rstrip("/")
        if self.s3_endpoint_url:
            return f"{self.s3_endpoint_url.rstrip('/')}/{self.s3_bucket}"
        return f"https://{self.s3_bucket}.s3.{self.s3_region}.amazonaws.com"

    @property
    def fetch_allowed_endpoints(self) -> frozenset[tuple[str, int]]:
        """``fetch_allow_hosts`` as (host, port) pairs, hosts lower-cased without brackets."""
        return frozenset(
            parse_endpoint(item) for item in self.fetch_allow_hosts.split(",") if item.strip()
        )

    @property
    def gateway_list(self) -> list[str]:
        """The configured IPFS gateways, in order, without trailing slashes."""
        return [g.strip().rstrip("/") for g in self.ipfs_gateways.split(",") if g.strip()]

    def _key_file(self, configured: str, default_name: str) -> Path:
        """A signing key's file: as configured, else ``DATA_DIR/keys/<default_name>`` — outside
        every directory the app serves."""
        return Path(configured) if configured else self.data_dir / "keys" / default_name

    @property
    def embed_signing_key_path(self) -> Path:
        """Where the pack signing key lives."""
        return self._key_file(self.embed_signing_key, "embed-ed25519.pem")

    @property
    def wacz_signing_key_path(self) -> Path:
        """Where the WACZ signing key lives."""
        return self._key_file(self.wacz_signing_key, "wacz-ecdsa.pem")

    @property
    def embed_previous_key_paths(self) -> list[Path]:
        """The retired signing keys, in order."""
        return [Path(p.strip()) for p in self.embed_previous_keys.split(",") if p.strip()]

    @property
    def public_path(self) -> Path:
        """The directory of published static files; its packs/ is served at /embed/packs/."""
        return Path(self.public_dir) if self.public_dir else self.data_dir / "public"

    @property
    def log_signing_key_path(self) -> Path:
        """Where the log's signing key lives."""
        return self._key_file(self.log_signing_key, "log-ed25519.pem")

    @property
    def log_path(self) -> Path:
        """The provenance log's directory (tiles and checkpoint), published as it is at /log/."""
        return self.public_path / "log"

    @property
    def log_origin_name(self) -> str:
        """The log's origin line, C2SP style: a schema-less URL such as ``example.org/log``."""
        return self.log_origin or self._public_name("log")

    def _public_name(self, suffix: str) -> str:
        """The public address's host, port and path + ``/suffix``, without a scheme: a C2SP name."""
        parts = urlsplit(self.public_url)
        host = parts.hostname or "localhost"
        if ":" in host:
            host = f"[{host}]"
        port = f":{parts.port}" if parts.port else ""
        return f"{host}{port}{parts.path.rstrip('/')}/{suffix}"

    @property
    def witness_key_path(self) -> Path:
        """Where this server's witness cosigning key lives."""
        return self._key_file(self.witness_key, "witness-ed25519.pem")

    @property
    def witness_key_name(self) -> str:
        """This server's name as a witness: the key name on its cosignatures."""
        return self.witness_name or self._public_name("witness")

    @property
    def witnessed_logs_path(self) -> Path | None:
        """The file listing the logs this server witnesses; None when it witnesses none."""
        return Path(self.witnessed_logs) if self.witnessed_logs else None

    @property
    def witness_list(self) -> list[tuple[str, str]]:
        """The log's witnesses as (vkey, submission URL) pairs; ValueError if an entry is not one."""
        pairs = []
        for item in self.witnesses.replace("\n", ",").split(","):
            if not item.strip():
                continue
            fields = item.split()
            if len(fields) != 2:
                raise ValueError(f"{item.strip()!r} is not '<vkey> <URL>'")
            pairs.append((fields[0], fields[1].rstrip("/")))
        return pairs

    @property
    def witness_quorum_count(self) -> int:
        """How many witness cosignatures the log's policy asks for (see ``witness_quorum``)."""
        if self.witness_quorum:
            return self.witness_quorum
        return 1 if self.witnesses.strip(" ,\n") else 0

    @property
    def tsa_url_list(self) -> list[str]:
        """The configured TSAs' URLs, in order (their tokens are numbered in this order)."""
        return self.tsa_urls.replace(",", " ").split()

    @property
    def translations_path(self) -> Path:
        """Where the reader pages' compiled catalogues are read from."""
        if self.translations_dir:
            return Path(self.translations_dir)
        return Path(__file__).resolve().parent.parent / "translations"

    @property
    def sqlalchemy_url(self) -> str:
        """The database URL, defaulting to a SQLite file inside the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'samizdat.db').as_posix()}"

    @property
    def spool_dir(self) -> Path:
        """Where the local content-addressed store keeps its bytes."""
        return self.data_dir / "blobs"

    def __post_init__(self) -> None:
        """Resolve every configured path once, against the working directory the process started in.

        A relative path left as it is would be read against whatever directory a library chooses
        later (Flask's send_from_directory uses the app's root, not the working directory), so the
        default ``var`` meant two different places in one process.
        """
        absolute = {
            "data_dir": Path(self.data_dir).expanduser().resolve(),
            "database_url": _absolute_sqlite_url(self.database_url),
            "embed_signing_key": _absolute_path_text(self.embed_signing_key),
            "embed_previous_keys": ",".join(
                _absolute_path_text(p.strip()) for p in self.embed_previous_keys.split(",")
                if p.strip()
            ),
            "wacz_signing_key": _absolute_path_text(self.wacz_signing_key),
            "wacz_domain_cert": _absolute_path_text(self.wacz_domain_cert),
            "wacz_domain_key": _absolute_path_text(self.wacz_domain_key),
            "public_dir": _absolute_path_text(self.public_dir),
            "log_signing_key": _absolute_path_text(self.log_signing_key),
            "tsa_roots": _absolute_path_text(self.tsa_roots),
            "witness_key": _absolute_path_text(self.witness_key),
            "witnessed_logs": _absolute_path_text(self.witnessed_logs),
            "translations_dir": _absolute_path_text(self.translations_dir),
        }
        for name, value in absolute.items():
            object.__setattr__(self, name, value)
        if not self.public_url:
            host, _, port = self.bind.rpartition(":")
            # A server listening on every interface is reached, on this machine, at loopback.
            host = "127.0.0.1" if host in ("0.0.0.0", "", "[::]") else host
            object.__setattr__(self, "public_url", f"http://{host}:{port}")

    def replace(self, **changes) -> Settings:
        """A copy of these settings with some fields changed (tests use this)."""
        return dataclasses.replace(self, **changes)


def _absolute_path_text(value: str) -> str:
    """A configured path as an absolute one ("" stays "": the default applies)."""
    return str(Path(value).expanduser().resolve()) if value else ""


def _absolute_sqlite_url(url: str) -> str:
    """A ``sqlite:///relative/file`` URL made absolute; any other URL unchanged."""
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        return url
    rest = url[len(prefix):]
    path, sep, query = rest.partition("?")
    if not path or path == ":memory:" or path.startswith("/"):
        return url
    return f"{prefix}{Path(path).expanduser().resolve().as_posix()}{sep}{query}"


# Numeric settings where 0 is a meaningful value (off) rather than a mistake.
_ZERO_MEANS_OFF = frozenset({"embed_checkpoint_max_age_hours"})


def _parse_bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise SettingsError(f"{PREFIX}{name.upper()} must be a boolean (1/0, true/false), got {raw!r}")


def _parse_number(name: str, raw: str, kind: type) -> int | float:
    try:
        value = kind(raw.strip())
    except ValueError:
        raise SettingsError(f"{PREFIX}{name.upper()} must be a number, got {raw!r}") from None
    if value <= 0:
        raise SettingsError(f"{PREFIX}{name.upper()} must be positive, got {raw!r}")
    return value


def endpoint_key(host: str, port: int) -> tuple[str, int]:
    """A host and port as ``fetch_allow_hosts`` compares them: lower case, no brackets, no
    trailing dot."""
    return host.strip().lower().strip("[]").rstrip("."), port


def parse_endpoint(item: str) -> tuple[str, int]:
    """One ``host:port`` of ``fetch_allow_hosts`` (``[::1]:8080`` for IPv6); ValueError if not."""
    host, sep, port = item.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{item.strip()!r} is not host:port")
    if ":" in host and not (host.startswith("[") and host.endswith("]")):
        raise ValueError(f"{item.strip()!r}: write an IPv6 address in brackets, [::1]:8080")
    return endpoint_key(host, int(port))


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build :class:`Settings` from ``SAMIZDAT_*`` variables (``os.environ`` when not given)."""
    env = os.environ if environ is None else environ
    values: dict[str, object] = {}
    for f in dataclasses.fields(Settings):
        raw = env.get(PREFIX + f.name.upper())
        if raw is None:
            continue
        if f.type in ("bool", bool):
            values[f.name] = _parse_bool(f.name, raw)
        elif f.type in ("int", int):
            values[f.name] = _parse_number(f.name, raw, int)
        elif f.name in _ZERO_MEANS_OFF and raw.strip() in ("0", "0.0"):
            values[f.name] = 0.0
        elif f.type in ("float", float):
            values[f.name] = _parse_number(f.name, raw, float)
        elif f.type in ("Path", Path):
            if not raw.strip():
                raise SettingsError(f"{PREFIX}{f.name.upper()} must not be empty")
            values[f.name] = Path(raw)
        else:
            values[f.name] = raw.strip()
    settings = Settings(**values)
    if settings.ipfs_api and not settings.ipfs_api.startswith("/"):
        raise SettingsError(
            f"{PREFIX}IPFS_API must be a multiaddr such as /ip4/127.0.0.1/tcp/5001/http, "
            f"got {settings.ipfs_api!r}"
        )
    if settings.log_format not in LOG_FORMATS:
        raise SettingsError(
            f"{PREFIX}LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, got {settings.log_format!r}"
        )
    if settings.fragment_min_chars >= settings.fragment_max_chars:
        raise SettingsError(
            f"{PREFIX}FRAGMENT_MIN_CHARS must be below {PREFIX}FRAGMENT_MAX_CHARS "
            f"({settings.fragment_min_chars} ≥ {settings.fragment_max_chars})"
        )
    if settings.fetch_proxy and not settings.fetch_proxy.startswith(
        ("http://", "https://", "socks5://", "socks5h://", "socks4://", "socks4a://")
    ):
        raise SettingsError(
            f"{PREFIX}FETCH_PROXY must be an http://, https://, socks5:// or socks5h:// URL, "
            f"got {settings.fetch_proxy!r}"
        )
    if settings.log_archivist_secret and len(settings.log_archivist_secret.encode()) < 16:
        raise SettingsError(f"{PREFIX}LOG_ARCHIVIST_SECRET must be at least 16 bytes (or empty)")
    try:
        origin = settings.log_origin_name
    except ValueError:  # a public URL whose port is not a number
        origin = ""
    # The origin is also the checkpoint key's name (C2SP signed-note): no '+', space or control.
    if not origin or "+" in origin or any(c.isspace() or not c.isprintable() for c in origin):
        raise SettingsError(
            f"{PREFIX}LOG_ORIGIN must be a name without '+' or spaces, such as example.org/log, "
            f"got {origin!r}"
        )
    _check_witness_settings(settings)
    _check_browser_settings(settings)
    try:
        settings.fetch_allowed_endpoints  # noqa: B018 - parses every entry
    except ValueError as exc:
        raise SettingsError(f"{PREFIX}FETCH_ALLOW_HOSTS must list host:port pairs: {exc}") from None
    _check_tsas(settings)
    _check_wacz_domain(settings)
    bad_gateway = next((g for g in settings.gateway_list if not _is_base_url(g)), None)
    if bad_gateway is not None:
        raise SettingsError(
            f"{PREFIX}IPFS_GATEWAYS must be comma-separated http(s) base URLs without a query, "
            f"such as https://ipfs.io, got {bad_gateway!r}"
        )
    return settings


# The browser settings' bounds, inclusive: past them a capture is a hazard to the machine (a
# 100,000-pixel screenshot is gigabytes of pixels) or never ends, not merely thorough.
BROWSER_BOUNDS: dict[str, tuple[float, float, str]] = {
    "browser_concurrency": (1, 64, ""),
    "browser_wall_seconds": (1, 3600, " seconds"),
    "browser_scroll_steps": (1, 10_000, ""),
    "browser_max_height": (1000, 50_000, " pixels"),
    "browser_max_requests": (1, 100_000, ""),
    "browser_max_bytes": (1024 * 1024, 4 * 1024 ** 3, " bytes"),
    "browser_pages_per_process": (1, 100_000, ""),
}


def _check_browser_settings(settings: Settings) -> None:
    """Each browser limit within its bounds (BROWSER_BOUNDS), or one line naming the variable."""
    for name, (low, high, unit) in BROWSER_BOUNDS.items():
        value = getattr(settings, name)
        if not low <= value <= high:
            raise SettingsError(
                f"{PREFIX}{name.upper()} must be between {_plain(low)} and {_plain(high)}{unit}, "
                f"got {_plain(value)}"
            )
    if settings.chromium and any(c in settings.chromium for c in "\n\r\0"):
        raise SettingsError(f"{PREFIX}CHROMIUM must be a path or a command name")


def _plain(number: float) -> str:
    """A bound or value as an operator typed it: 60, 1.5, 4294967296 (never 4.29e+09)."""
    return str(int(number)) if float(number).is_integer() else str(number)


def _check_tsas(settings: Settings) -> None:
    """SAMIZDAT_TSA_URLS: at most 8 distinct http(s) URLs, and then SAMIZDAT_TSA_ROOTS too."""
    # The one URL rule is the client's own; it needs nothing of the web app.
    from provenance.tiles import MAX_TIMESTAMPS
    from provenance.timestamp import TimestampError, check_tsa_url

    urls = settings.tsa_url_list
    for url in urls:
        try:
            check_tsa_url(url)
        except TimestampError as exc:
            raise SettingsError(f"{PREFIX}TSA_URLS must list http(s) URLs: {exc}") from None
    if len(urls) > MAX_TIMESTAMPS or len(set(urls)) != len(urls):
        raise SettingsError(
            f"{PREFIX}TSA_URLS must list at most {MAX_TIMESTAMPS} different URLs, got {len(urls)}"
            + (" with repeats" if len(set(urls)) != len(urls) else ""))
    if urls and not settings.tsa_roots:
        raise SettingsError(
            f"{PREFIX}TSA_ROOTS must name a PEM file of the TSAs' trusted root certificates when "
            f"{PREFIX}TSA_URLS is set")
def _check_wacz_domain(settings: Settings) -> None:
    """SAMIZDAT_WACZ_DOMAIN_CERT and _KEY: both or neither, with TSAs, and a chain whose leaf the
    key belongs to (read once here, so a mistake stops the start, not an export)."""
    from archive.wacz_signing import load_domain_identity
    from samizdat.errors import SamizdatError

    cert, key = settings.wacz_domain_cert, settings.wacz_domain_key
    if not cert and not key:
        return
    if not cert or not key:
        raise SettingsError(f"{PREFIX}WACZ_DOMAIN_CERT and {PREFIX}WACZ_DOMAIN_KEY go together: "
                            "set both (domain-mode WACZ signatures) or neither (anonymous)")
    if not settings.tsa_url_list:
        raise SettingsError(f"{PREFIX}WACZ_DOMAIN_CERT needs {PREFIX}TSA_URLS: a domain-mode "
                            "signature carries an RFC 3161 time-stamp of itself")
    try:
        load_domain_identity(Path(cert), Path(key))
    except SamizdatError as exc:
        raise SettingsError(f"{PREFIX}WACZ_DOMAIN_CERT/KEY: {exc}") from None


def _check_witness_settings(settings: Settings) -> None:
    """Refuse witness settings that could never work: a bad vkey or URL, an impossible quorum."""
    from provenance.cosignature import CosignatureVerifier  # the one parser of witness keys
    from provenance.errors import NoteError

    try:
        witnesses = settings.witness_list
    except ValueError as exc:
        raise SettingsError(f"{PREFIX}WITNESSES must list '<vkey> <URL>' entries: {exc}") from None
    for vkey, url in witnesses:
        try:
            CosignatureVerifier.from_vkey(vkey)
        except NoteError as exc:
            raise SettingsError(f"{PREFIX}WITNESSES: {vkey!r} is not a witness key: {exc}") from None
        if not _is_base_url(url):
            raise SettingsError(f"{PREFIX}WITNESSES: {url!r} is not an http(s) URL without a query")
    if len({vkey for vkey, _ in witnesses}) != len(witnesses):
        raise SettingsError(f"{PREFIX}WITNESSES lists a witness twice")
    if settings.witness_quorum > len(witnesses):
        raise SettingsError(
            f"{PREFIX}WITNESS_QUORUM is {settings.witness_quorum} but only {len(witnesses)} "
            f"witness(es) are configured in {PREFIX}WITNESSES")
    try:
        name = settings.witness_key_name
    except ValueError:  # a public URL whose port is not a number (reported with the origin)
        name = ""
    if not name or "+" in name or any(c.isspace() or not c.isprintable() for c in name):
        raise SettingsError(
            f"{PREFIX}WITNESS_NAME must be a name without '+' or spaces, such as "
            f"example.org/witness, got {name!r}")


def _is_base_url(value: str) -> bool:
    """True for an http(s) URL with a host and no query, fragment or credentials."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return False
    return (
        parts.scheme in ("http", "https") and bool(parts.hostname) and not parts.query
        and not parts.fragment and "?" not in value and "#" not in value
        and parts.username is None and not any(c.isspace() for c in value)
    )
