"""`flask embed …`: what supporters see."""

from __future__ import annotations

import json

import click
from flask.cli import with_appcontext

from fragments.store import fragment_as_dict, random_approved
from samizdat.web import runtime


@click.group("embed")
def embed_cli():
    """Preview what the embeds serve."""


@embed_cli.command("random")
@with_appcontext
def embed_random():
    """Print one random approved fragment as JSON, as GET /api/fragments/random would."""
    with runtime().Session() as session:
        fragment = random_approved(session)
        if fragment is None:
            raise click.ClickException("no approved fragments yet")
        click.echo(json.dumps(fragment_as_dict(fragment), indent=2, ensure_ascii=False))
