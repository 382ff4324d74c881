"""`flask embed …`: what supporters see."""

from __future__ import annotations

import json

import click
from flask.cli import with_appcontext

from embed.packs import MAX_REQUEST_BYTES, publish_packs
from embed.signing import load_or_create_signer
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
    """Write the signed fragment packs (every collection, and each per language)."""
    settings = runtime().settings
    try:
        signer = load_or_create_signer(settings.embed_signing_key_path)
    except SamizdatError as exc:
        raise click.ClickException(str(exc)) from None
    with runtime().Session() as session:
        report = publish_packs(session, signer, settings.public_path)
    click.echo(
        f"published {report.packs} pack(s) of {report.fragments} approved fragment(s), "
        f"serial {report.serial}: {report.shards_written} new shard(s), "
        f"{report.shards_reused} reused, {report.bytes_written} bytes written; "
        f"largest file {report.largest_file} bytes (limit {MAX_REQUEST_BYTES}); key {signer.key_id}"
    )
