"""`flask sources …`, `flask mirror …`, `flask scheduler` and `flask worker`: the operator's commands."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from accounts.audit import cli_actor, record
from mirror.models import Source
from mirror.importer import import_sources, read_import_file
from mirror.jobs import enqueue, run_jobs
from mirror.pipeline import MAX_DOCUMENT_BYTES, active_source_ids, capture_document
from mirror.rebuild import RebuildError, plan_rebuild, rebuild_index, save_index_state
from mirror.replicas import reconcile, verify_replicas
from mirror.routes import source_as_dict
from mirror.sources import (
    CAPTURE_MODES,
    DEFAULT_CAPTURE_MODE,
    ConfirmationNeeded,
    add_source,
    bulk_change,
    interval_or_default,
    source_filter,
)
from samizdat.errors import SamizdatError
from samizdat.tasks import TASKS_KEY
from samizdat.web import runtime

@click.group("sources")
def sources_cli():
    """Manage the pages to mirror."""


def _mode_option(what: str) -> Callable:
    """``--mode``: a plain string, checked by clean_capture_mode like every other way in (a
    click.Choice would accept "HTTP" with case_sensitive=False and word its errors apart)."""
    return click.option(
        "--mode", "mode", default=DEFAULT_CAPTURE_MODE, show_default=True,
        help=f"{what}: {', '.join(CAPTURE_MODES)} (auto: HTTP first, the browser when the "
        "page looks script-built).",
    )


@sources_cli.command("add")
@click.argument("url")
@click.option("--country", help="Two-letter country code where the page is blocked.")
@click.option("--collection", help="Collection name, e.g. vietnam.")
@click.option("--every", "every", help="Capture interval: 30m, 6h, 1d (default from settings).")
@_mode_option("How to capture it")
@with_appcontext
def sources_add(
    url: str, country: str | None, collection: str | None, every: str | None, mode: str
):
    """Add URL as a source (http/https only)."""
    rt = runtime()
    with rt.Session() as session:
        try:
            interval = interval_or_default(every, rt.settings)
            result = add_source(
                session, url, interval, country=country, collection=collection, actor=cli_actor(),
                capture_mode=mode,
            )
        except SamizdatError as exc:
            raise click.ClickException(str(exc)) from None
        session.commit()
        verb = "added" if result.created else "already present"
        click.echo(
            f"{verb}: source {result.source.id} {result.source.url} "
            f"(capture mode {result.source.capture_mode})"
        )


@sources_cli.command("import")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--country", help="Two-letter country code (default: from a file name like vn.csv).")
@click.option("--collection", help="Collection name, e.g. vietnam.")
@click.option("--every", "every", help="Capture interval: 30m, 6h, 1d (default from settings).")
@click.option(
    "--paused", is_flag=True,
    help="Add the new sources paused (resume them later with `flask sources resume`).",
)
@_mode_option("How to capture the new sources, unless a CSV row has a capture_mode of its own")
@with_appcontext
def sources_import(
    file: str, country: str | None, collection: str | None, every: str | None, paused: bool,
    mode: str,
):
    """Import a Citizen Lab test-list CSV or a plain list of URLs (one per line); idempotent."""
    rt = runtime()
    try:
        interval = interval_or_default(every, rt.settings)
    except SamizdatError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        with click.open_file(file, "rb") as fh:
            data = read_import_file(fh)
    except OSError as exc:
        raise click.ClickException(f"cannot read {file}: {exc.strerror or exc}") from None
    except SamizdatError as exc:
        raise click.ClickException(str(exc)) from None
    total = data.count(b"\n") + 1  # for the progress bar; no copy of every line
    with rt.Session() as session:
        with click.progressbar(length=total, label="importing", file=sys.stderr) as bar:
            try:
                summary = import_sources(
                    session, data, None if file == "-" else file, interval,
                    country=country, collection=collection, progress=bar.update,
                    active=not paused, actor=cli_actor(), capture_mode=mode,
                )
            except SamizdatError as exc:
                raise click.ClickException(str(exc)) from None
        session.commit()
    lines = summary.lines()
    click.echo(lines[0] + (" (added paused)" if paused and summary.added else ""))
    for line in lines[1:]:
        click.echo(line, err=True)


@sources_cli.command("upload")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--url", required=True, help="The address of the page this document preserves.")
@click.option("--country", help="Two-letter country code where the page is blocked.")
@click.option("--collection", help="Collection name, e.g. vietnam.")
@with_appcontext
def sources_upload(file: str, url: str, country: str | None, collection: str | None):
    """Keep an HTML or text FILE as a capture of URL, for a page that is gone."""
    rt = runtime()
    with open(file, "rb") as fh:
        data = fh.read(MAX_DOCUMENT_BYTES + 1)
    try:
        with rt.Session() as session:
            result = add_source(
                session, url, rt.settings.default_interval_minutes, country=country,
                collection=collection, actor=cli_actor(),
            )
            session.commit()
            source_id = result.source.id
        outcome = capture_document(rt, source_id, data, file, actor=cli_actor())
    except SamizdatError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"capture {outcome.capture_id} of source {source_id}: {outcome.new_fragments} new fragments"
    )


_BULK_DONE = {"pause": "paused", "resume": "resumed", "delete": "deleted"}


def _bulk_command(action: str, help_text: str) -> Callable:
    """`flask sources pause|resume|delete`: one command per bulk action, all through bulk_change."""

    @click.argument("source_ids", nargs=-1, type=int)
    @click.option("--collection", help="Every live source of this collection.")
    @click.option("--country", help="Every live source of this two-letter country code.")
    @with_appcontext
    def command(source_ids: tuple[int, ...], collection: str | None, country: str | None, **kw):
        rt = runtime()
        with rt.Session() as session:
            try:
                flt = source_filter(source_ids, country=country, collection=collection)
                try:
                    result = bulk_change(
                        session, action, flt, confirmed=kw.get("yes", False), actor=cli_actor()
                    )
                except ConfirmationNeeded as needed:
                    session.rollback()  # hold no transaction open while a person reads
                    # Without a terminal click.confirm reads EOF and aborts: nothing is deleted.
                    click.confirm(
                        f"{action.capitalize()} {len(needed.matched)} source(s)? "
                        "Their captures are kept", abort=True, err=True,
                    )
                    result = bulk_change(session, action, flt, confirmed=True, actor=cli_actor())
            except SamizdatError as exc:
                raise click.ClickException(str(exc)) from None
            session.commit()
        done = _BULK_DONE[action]
        click.echo(f"{done} {result.changed} of {len(result.matched)} matching sources")

    command.__doc__ = help_text
    if action == "delete":
        command = click.option("--yes", is_flag=True, help="Do not ask for confirmation.")(command)
    return sources_cli.command(action)(command)


_bulk_command("pause", "Stop capturing SOURCE_IDS, or every source of --collection/--country.")
_bulk_command(
    "resume", "Capture paused SOURCE_IDS, or every source of --collection/--country, again."
)
_bulk_command(
    "delete",
    "Delete SOURCE_IDS, or every source of --collection/--country (asks first; captures are kept).",
)


@sources_cli.command("mode")
@click.argument("mode")
@click.argument("source_ids", nargs=-1, type=int)
@click.option("--collection", help="Every live source of this collection.")
@click.option("--country", help="Every live source of this two-letter country code.")
@with_appcontext
def sources_mode(
    mode: str, source_ids: tuple[int, ...], collection: str | None, country: str | None
):
    """Capture SOURCE_IDS, or every source of --collection/--country, in MODE (auto, http,
    browser)."""
    rt = runtime()
    with rt.Session() as session:
        try:
            flt = source_filter(source_ids, country=country, collection=collection)
            result = bulk_change(session, "mode", flt, actor=cli_actor(), capture_mode=mode)
        except SamizdatError as exc:
            raise click.ClickException(str(exc)) from None
        session.commit()
    click.echo(f"set {result.changed} of {len(result.matched)} matching sources to {mode}")


@sources_cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@with_appcontext
def sources_list(as_json: bool):
    """List every source."""
    with runtime().Session() as session:
        sources = list(session.scalars(select(Source).order_by(Source.id)))
        if as_json:
            click.echo(json.dumps([source_as_dict(s) for s in sources], indent=2))
            return
        for s in sources:
            state = "deleted" if s.deleted_at else "active" if s.active else "paused"
            click.echo(
                f"{s.id:>5}  {state:6}  every {s.interval_minutes:>5} min  "
                f"{s.capture_mode:7}  {s.url}"
            )


@click.group("mirror")
def mirror_cli():
    """Capture sources now."""


@mirror_cli.command("run")
@click.argument("source_ids", nargs=-1, type=int)
@click.option("--all", "run_all", is_flag=True, help="Capture every active source.")
@with_appcontext
def mirror_run(source_ids: tuple[int, ...], run_all: bool):
    """Capture SOURCE_IDS (or --all) now, synchronously, going on past failures."""
    if bool(source_ids) == run_all:
        raise click.UsageError("give source ids or --all (not both)")
    rt = runtime()
    ids = list(source_ids) if source_ids else active_source_ids(rt)
    with rt.Session() as session:
        # A deleted source is gone from mirroring, so naming one is the same mistake as a typo.
        missing = [i for i in ids if (s := session.get(Source, i)) is None or s.deleted_at]
        if missing:
            raise click.ClickException(f"no source with id {', '.join(map(str, missing))}")
        job_ids = [enqueue(session, i, "cli").id for i in ids]
        if ids:
            record(session, cli_actor(), "source.capture", "source",
                   ids[0] if len(ids) == 1 else None, {"ids": ids, "jobs": job_ids})
        session.commit()
    failures = []
    with click.progressbar(length=len(job_ids), label="capturing", file=sys.stderr) as bar:

        def done(outcome):
            bar.update(1)
            if outcome.status == "failed":
                failures.append(outcome)

        try:
            summary = run_jobs(rt, job_ids, on_done=done)
        finally:
            rt.close_browser()  # no Chromium outlives the command
    for outcome in failures:
        click.echo(f"failed: {outcome.url} ({outcome.reason}): {outcome.message}", err=True)
    click.echo(
        f"{len(summary.ok)} captured, {len(summary.unchanged)} unchanged, "
        f"{len(summary.failed)} failed, {summary.fragments} new fragments"
    )


@mirror_cli.command("reconcile")
@with_appcontext
def mirror_reconcile():
    """Retry every pending or failed replica now (ignoring backoff), copy earlier captures to a
    newly configured back-end, and finish the captures that are then complete."""

    def progress(done: int, total: int) -> None:
        # A line per hundred (and the last): a back-end being filled can take a while.
        if done % 100 == 0 or done == total:
            click.echo(f"pushed {done} of {total} replicas", err=True)

    report = reconcile(runtime(), force=True, progress=progress)
    if report.backfilled:
        click.echo(f"{report.backfilled} blobs of earlier captures were queued for a newly configured back-end",
                   err=True)
    for error in report.errors:
        click.echo(f"still failing: {error}", err=True)
    click.echo(
        f"{report.stored} replicas stored, {report.failed} failed, "
        f"{len(report.completed_captures)} captures completed"
    )
    if report.failed:
        raise SystemExit(1)


@mirror_cli.command("verify")
@with_appcontext
def mirror_verify():
    """Check every stored replica is still in its back-end, then push what was lost from the spool.

    For a store that may have lost data (an emptied bucket, a restored or replaced server).
    """
    rt = runtime()
    found = verify_replicas(rt)
    for backend in found.unreachable:
        click.echo(f"not checked: {backend} did not answer", err=True)
    click.echo(f"{found.present} replicas present, {len(found.lost)} lost")
    report = reconcile(rt, force=True)
    for error in report.errors:
        click.echo(f"still failing: {error}", err=True)
    click.echo(
        f"{report.stored} replicas stored, {report.failed} failed, "
        f"{len(report.completed_captures)} captures completed"
    )
    if report.failed or found.unreachable:
        raise SystemExit(1)


@mirror_cli.command("rebuild-index")
@click.option("--merge", is_flag=True, help="Add what is missing to a database that is not empty.")
@click.option("--dry-run", is_flag=True, help="Read and verify everything, write nothing; print counts.")
@with_appcontext
def mirror_rebuild_index(merge: bool, dry_run: bool):
    """Rebuild sources, captures, fragments and curation from the manifests and index state in S3."""
    rt = runtime()
    try:
        plan = plan_rebuild(rt)
        if not plan.manifest_shas and plan.state is None:
            raise RebuildError(f"nothing to rebuild from in bucket {rt.settings.s3_bucket}: no manifests, no index state")
        with click.progressbar(length=2 * len(plan.manifest_shas), label="rebuilding", file=sys.stderr) as bar:
            report = rebuild_index(rt, plan, merge=merge, dry_run=dry_run, progress=bar.update,
                                   actor=cli_actor())
    except SamizdatError as exc:
        raise click.ClickException(str(exc)) from None
    for problem in report.problems:
        click.echo(f"skipped: {problem}", err=True)
    for note in report.notes:
        click.echo(f"note: {note}", err=True)
    for fragment_id, reason in report.pending_again:
        click.echo(f"pending again: fragment {fragment_id}: its recorded decision was not restored: {reason}",
                   err=True)
    click.echo(report.summary(dry_run))
    if not dry_run and report.captures:
        click.echo("next: `flask mirror reconcile` (replicas, IPFS directories), `flask archive reindex` (search)",
                   err=True)
    if not report.manifests_read and plan.state is None:
        raise SystemExit(1)  # nothing in the bucket could be read


@mirror_cli.command("save-index")
@with_appcontext
def mirror_save_index():
    """Save the index state (sources, collections, curation) to S3 now, as the scheduler does."""
    try:
        key = save_index_state(runtime())
    except SamizdatError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"saved {key}" if key else "nothing to save: the newest index state in S3 is already current")


@click.command("scheduler")
@with_appcontext
def scheduler_cmd():
    """Run the capture scheduler in the foreground (its own process, never inside gunicorn)."""
    from mirror.scheduler import run_scheduler

    # Capabilities downstream of mirror declare their periodic tasks to the app factory.
    run_scheduler(runtime(), current_app.extensions.get(TASKS_KEY, ()))


@click.command("worker")
@click.option(
    "--concurrency", type=click.IntRange(1, 256), default=None,
    help="Capture threads (default: SAMIZDAT_CAPTURE_CONCURRENCY).",
)
@click.option(
    "--drain", is_flag=True,
    help="Exit once no job is left to claim and what was captured is processed (for scripts).",
)
@with_appcontext
def worker_cmd(concurrency: int | None, drain: bool):
    """Claim and run capture jobs and process new captures (its own process; run any number)."""
    from mirror.worker import run_worker

    summary = run_worker(runtime(), concurrency, drain=drain)
    if drain:
        click.echo(f"{summary.jobs} job(s) run, {summary.processed} capture(s) processed")
