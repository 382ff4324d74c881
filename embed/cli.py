"""`flask embed …`: what supporters see."""

from __future__ import annotations

import json

import click
from flask.cli import with_appcontext

from accounts.audit import cli_actor, record
from embed.packs import MAX_REQUEST_BYTES
from embed.publish import publish_embed
from fragments.store import fragment_as_dict, random_approved
from samizdat.errors import SamizdatError
from samizdat.web import runtime


@click.group("embed")
def embed_cli():
    """Preview what the embeds serve, and publish the signed fragment packs."""


@embed_cli.command("random")
@with_appcontext
def embed_random():
    """Print one random approved fragment as JSON, as GET /api/fragments/random would."""
    with runtime().Session() as session:
        fragment = random_approved(session)
        if fragment is None:
            raise click.ClickException("no approved fragments yet")
        click.echo(json.dumps(fragment_as_dict(fragment), indent=2, ensure_ascii=False))


@embed_cli.command("publish")
@with_appcontext
def embed_publish():
    """Write the signed fragment packs, embed.js and the frame page to the public directory."""
    settings = runtime().settings
    try:
        with runtime().Session() as session:
            report = publish_embed(session, settings)
    except SamizdatError as exc:
        raise click.ClickException(str(exc)) from None
    packs = report.packs
    if report.log_note:
        click.echo(f"note: {report.log_note}")
    with runtime().Session() as session:
        record(session, cli_actor(), "embed.publish", "embed", packs.serial, {
            "packs": packs.packs, "fragments": packs.fragments,
            "failures": list(report.failures),
        })
        session.commit()
    click.echo(
        f"published {packs.packs} pack(s) of {packs.fragments} approved fragment(s), "
        f"serial {packs.serial}: {packs.shards_written} new shard(s), {packs.shards_reused} reused, "
        f"{packs.bytes_written} bytes written; largest file {packs.largest_file} bytes "
        f"(limit {MAX_REQUEST_BYTES}); embed.js {report.embed_js_bytes} bytes "
        f"({report.embed_js_integrity}); key {report.key_id}"
    )
    for site in report.sites:
        where = f" root {site.root_cid}, IPNS {site.ipns_name}" if site.root_cid else ""
        click.echo(f"{site.site}: {site.uploaded} file(s) uploaded ({site.bytes} bytes), "
                   f"{site.skipped} already there{where}")
        for note in site.notes:
            click.echo(f"{site.site}: note: {note}")
    if report.failures:
        raise click.ClickException("not published to " + "; ".join(report.failures))
