"""The reader's front page (``/``) and the listing of every mirrored page (``/archive``).

Public pages: no account, no cookie (nothing here touches the session), no script, nothing
loaded from elsewhere. Every figure comes from GROUP BY / COUNT queries (archive/listing.py,
archive/overview.py); only the rows shown leave the database.
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, redirect, render_template, request, url_for
from flask_babel import gettext as _

from accounts.auth import secure_page
from archive.charts import ChartRow, bar_chart, day_chart
from archive.listing import (
    DEFAULT_PER_PAGE,
    FACETS,
    MAX_PER_PAGE,
    SORTS,
    ListingError,
    ListingQuery,
    facet_counts,
    list_pages,
    listing_query,
)
from archive.overview import DAYS_SHOWN, overview
from archive.reading import source_timeline_path
from archive.search import SearchPage, search
from mirror.reader import capture_link_path
from samizdat.i18n import keep_language_in_links
from samizdat.web import db_session, page_number, page_size

bp = Blueprint(
    "browse",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/archive/static",
)
keep_language_in_links(bp)

# Reader pages are the same for everyone (no account, no cookie; the language is in the URL or
# Accept-Language, which samizdat/i18n.py names in Vary), so a shared cache may keep them
# briefly: a busy front page then costs its queries once a minute, not once a view.
READER_CACHE = "public, max-age=60"


def reader_page(body: str, status: int = 200) -> Response:
    """A reader page: the strict CSP of every page here (no script, nothing from elsewhere)."""
    response = secure_page(body, status)
    if status == 200:
        response.headers["Cache-Control"] = READER_CACHE
    return response


# The templates' names for the reader's two most linked pages, built where their URLs are.
bp.add_app_template_global(source_timeline_path, "timeline_path")
bp.add_app_template_global(capture_link_path, "capture_path")


@bp.get("/")
def front_page():
    """What Samizdat is, a search box, the latest captured pages and the archive at a glance."""
    figures = overview(db_session())
    charts = {
        "country": bar_chart(
            "chart-country",
            _("Pages mirrored per country"),
            _("Number of mirrored pages for each country, most first."),
            [
                ChartRow(f.label, f.count, url_for("browse.listing", country=f.value))
                for f in figures.by_country
            ],
            _("pages"),
        ),
        "category": bar_chart(
            "chart-category",
            _("Pages mirrored per category"),
            _("Number of mirrored pages in each Citizen Lab category, most first."),
            [
                ChartRow(f.label, f.count, url_for("browse.listing", category=f.value))
                for f in figures.by_category
            ],
            _("pages"),
        ),
        "days": day_chart(
            "chart-days",
            _("Captures per day, last %(days)d days", days=DAYS_SHOWN),
            _("Successful captures each day over the last %(days)d days (UTC), oldest first.",
              days=DAYS_SHOWN),
            figures.captures_per_day,
            _("captures"),
        ),
        "changes": day_chart(
            "chart-changes",
            _("Pages that changed, last 7 days"),
            _("Captures that found a new version of a page, each day of the last 7 days (UTC)."),
            figures.changes_per_day,
            _("changes"),
        ),
    }
    return reader_page(render_template("archive/front.html", figures=figures, charts=charts))


def _listing_query() -> ListingQuery:
    """The listing's query from the query string; a 400 page with the reason when it is bad."""
    args = request.args
    try:
        return listing_query(
            q=args.get("q"),
            country=args.get("country"),
            collection=args.get("collection"),
            category=args.get("category"),
            sort=args.get("sort"),
            page=page_number(),
            per_page=page_size(DEFAULT_PER_PAGE, MAX_PER_PAGE),
        )
    except ListingError as exc:
        abort(400, str(exc))


def _search_results(query: ListingQuery) -> SearchPage:
    """Ranked full-text results for ``?q=`` (archive/search.py), within the filters."""
    return search(db_session(), query.q, country=query.country, collection=query.collection,
                  category=query.category, page=query.page, per_page=query.per_page)


@bp.get("/archive")
def listing():
    """Every mirrored page, filtered by country, collection and category, sorted and paged."""
    query = _listing_query()
    session = db_session()
    found = _search_results(query) if query.q else None
    results = None if found else list_pages(session, query)
    # Facets count the mirrored pages under the filters (a search narrows the results, not them).
    facets = {name: facet_counts(session, query, name) for name in FACETS}
    body = render_template(
        "archive/listing.html",
        query=query,
        results=results,
        found=found,
        facets=facets,
        sorts=SORTS,
    )
    return reader_page(body)


@bp.get("/archive/")
def listing_with_slash():
    """``/archive/`` (the archivists' old start page, and a common typing) → the listing."""
    # url_for percent-encodes the arguments again, so nothing sent reaches the header raw.
    return redirect(url_for("browse.listing", **request.args.to_dict(flat=False)), 301)
