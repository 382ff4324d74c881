"""Health of the database and every configured storage back-end, for /healthz and `flask doctor`."""

from __future__ import annotations

from dataclasses import asdict

from sqlalchemy import text

from mirror.storage import BackendHealth
from samizdat.runtime import Runtime


def check_database(runtime: Runtime) -> BackendHealth:
    """Run a trivial query against the configured database."""
    try:
        with runtime.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # any driver error means "not reachable" here
        return BackendHealth("database", False, f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
    return BackendHealth("database", True, runtime.engine.url.render_as_string(hide_password=True))


def collect_health(runtime: Runtime, details: bool = True) -> dict:
    """Every component's health, plus which optional back-ends are configured at all.

    ``details=False`` (the public /healthz) leaves out each check's detail line: it names the
    database URL, data paths and internal endpoints, which are for archivists and `flask doctor`.
    """
    checks = [check_database(runtime)] + [store.check() for store in runtime.stores.values()]
    configured = {"local": True, "s3": bool(runtime.settings.s3_bucket), "ipfs": bool(runtime.settings.ipfs_api)}
    shown = {c.backend: asdict(c) for c in checks}
    if not details:
        for check in shown.values():
            del check["detail"]
    return {
        "status": "ok" if all(c.ok for c in checks) else "degraded",
        "configured": configured,
        "checks": shown,
    }
