"""Login rate limits, per client address and per account name, checked before any scrypt runs.

Only ``POST /login`` is limited: public pages get no limiter state, cookie or log line. Counters
live in Redis when ``SAMIZDAT_REDIS_URL`` is set (shared by every worker), else in each worker's
memory. Keys are keyed hashes, so neither Redis nor the limiter's log lines hold an address.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from flask import Flask, Response, current_app, request
from flask_limiter import Limiter
from limits import parse_many

from config.settings import Settings, SettingsError

LOGIN_ENDPOINT = "accounts.login"
# Keys in shared storage start with this, so other users of the same Redis are left alone.
KEY_PREFIX = "samizdat-login"


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


def limit_login(app: Flask, settings: Settings) -> Limiter:
    """Put ``settings.login_rate_limit`` on POST /login, per client and per account name."""
    try:
        parse_many(settings.login_rate_limit)
    except ValueError as exc:
        raise SettingsError(
            f"SAMIZDAT_LOGIN_RATE_LIMIT is not a rate limit such as '10 per minute': {exc}"
        ) from None
    limiter = Limiter(
        client_key,
        app=app,
        storage_uri=settings.redis_url or "memory://",
        key_prefix=KEY_PREFIX,
        # Redis down: keep limiting in this worker's memory rather than failing or letting all in.
        in_memory_fallback_enabled=True,
        headers_enabled=False,
    )
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
    where nothing is limited: a third of a random fragment's cost (docs/benchmarks.md). The only
    limits are on the login view, so its blueprint's requests are the only ones that need them.
    """
    def ours(hook) -> bool:
        owner = getattr(hook, "__self__", None) or next(iter(getattr(hook, "args", ())), None)
        return owner is limiter

    for registry in (app.before_request_funcs, app.after_request_funcs, app.teardown_request_funcs):
        hooks = registry.get(None, [])
        registry[None] = [hook for hook in hooks if not ours(hook)]
        registry.setdefault(blueprint, []).extend(hook for hook in hooks if ours(hook))
