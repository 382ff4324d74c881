"""`flask doctor`'s checks: every dependency and every queue an operator should look at, one line each.

Flask-free. A check is ``ok``, ``warn`` (worth a look, not a fault), ``off`` (not configured) or
``failing``; the command exits 1 when any is failing. Details name URLs, paths and error text:
they are for the operator at the console (and archivists), never for the public probes.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from ops.metrics import multiprocess_dir
from ops.readiness import check_database
from ops.state import ArchiveState, read_state
from samizdat.runtime import Runtime

OK, WARN, OFF, FAILING = "ok", "warn", "off", "failing"
# A capture recorded this long ago and still not split and replicated means processing stalled.
PROCESSING_MAX_AGE = timedelta(hours=1)


@dataclass(frozen=True)
class DoctorCheck:
    """One part's state and a one-line detail."""

    name: str
    state: str
    detail: str


def ago(seconds: float | None) -> str:
    """``3 min ago``-style wording for an age in seconds."""
    if seconds is None:
        return "never"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit} ago"
    return f"{seconds:.0f} s ago"


def _database(runtime: Runtime) -> DoctorCheck:
    health = check_database(runtime)
    if not health.ok:
        return DoctorCheck("database", FAILING, health.detail)
    from alembic.script import ScriptDirectory

    from samizdat import migrate

    url = runtime.settings.sqlalchemy_url
    heads = set(ScriptDirectory.from_config(migrate.alembic_config(url)).get_heads())
    current = migrate.current_revision(url)
    if current not in heads:
        return DoctorCheck("database", FAILING, f"{health.detail}: schema at {current or 'nothing'}, "
                                                f"code expects {', '.join(sorted(heads))} (run `flask db upgrade`)")
    return DoctorCheck("database", OK, f"{health.detail} (schema at head {current})")


def _stores(runtime: Runtime) -> list[DoctorCheck]:
    settings = runtime.settings
    checks = []
    for name, configured in (("local", True), ("s3", bool(settings.s3_bucket)), ("ipfs", bool(settings.ipfs_api))):
        if not configured:
            checks.append(DoctorCheck(name, OFF, "not configured"))
            continue
        health = runtime.stores[name].check()
        checks.append(DoctorCheck(name, OK if health.ok else FAILING, health.detail))
    return checks


def _redis(runtime: Runtime) -> DoctorCheck:
    url = runtime.settings.redis_url
    if not url:
        return DoctorCheck("redis", OFF, "not configured (login limits counted per worker)")
    import redis

    parts = urlsplit(url)
    where = f"{parts.hostname}:{parts.port or 6379}{parts.path}"  # no password in the report
    try:
        redis.Redis.from_url(url, socket_timeout=3, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        return DoctorCheck("redis", FAILING, f"{where}: {exc}")
    return DoctorCheck("redis", OK, where)


def _scheduler(state: ArchiveState) -> DoctorCheck:
    if state.leader:
        return DoctorCheck("scheduler", OK, "a scheduler holds the leader lock")
    return DoctorCheck("scheduler", FAILING, "no active scheduler: nothing is captured on schedule (run `flask scheduler`)")


def _jobs(runtime: Runtime, state: ArchiveState) -> DoctorCheck:
    queued = state.jobs.get("queued", 0)
    waited = state.age(state.oldest_queued)
    detail = f"{queued} queued (oldest since {ago(waited)}), {state.jobs.get('running', 0)} running"
    # Waiting longer than the default capture interval: captures fall behind their schedule.
    if waited is not None and waited > runtime.settings.default_interval_minutes * 60:
        return DoctorCheck("jobs", FAILING, f"{detail}: the queue is not being worked off")
    if state.stale_running:
        stale = f"{detail}, {state.stale_running} past their lease"
        # The scheduler re-queues those within half a lease; without one they stay.
        return DoctorCheck("jobs", WARN if state.leader else FAILING, stale)
    return DoctorCheck("jobs", OK, detail)


def _replicas(runtime: Runtime, state: ArchiveState) -> list[DoctorCheck]:
    from mirror.replicas import captures_missing_from

    checks = []
    # Still unstored after two retries at the longest backoff: the back-end keeps failing.
    limit = 2 * runtime.settings.replica_retry_max_seconds
    for backend in (n for n in runtime.stores if n != "local"):
        backlog = state.replica_backlog(backend)
        oldest = state.age(state.oldest_unstored.get(backend))
        # Counted here, not in read_state: /metrics reads that often, and this scans every part.
        with runtime.Session() as session:
            behind = captures_missing_from(session, backend)
        detail = (f"{backlog} waiting" + (f" (oldest {ago(oldest)})" if backlog else "")
                  + f"; {behind} captures not yet stored there")
        failing = state.replicas.get((backend, "failed"), 0) and oldest is not None and oldest > limit
        verdict = FAILING if failing else WARN if behind else OK
        if behind and not failing:
            # A back-end configured after those captures: reconcile (or the scheduler's) fills it.
            detail += " (`flask mirror reconcile` copies them from the spool)"
        checks.append(DoctorCheck(f"replicas {backend}", verdict, detail))
    return checks


def _processing(state: ArchiveState) -> DoctorCheck:
    oldest = state.age(state.oldest_unprocessed)
    detail = f"{state.processing_backlog} captures waiting" + (f" (oldest {ago(oldest)})" if oldest is not None else "")
    if oldest is not None and oldest > PROCESSING_MAX_AGE.total_seconds():
        return DoctorCheck("processing", FAILING, f"{detail}: processing has stalled")
    return DoctorCheck("processing", OK, detail)


def _packs(runtime: Runtime, state: ArchiveState) -> DoctorCheck:
    import json

    from embed.publish import PUBLISHED_STATE
    from embed.signing import load_or_create_signer
    from samizdat.errors import SamizdatError

    key_path = runtime.settings.embed_signing_key_path
    published = state.packs_published_at is not None
    if not key_path.exists():
        if published:
            # The next publish would make a new key: supporters' copies of embed.js trust the old one.
            return DoctorCheck("packs", FAILING, f"published, but the signing key {key_path} is missing")
        return DoctorCheck("packs", WARN, "never published, no signing key yet (`flask embed publish` makes both)")
    try:
        key_id = load_or_create_signer(key_path).key_id
    except SamizdatError as exc:
        return DoctorCheck("packs", FAILING, str(exc))
    if not published:
        return DoctorCheck("packs", WARN, f"never published (`flask embed publish`); signing key {key_id}")
    try:
        last = json.loads((runtime.settings.public_path / PUBLISHED_STATE).read_bytes())
    except (OSError, ValueError):
        last = {}
    detail = f"published {ago(state.age(state.packs_published_at))}, signing key {key_id}"
    if last.get("key_id") not in (None, key_id):
        return DoctorCheck("packs", FAILING, f"{detail}, but the packs were signed by {last['key_id']}")
    if last.get("failures"):
        return DoctorCheck("packs", WARN, f"{detail}; last publish failed for: {'; '.join(last['failures'])}")
    return DoctorCheck("packs", OK, detail)


def _static_copy(runtime: Runtime, state: ArchiveState) -> DoctorCheck:
    if state.static_exported_at is None:
        if not runtime.settings.archive_publish:
            return DoctorCheck("static copy", OFF, "never exported (SAMIZDAT_ARCHIVE_PUBLISH is off)")
        return DoctorCheck("static copy", WARN, "never exported (`flask archive publish`, or the scheduler)")
    return DoctorCheck("static copy", OK, f"exported {ago(state.age(state.static_exported_at))}")


def _log_copies(runtime: Runtime) -> DoctorCheck:
    from provenance.publish import publish_state

    state = publish_state(runtime.settings)
    if not state["sites"]:
        return DoctorCheck("log copies", OFF, "no S3 or IPFS: the log is served by the app only")
    last = state["last"]
    if not last:
        return DoctorCheck("log copies", WARN, "never published (`flask log publish`, or the scheduler)")
    detail = f"size {last.get('size')} sent to {', '.join(state['sites'])} at {last.get('published_at')}"
    if last.get("failures") or state["behind"]:
        problems = list(last.get("failures") or [])
        problems += [f"{name} lacks the current checkpoint" for name in state["behind"]
                     if not any(p.startswith(f"{name}:") for p in problems)]
        return DoctorCheck("log copies", WARN, f"{'; '.join(problems)} (retried every pass); last: {detail}")
    if last.get("refused"):
        return DoctorCheck("log copies", WARN, f"{detail}; not published: {'; '.join(last['refused'][:3])}")
    return DoctorCheck("log copies", OK, detail)


def _timestamps(runtime: Runtime) -> DoctorCheck:
    from provenance.appender import published_token_count
    from provenance.errors import ProvenanceError
    from provenance.note import MAX_NOTE_BYTES, Checkpoint, parse_note
    from provenance.timestamp import load_roots

    settings = runtime.settings
    urls = settings.tsa_url_list
    if not urls:
        return DoctorCheck("timestamps", OFF, "not configured (SAMIZDAT_TSA_URLS is empty): "
                                              "checkpoints get no RFC 3161 time-stamps")
    try:
        roots = load_roots(settings.tsa_roots)
    except ProvenanceError as exc:
        return DoctorCheck("timestamps", FAILING, f"{exc}: no token can be checked or published")
    detail = f"{len(urls)} TSA(s), {len(roots)} trusted root(s)"
    try:
        with open(settings.log_path / "checkpoint", "rb") as f:
            # The writer's own file, read for its size only: its signature is the verifier's job.
            size = Checkpoint.parse(parse_note(f.read(MAX_NOTE_BYTES + 1)).text).size
    except FileNotFoundError:
        return DoctorCheck("timestamps", OK, f"{detail}; no checkpoint yet")
    except (OSError, ProvenanceError) as exc:
        return DoctorCheck("timestamps", FAILING, f"{detail}; cannot read the checkpoint: {exc}")
    count = published_token_count(settings.log_path, size)
    detail += f"; the checkpoint of size {size} has {count} token(s)"
    if count < len(urls):
        # The append pass asks the missing TSAs again each time; its log lines say why they fail.
        return DoctorCheck("timestamps", WARN, f"{detail} (the scheduler's log names the failing TSAs)")
    return DoctorCheck("timestamps", OK, detail)


def _browser(runtime: Runtime) -> DoctorCheck:
    from browser.configure import chromium_missing, find_chromium

    settings = runtime.settings
    found = find_chromium(settings)
    if found is None:
        detail = f"{chromium_missing(settings)}: auto falls back to http, browser sources cannot be captured"
        # Asked for by name and absent is a fault; merely not installed is a choice.
        return DoctorCheck("browser", FAILING if settings.chromium else WARN, detail)
    return DoctorCheck("browser", OK, (
        f"chromium found at {found}; {settings.browser_concurrency} page(s) at a time, each at most "
        f"{settings.browser_wall_seconds:g} s, {settings.browser_max_requests} requests and "
        f"{settings.browser_max_bytes // (1024 * 1024)} MiB"))


def _wacz_signing(runtime: Runtime) -> DoctorCheck:
    """Which WACZ signature exports get, and whether the domain certificate is still in the
    window within which authsign accepts its signatures."""
    from datetime import datetime, timezone

    from archive.wacz_signing import load_domain_identity
    from provenance.wacz_signature import CERT_WINDOW
    from samizdat.errors import SamizdatError

    settings = runtime.settings
    if not settings.wacz_domain_cert:
        return DoctorCheck("wacz signing", OFF, "anonymous mode (SAMIZDAT_WACZ_DOMAIN_CERT not "
                                                "set): `wacz validate --verify-auth` cannot accept it")
    try:
        identity = load_domain_identity(Path(settings.wacz_domain_cert), Path(settings.wacz_domain_key))
    except SamizdatError as exc:
        return DoctorCheck("wacz signing", FAILING, str(exc))
    now = datetime.now(timezone.utc)
    leaf = identity.leaf
    detail = (f"domain mode for {identity.domain}, certificate from {leaf.not_valid_before_utc:%Y-%m-%d %H:%M} "
              f"UTC, usable until {identity.usable_until():%Y-%m-%d %H:%M} UTC")
    if not identity.fresh(now):
        return DoctorCheck("wacz signing", WARN, f"{detail}: past it, exports are signed anonymously; "
                           f"renew the certificate (authsign accepts a signature made within "
                           f"{CERT_WINDOW.days} days of its notBefore)")
    return DoctorCheck("wacz signing", OK, detail)


def _metrics_dir() -> DoctorCheck:
    path = multiprocess_dir()
    if path is None:
        return DoctorCheck("metrics", OFF, "single-process registry (gunicorn's workers get a shared directory)")
    try:
        with tempfile.NamedTemporaryFile(dir=path, prefix=".doctor-"):
            pass
    except OSError as exc:
        return DoctorCheck("metrics", FAILING, f"{path} is not writable: {exc}")
    return DoctorCheck("metrics", OK, f"multiprocess directory {path} ({len(os.listdir(path))} files)")


def run_doctor(runtime: Runtime) -> list[DoctorCheck]:
    """Every check, in the order the report prints them."""
    checks = [_database(runtime), *_stores(runtime), _redis(runtime)]
    if checks[0].state == OK:
        try:
            state = read_state(runtime)
        except Exception as exc:  # reported, not raised: the other lines still help
            checks.append(DoctorCheck("state", FAILING, f"cannot read the archive's state: {exc}"))
        else:
            checks += [_scheduler(state), _jobs(runtime, state), *_replicas(runtime, state),
                       _processing(state), _packs(runtime, state), _static_copy(runtime, state),
                       _log_copies(runtime)]
    checks += [_timestamps(runtime), _wacz_signing(runtime), _browser(runtime), _metrics_dir()]
    return checks


def doctor_report(checks: list[DoctorCheck]) -> dict:
    """The JSON form of a run: ``ok`` or ``failing``, the failing parts, every check."""
    failing = [c.name for c in checks if c.state == FAILING]
    return {"status": "failing" if failing else "ok", "failing": failing, "checks": [asdict(c) for c in checks]}
