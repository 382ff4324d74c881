"""The reader's language (English or Vietnamese): chosen from ``?lang=`` or Accept-Language,
never from a cookie or the session, and carried by every link of a page so that a choice sticks.

The one place where the language is decided; templates and views only ask for it. Catalogues
live in ``translations/`` (compiled by ``make install``); without a compiled catalogue every
page is simply in English.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from flask import Blueprint, Flask, current_app, g, has_request_context, request
from flask.ctx import _AppCtxGlobals
from flask_babel import Babel, format_date, format_time, get_locale
from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup, escape

LANGUAGES = ("en", "vi")
DEFAULT_LANGUAGE = "en"
LANG_ARG = "lang"
# The names in the switcher, each in its own language (a reader who cannot read the current
# one must still find theirs).
LANGUAGE_NAMES = {"en": "English", "vi": "Tiếng Việt"}
_NEGOTIATED = "_samizdat_language_negotiated"
_AVAILABLE = "samizdat.languages"
# Where Flask-Babel keeps the locale and catalogue it chose (an attribute of ``g``).
_BABEL_CACHE = "_flask_babel"


class RequestLanguageGlobals(_AppCtxGlobals):
    """Flask's ``g``, except that Flask-Babel's cache of the chosen locale and catalogue belongs
    to the request, not to the app context.

    Requests made inside one app context (the static export's test-client GETs under
    ``flask archive publish``, a test) share ``g``: with the cache there, the first page's
    language stuck to every later one, and the copy's ``vi/`` pages came out in English.
    """

    # _AppCtxGlobals sets and deletes through its own __setattr__/__delattr__ (into __dict__),
    # so these three catch Flask-Babel's attribute rather than a property.
    def __getattr__(self, name: str):
        if name == _BABEL_CACHE:
            try:
                return _babel_holder(self)[name]
            except KeyError:
                raise AttributeError(name) from None
        return super().__getattr__(name)

    def __setattr__(self, name: str, value) -> None:
        if name == _BABEL_CACHE:
            _babel_holder(self)[name] = value
        else:
            super().__setattr__(name, value)

    def __delattr__(self, name: str) -> None:
        if name == _BABEL_CACHE:
            _babel_holder(self).pop(name, None)
        else:
            super().__delattr__(name)


def _babel_holder(globals_: _AppCtxGlobals) -> dict:
    # The current request's attributes; without a request (a CLI command), the app context's.
    if has_request_context():
        return vars(request._get_current_object())
    return vars(globals_)


def available_languages(translations: Path) -> tuple[str, ...]:
    """English, and every other language whose catalogue is compiled under ``translations``."""
    return tuple(
        code for code in LANGUAGES
        if code == DEFAULT_LANGUAGE or (translations / code / "LC_MESSAGES" / "messages.mo").is_file()
    )


def _languages() -> tuple[str, ...]:
    return current_app.extensions.get(_AVAILABLE, (DEFAULT_LANGUAGE,))


def chosen_language() -> str | None:
    """The language the URL asks for (``?lang=vi``) when it is one we have, else None."""
    if not has_request_context():
        return None
    value = request.args.get(LANG_ARG, "").strip().lower()
    return value if value in _languages() else None


def select_language() -> str:
    """The request's language: ``?lang=`` first, then the best of Accept-Language, else English."""
    chosen = chosen_language()
    if chosen:
        return chosen
    if not has_request_context():
        return DEFAULT_LANGUAGE
    # The answer now depends on a request header: caches must keep one copy per header value.
    setattr(g, _NEGOTIATED, True)
    return negotiated_language(request.accept_languages, _languages())


def negotiated_language(accepted: Iterable[tuple[str, float]], languages: tuple[str, ...]) -> str:
    """The first of ``languages`` the reader accepts, by quality, matched on the primary subtag.

    "en-GB, vi;q=0.8" is English: Werkzeug's best_match would take the exact "vi" over the
    regional "en-GB". Malformed entries were already dropped by Werkzeug's parser.
    """
    for value, quality in accepted:  # highest quality first
        primary = value.split("-", 1)[0].strip().lower()
        if quality <= 0:
            continue
        if primary in languages:
            return primary
        if primary == "*":
            return DEFAULT_LANGUAGE
    return DEFAULT_LANGUAGE


def page_language() -> str:
    """The active language's code, for ``<html lang>``."""
    locale = get_locale()
    return locale.language if locale else DEFAULT_LANGUAGE


def with_language(url: str) -> str:
    """``url`` with ``lang=`` added when the reader chose a language in the URL.

    Only for links within this site; a URL naming another host, or already naming a language,
    is returned as it is. Without an explicit choice URLs stay clean: Accept-Language arrives
    with every request anyway.
    """
    language = chosen_language()
    if not language or not url:
        return url
    parts = urlsplit(url)
    # A path on this site, or a query on the current page ("?page=2").
    if parts.scheme or parts.netloc or not (parts.path.startswith("/") or url.startswith("?")):
        return url
    query = parse_qsl(parts.query, keep_blank_values=True)
    if any(name == LANG_ARG for name, _ in query):
        return url
    query.append((LANG_ARG, language))
    return urlunsplit(("", "", parts.path, urlencode(query), parts.fragment))


@pass_context
def _with_language_filter(context: Context, url: str) -> str:
    # pass_context keeps Jinja from folding `'/' | with_language` into a constant when it
    # compiles a template: the first request's language would then be baked into every page.
    return with_language(url)


def language_field() -> Markup:
    """A hidden ``lang`` input for GET forms (a form's action loses its query string)."""
    language = chosen_language()
    if not language:
        return Markup("")
    return Markup('<input type="hidden" name="{}" value="{}">').format(LANG_ARG, escape(language))


def language_links() -> list[dict[str, object]]:
    """The switcher: this page in each language (``?lang=`` replaced), the current one marked.

    Empty when English is all there is (no compiled catalogue): nothing to switch to.
    """
    languages = _languages()
    if len(languages) < 2:
        return []
    current = page_language()
    args = [(k, v) for k, v in request.args.items(multi=True) if k != LANG_ARG]
    return [
        {
            "code": code,
            "name": LANGUAGE_NAMES[code],
            "url": request.path + "?" + urlencode([*args, (LANG_ARG, code)]),
            "current": code == current,
        }
        for code in languages
    ]


def reader_datetime(moment: datetime) -> str:
    """A capture's time for readers, in their language: "Nov 5, 2026 14:07:31 UTC".

    With seconds: two captures a few seconds apart must not look like one.
    """
    return f"{format_date(moment, 'medium')} {format_time(moment, 'HH:mm:ss')} UTC"


def keep_language_in_links(bp: Blueprint, *, except_endpoints: tuple[str, ...] = ()) -> None:
    """url_for to ``bp``'s pages keeps the chosen language (its static files and
    ``except_endpoints``, such as downloads, keep one URL whatever the language).

    Opt-in per blueprint: elsewhere a query string may not be ours to add to (a Memento URL's
    query belongs to the archived page's address).
    """
    skipped = {f"{bp.name}.{name}" for name in ("static", *except_endpoints)}

    def add_language(endpoint: str, values: dict) -> None:
        language = chosen_language()
        if language and endpoint not in skipped:
            values.setdefault(LANG_ARG, language)

    bp.url_defaults(add_language)


def _vary_on_language(response):
    """A page chosen by Accept-Language says so, so a shared cache never mixes languages."""
    if g.get(_NEGOTIATED):
        response.vary.add("Accept-Language")
    return response


def init_i18n(app: Flask, translations: Path) -> None:
    """Flask-Babel with the language selector, link helpers and date filters for templates.

    ``translations`` holds the compiled catalogues; the languages offered are those found there
    now (``make install`` compiles them before the app starts).
    """
    app.config["BABEL_DEFAULT_LOCALE"] = DEFAULT_LANGUAGE
    app.config["BABEL_DEFAULT_TIMEZONE"] = "UTC"
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(translations)
    app.extensions[_AVAILABLE] = available_languages(translations)
    app.app_ctx_globals_class = RequestLanguageGlobals
    Babel(app, locale_selector=select_language)
    app.after_request(_vary_on_language)
    app.add_template_global(page_language)
    app.add_template_global(language_field)
    app.add_template_global(language_links)
    app.add_template_filter(_with_language_filter, "with_language")
    app.add_template_filter(reader_datetime)
