"""Rate limits (Flask-Limiter): login, API tokens, the public JSON API and search.

- ``POST /login`` per client address and per account name, checked before any scrypt runs;
- every request made with an API token, per token (keyed by the token's id, never its value);
- the public JSON API (``/api/sources``, ``/api/sources/<id>/captures``, ``/oembed``) per client;
- full-text search (``/archive?q=``) per client, lower, since a search costs more than a page.

Nothing else runs limiter code: the random fragment (embed/fastpath.py) is the per-view endpoint
of supporters' pages and must cost nothing per view; it is cacheable, answered before Flask, and
a flood of it is met by caches, the CDN and the static packs, not by counting. Counters live in
Redis when ``SAMIZDAT_REDIS_URL`` is set (shared by every worker), else in each worker's memory,
and fall back to memory while Redis is down. Keys are keyed hashes, so neither Redis nor the
limiter's log lines hold an address or a token. The table of limits is in docs/security.md.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from functools import wraps

from flask import Flask, Response, current_app, g, request
from flask_limiter import Limiter, RequestLimit
from limits import parse_many
from werkzeug.exceptions import TooManyRequests

from accounts.auth import TOKEN_LIMIT_CHECK

from config.settings import Settings, SettingsError

LOGIN_ENDPOINT = "accounts.login"
# Keys in shared storage start with this, so other users of the same Redis are left alone.
KEY_PREFIX = "samizdat-login"
API_KEY_PREFIX = "samizdat-api"
# The public JSON endpoints sharing one per-client budget, and the reader search.
PUBLIC_API_ENDPOINTS = ("mirror.list_sources", "mirror.list_captures", "embed_public.oembed")
SEARCH_ENDPOINT = "browse.listing"


def _keyed(kind: str, value: str) -> str:
    """An opaque, stable key for ``value``: an HMAC under the app's secret key."""
    secret = str(current_app.secret_key).encode()
    digest = hmac.new(secret, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()
    return f"{kind}:{digest[:32]}"


def client_key() -> str:
    """The rate-limit key of the client's address (the connection's peer)."""
    return _keyed("client", request.remote_addr or "")


def account_key() -> str:
    """The rate-limit key of the account name tried, whether or not such an account exists."""
    return _keyed("account", request.form.get("name", "").strip().casefold())


def _retry_after(limiter: Limiter, response: Response) -> Response:
    """Tell a limited client when it may try again (seconds until the latest breached reset)."""
    if response.status_code == 429:
        breached = [lim.reset_at for lim in limiter.current_limits if lim.breached]
        if breached:
            response.headers["Retry-After"] = str(max(1, int(max(breached) - time.time())))
    return response


def _checked_limit(name: str, value: str) -> str:
    """``value`` if Flask-Limiter can read it; SettingsError naming the variable if not."""
    try:
        parse_many(value)
    except ValueError as exc:
        raise SettingsError(
            f"SAMIZDAT_{name.upper()} is not a rate limit such as '10 per minute': {exc}"
        ) from None
    return value


def _limiter(app: Flask, settings: Settings, key_prefix: str, **options) -> Limiter:
    """A Limiter on ``app`` counting in Redis (SAMIZDAT_REDIS_URL) or memory, keys under ``key_prefix``."""
    return Limiter(
        client_key,
        app=app,
        storage_uri=settings.redis_url or "memory://",
        key_prefix=key_prefix,
        # Redis down: keep limiting in this worker's memory rather than failing or letting all in.
        in_memory_fallback_enabled=True,
        headers_enabled=False,
        **options,
    )


def limit_login(app: Flask, settings: Settings) -> Limiter:
    """Put ``settings.login_rate_limit`` on POST /login, per client and per account name."""
    _checked_limit("login_rate_limit", settings.login_rate_limit)
    limiter = _limiter(app, settings, KEY_PREFIX)
    view = app.view_functions[LOGIN_ENDPOINT]
    for key_func in (account_key, client_key):
        view = limiter.limit(settings.login_rate_limit, key_func=key_func, methods=["POST"])(view)
    app.view_functions[LOGIN_ENDPOINT] = view
    _confine_hooks(app, limiter, LOGIN_ENDPOINT.split(".")[0])
    app.after_request_funcs.setdefault(LOGIN_ENDPOINT.split(".")[0], []).append(
        lambda response: _retry_after(limiter, response)
    )
    return limiter


def _confine_hooks(app: Flask, limiter: Limiter, blueprint: str) -> None:
    """Run the limiter's request hooks for ``blueprint`` only, not for every request of the app.

    Flask-Limiter hooks the whole app, and its hooks cost about 0.3 ms of CPU per request even
    where nothing is limited: a third of a random fragment's cost (docs/benchmarks.md). The login
    limiter's only limits are on the login view, so its blueprint's requests are the only ones
    that need them.
    """
    def ours(hook) -> bool:
        owner = getattr(hook, "__self__", None) or next(iter(getattr(hook, "args", ())), None)
        return owner is limiter

    for registry in (app.before_request_funcs, app.after_request_funcs, app.teardown_request_funcs):
        hooks = registry.get(None, [])
        registry[None] = [hook for hook in hooks if not ours(hook)]
        registry.setdefault(blueprint, []).extend(hook for hook in hooks if ours(hook))


def token_key() -> str:
    """The rate-limit key of the API token this request authenticated with (by its id)."""
    return _keyed("token", str(g.auth_token_id))


def _too_many(limit: RequestLimit) -> Response:
    """The 429 for a breached limit: JSON on the API, a page elsewhere, with Retry-After."""
    from samizdat.errorpages import error_response  # the app's one error format

    wait = max(1, int(limit.reset_at - time.time()))
    return error_response(
        TooManyRequests(
            f"too many requests ({limit.limit}); try again in {wait} seconds", retry_after=wait
        )
    )


def _token_use() -> None:
    """Where the per-token limit is counted (called by accounts.auth once a token is known)."""


def _only_when(predicate: Callable[[], bool], view: Callable, limited: Callable) -> Callable:
    """``view``, going through ``limited`` (the same view under a limit) only when ``predicate``."""

    @wraps(view)
    def choose(*args, **kwargs):
        return (limited if predicate() else view)(*args, **kwargs)

    return choose


def _has_search() -> bool:
    return bool(request.args.get("q", "").strip())


def limit_api(app: Flask, settings: Settings) -> Limiter:
    """Limit requests per API token, the public JSON API per client, and search per client.

    The limits are checked inside the limited views only (Flask-Limiter's decorator does that
    itself), so the limiter's app-wide hooks are removed: no other request runs limiter code.
    """
    limiter = _limiter(app, settings, API_KEY_PREFIX, on_breach=_too_many)
    _remove_hooks(app, limiter)
    token_limit = _checked_limit("token_rate_limit", settings.token_rate_limit)
    # Shared: one budget per token across every endpoint, not one per endpoint.
    app.extensions[TOKEN_LIMIT_CHECK] = limiter.shared_limit(
        token_limit, scope="token", key_func=token_key
    )(_token_use)
    api = limiter.shared_limit(
        _checked_limit("api_rate_limit", settings.api_rate_limit), scope="public-api"
    )
    for endpoint in PUBLIC_API_ENDPOINTS:
        app.view_functions[endpoint] = api(app.view_functions[endpoint])
    search = limiter.limit(
        _checked_limit("search_rate_limit", settings.search_rate_limit), scope="search"
    )
    view = app.view_functions[SEARCH_ENDPOINT]
    app.view_functions[SEARCH_ENDPOINT] = _only_when(_has_search, view, search(view))
    return limiter


def _remove_hooks(app: Flask, limiter: Limiter) -> None:
    """Take ``limiter``'s app-wide request hooks out: its decorated views check for themselves."""

    def ours(hook) -> bool:
        owner = getattr(hook, "__self__", None) or next(iter(getattr(hook, "args", ())), None)
        return owner is limiter

    for registry in (app.before_request_funcs, app.after_request_funcs, app.teardown_request_funcs):
        registry[None] = [hook for hook in registry.get(None, []) if not ours(hook)]
