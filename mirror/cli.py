"""`flask sources …`, `flask mirror …` and `flask scheduler`: the local operator's commands."""

from __future__ import annotations

import json
import re
import sys

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from mirror.models import Source
from mirror.pipeline import run_sources
from mirror.routes import source_as_dict
from mirror.sources import add_source
from samizdat.errors import SamizdatError
from samizdat.web import runtime

_INTERVAL = re.compile(r"^\s*(\d+)\s*([mhd]?)\s*$")
_UNIT_MINUTES = {"": 1, "m": 1, "h": 60, "d": 1440}


def parse_interval(text: str) -> int:
    """'90m', '6h', '1d' or a bare number of minutes → minutes."""
    match = _INTERVAL.match(text or "")
    if not match or int(match.group(1)) == 0:
        raise click.BadParameter(f"expected e.g. 30m, 6h or 1d, got {text!r}")
    return int(match.group(1)) * _UNIT_MINUTES[match.group(2)]


@click.group("sources")
def sources_cli():
    """Manage the pages to mirror."""


@sources_cli.command("add")
@click.argument("url")
@click.option("--country", help="Two-letter country code where the page is blocked.")
@click.option("--collection", help="Collection name, e.g. vietnam.")
@click.option("--every", "every", help="Capture interval: 30m, 6h, 1d (default from settings).")
@with_appcontext
def sources_add(url: str, country: str | None, collection: str | None, every: str | None):
    """Add URL as a source (http/https only)."""
    rt = runtime()
    interval = parse_interval(every) if every else rt.settings.default_interval_minutes
    with rt.Session() as session:
        try:
            result = add_source(session, url, interval, country=country, collection=collection)
        except SamizdatError as exc:
            raise click.ClickException(str(exc)) from None
        session.commit()
        verb = "added" if result.created else "already present"
        click.echo(f"{verb}: source {result.source.id} {result.source.url}")


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
            state = "active" if s.active else "paused"
            click.echo(f"{s.id:>5}  {state:6}  every {s.interval_minutes:>5} min  {s.url}")


@click.group("mirror")
def mirror_cli():
    """Capture sources now."""


@mirror_cli.command("run")
@click.argument("source_ids", nargs=-1, type=int)
@click.option("--all", "run_all", is_flag=True, help="Capture every active source.")
@with_appcontext
def mirror_run(source_ids: tuple[int, ...], run_all: bool):
    """Capture SOURCE_IDS (or --all) synchronously, going on past failures."""
    if bool(source_ids) == run_all:
        raise click.UsageError("give source ids or --all (not both)")
    rt = runtime()
    ids = list(source_ids) if source_ids else None
    if ids is None:
        with rt.Session() as session:
            ids = list(session.scalars(select(Source.id).where(Source.active.is_(True))))
    else:
        with rt.Session() as session:
            missing = [i for i in ids if session.get(Source, i) is None]
        if missing:
            raise click.ClickException(f"no source with id {', '.join(map(str, missing))}")
    with click.progressbar(length=len(ids), label="capturing", file=sys.stderr) as bar:

        failures = []

        def done(outcome):
            bar.update(1)
            if outcome.status != "ok":
                failures.append(outcome)

        summary = run_sources(rt, ids, on_done=done)
    for outcome in failures:
        click.echo(f"failed: {outcome.url} ({outcome.reason}): {outcome.message}", err=True)
    click.echo(
        f"{len(summary.ok)} captured, {len(summary.failed)} failed, "
        f"{summary.fragments} new fragments"
    )


@click.command("scheduler")
@with_appcontext
def scheduler_cmd():
    """Run the capture scheduler in the foreground (its own process, never inside gunicorn)."""
    from mirror.scheduler import run_scheduler

    run_scheduler(runtime())
