"""`flask fragments …` and `flask collections …`: inspect and curate fragments from a shell."""

from __future__ import annotations

import json
import sys

import click
from flask.cli import with_appcontext
from sqlalchemy.orm import Session

from accounts.audit import Actor, cli_actor
from accounts.users import AccountError, find_user, has_role
from fragments.curation import (
    CurationError,
    FragmentFilter,
    Reviewer,
    create_collection,
    decision_status,
    get_collection,
    list_collections,
    list_fragments,
    review,
    review_pending,
    set_auto_approve,
    tags_of,
)
from fragments.extract import extract_main_text
from fragments.store import fragment_review_dict
from samizdat.web import runtime

# Who decided, in reviewed_by, when no --as names an archivist: decisions made here say so. Such
# an anonymous reviewer may be the very archivist who edited a fragment, so it approves no edit.
CLI_REVIEWER = "cli"


def _fail(message: str) -> None:
    """Print one error line and exit non-zero (the caller has not committed anything)."""
    click.echo(f"Error: {message}", err=True)
    sys.exit(1)


@click.group("fragments")
def fragments_cli():
    """Inspect and curate fragments."""


@fragments_cli.command("list")
@click.option("--status", type=click.Choice(["pending", "approved", "rejected"]))
@click.option("--collection", default=None, help="Only fragments of this collection.")
@click.option("--tag", default=None, help="Only fragments with this tag.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10000))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@with_appcontext
def fragments_list(
    status: str | None, collection: str | None, tag: str | None, limit: int, as_json: bool
):
    """List fragments, newest capture first."""
    flt = FragmentFilter(status=status, collection=collection, tag=tag)
    with runtime().Session() as session:
        _, items = list_fragments(session, flt, 0, limit)
        if as_json:
            tags = tags_of(session, [f.id for f in items])
            click.echo(json.dumps([fragment_review_dict(f, tags.get(f.id)) for f in items], indent=2))
            return
        for f in items:
            click.echo(f"{f.id}  {f.status:8}  {f.text}")


def _reviewer(session: Session, name: str | None) -> Reviewer:
    """The reviewer a shell decides as: the active archivist ``name``, else the shell itself.

    Naming oneself matters for edits: only a named archivist approves one, never its editor.
    """
    self_approve = runtime().settings.fragment_self_approve
    if name is None:
        return Reviewer(CLI_REVIEWER, self_approve, anonymous=True)
    try:
        user = find_user(session, name)
    except AccountError as exc:
        _fail(str(exc))
    if not user.active or not has_role(user, "archivist"):
        _fail(f"{name} is not an active archivist")
    return Reviewer(user.name, self_approve)


def _actor(reviewer: Reviewer) -> Actor:
    """Who the audit log names for a shell's decision: the shell, and who it decided as."""
    shell = cli_actor()
    return shell if reviewer.anonymous else Actor(None, f"{shell.name} as {reviewer.name}"[:120])


def _decide(
    action: str,
    ids: tuple[str, ...],
    all_pending: bool,
    collection: str | None,
    as_name: str | None,
) -> None:
    """Approve or reject the given ids, or every pending fragment (of a collection).

    Named ids that include the reviewer's own edit change nothing; --all skips and lists them.
    """
    if ids and (all_pending or collection):
        _fail("give fragment ids, or --all/--collection, not both")
    if not ids and not all_pending and not collection:
        _fail("give fragment ids, or --all (optionally with --collection NAME)")
    status = decision_status(action)
    with runtime().Session() as session:
        reviewer = _reviewer(session, as_name)
        try:
            actor = _actor(reviewer)
            if ids:
                decision = review(session, ids, status, reviewer, actor=actor)
            else:
                decision = review_pending(session, status, reviewer, collection, actor=actor)
        except CurationError as exc:
            session.rollback()
            _fail(str(exc))
        session.commit()
    click.echo(f"{decision.changed} fragment{'' if decision.changed == 1 else 's'} {status}")
    if decision.skipped:
        who = "(approve edits with --as NAME)" if reviewer.anonymous else f"by {reviewer.name}"
        click.echo(f"skipped {len(decision.skipped)} edited {who}: {' '.join(decision.skipped)}")


_AS_HELP = "Decide as this archivist (default: 'cli', which approves no edited fragment)."


@fragments_cli.command("approve")
@click.argument("ids", nargs=-1)
@click.option("--all", "all_pending", is_flag=True, help="Every pending fragment.")
@click.option("--collection", default=None, help="Every pending fragment of this collection.")
@click.option("--as", "as_name", default=None, metavar="NAME", help=_AS_HELP)
@with_appcontext
def fragments_approve(
    ids: tuple[str, ...], all_pending: bool, collection: str | None, as_name: str | None
):
    """Approve fragments by ID, or all pending ones (--all, --collection NAME)."""
    _decide("approve", ids, all_pending, collection, as_name)


@fragments_cli.command("reject")
@click.argument("ids", nargs=-1)
@click.option("--all", "all_pending", is_flag=True, help="Every pending fragment.")
@click.option("--collection", default=None, help="Every pending fragment of this collection.")
@click.option("--as", "as_name", default=None, metavar="NAME", help=_AS_HELP)
@with_appcontext
def fragments_reject(
    ids: tuple[str, ...], all_pending: bool, collection: str | None, as_name: str | None
):
    """Reject fragments by ID, or all pending ones (--all, --collection NAME)."""
    _decide("reject", ids, all_pending, collection, as_name)


@fragments_cli.command("extract")
@click.argument("path")
@click.option("--url", default=None, help="The page's address (helps recognise the site's furniture).")
@click.option("--charset", default=None, help="The page's charset, when known (else sniffed).")
def fragments_extract(path: str, url: str | None, charset: str | None):
    """Print the main text extraction keeps from an HTML file (PATH, or - for stdin), a block a line.

    Needs no database: it reads the file and prints, nothing else.
    """
    try:
        if path == "-":
            html = sys.stdin.buffer.read()
        else:
            with open(path, "rb") as handle:
                html = handle.read()
    except OSError as error:
        # One line, no traceback: the reason the file could not be read.
        click.echo(f"error: cannot read {path}: {error.strerror or error}", err=True)
        sys.exit(1)
    for paragraph in extract_main_text(html, url=url, charset=charset).paragraphs:
        click.echo(paragraph)


@click.group("collections")
def collections_cli():
    """Collections of sources, and whether their fragments skip review."""


@collections_cli.command("add")
@click.argument("name")
@click.option("--auto-approve", is_flag=True, help="Approve this collection's new fragments as split.")
@with_appcontext
def collections_add(name: str, auto_approve: bool):
    """Declare collection NAME."""
    with runtime().Session() as session:
        try:
            collection = create_collection(session, name, auto_approve, actor=cli_actor())
        except CurationError as exc:
            session.rollback()
            _fail(str(exc))
        session.commit()
        click.echo(f"added {collection.name}{' (auto-approve)' if auto_approve else ''}")


@collections_cli.command("list")
@with_appcontext
def collections_list():
    """Every collection with its fragment counts per status."""
    with runtime().Session() as session:
        for collection, counts in list_collections(session):
            auto = "auto-approve" if collection.auto_approve else "review"
            tally = ", ".join(f"{n} {s}" for s, n in counts.items())
            click.echo(f"{collection.name}  {auto:12}  {tally}")


@collections_cli.command("set")
@click.argument("name")
@click.option("--auto-approve/--no-auto-approve", default=None, help="Skip review of new fragments, or not.")
@with_appcontext
def collections_set(name: str, auto_approve: bool | None):
    """Change collection NAME; auto-approve applies to fragments split from now on."""
    if auto_approve is None:
        _fail("nothing to change: give --auto-approve or --no-auto-approve")
    with runtime().Session() as session:
        try:
            collection = get_collection(session, name)
        except CurationError as exc:
            _fail(str(exc))
        set_auto_approve(session, collection, auto_approve, actor=cli_actor())
        session.commit()
        click.echo(f"{name}: {'auto-approve' if auto_approve else 'review'}")
