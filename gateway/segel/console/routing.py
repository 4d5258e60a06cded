"""Routes of the console and of any package that adds pages to it: `Router`, `Ctx`, `ConsoleError`.

A handler gets one `Ctx`: the request, the signed-in user, a translator for the user's language
and zone, the parsed form (CSRF already checked), a database connection of its thread, and
`render()`. The router checks, before the handler runs, that someone is signed in (unless
`public=True`), that the user's role has the route's `permission`, and, on every method but GET
and HEAD, the CSRF token (form field `csrf` or header `X-CSRF-Token`). Scope is the handler's to
check with `c.sees(district, places)` or `c.require_scope(...)`, because only it knows what the
page is about. A plain function runs in a worker thread (SQLite blocks); `async def` handlers run
on the event loop (streams).
"""

from __future__ import annotations

import hmac
import inspect
import json
import logging
import secrets
import sqlite3
import urllib.parse
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from segel import accounts, i18n

if TYPE_CHECKING:
    from segel.console.app import ConsoleState

log = logging.getLogger("segel.console")

SESSION_COOKIE = "segel_session"
LANG_COOKIE = "segel_lang"
LOGIN_CSRF_COOKIE = "segel_login_csrf"
MAX_BODY = 2 * 1024 * 1024  # a form bigger than this is refused before it is read
SAFE_METHODS = ("GET", "HEAD")


class ConsoleError(Exception):
    """Raise in a handler for a clear refusal: rendered as a page (or JSON on API routes)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Ctx:
    request: Request
    state: ConsoleState
    session: accounts.Session | None
    t: i18n.Translator
    form: dict[str, str] = field(default_factory=dict)
    api: bool = False

    @property
    def user(self) -> accounts.User | None:
        return self.session.user if self.session else None

    @property
    def db(self) -> sqlite3.Connection:
        """This thread's connection to the gateway database (WAL: reads never wait for the gateway)."""
        return self.state.db()

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.request.path_params)

    @property
    def query(self) -> dict[str, str]:
        return dict(self.request.query_params)

    @property
    def csrf(self) -> str:
        return self.session.csrf if self.session else ""

    def _(self, message: str) -> str:
        return self.t._(message)

    def now(self) -> float:
        return self.state.clock()

    def can(self, permission: str) -> bool:
        return self.user is not None and self.user.can(permission)

    def sees(self, district: str | None, places: Iterable[str] = ()) -> bool:
        return self.user is not None and self.user.sees(district, places)

    def require(self, permission: str) -> None:
        if not self.can(permission):
            raise ConsoleError(403, self._("Your role cannot do this."))

    def require_scope(self, district: str | None, places: Iterable[str] = ()) -> None:
        if not self.sees(district, places):
            raise ConsoleError(403, self._("This is outside the districts and places of your account."))

    def render(self, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        return HTMLResponse(self.state.web.render(self, template, values), status_code=status)

    def redirect(self, url: str, status: int = 303) -> RedirectResponse:
        return RedirectResponse(url, status_code=status)

    def json(self, data: Any, status: int = 200) -> JSONResponse:
        return JSONResponse(data, status_code=status)


Handler = Callable[[Ctx], Response] | Callable[[Ctx], Awaitable[Response]]


@dataclass
class NavItem:
    label: str  # English source string, translated when shown (mark it with i18n.N_)
    path: str
    permission: str = accounts.VIEW
    order: int = 50


class Router:
    """A set of pages another package adds to the console (and the console's own)."""

    def __init__(self, name: str, templates: Path | None = None, static: Path | None = None) -> None:
        self.name = name
        self.templates = templates
        self.static = static  # served at /static/<name>/
        self.routes: list[BaseRoute] = []
        self.nav_items: list[NavItem] = []

    def nav(self, label: str, path: str, permission: str = accounts.VIEW, order: int = 50) -> None:
        """A link in the console's top bar for users with `permission`."""
        self.nav_items.append(NavItem(label, path, permission, order))

    def page(self, path: str, *, permission: str | None = accounts.VIEW, methods: Iterable[str] = ("GET",),
             public: bool = False, api: bool = False, name: str | None = None) -> Callable[[Handler], Handler]:
        """Register a handler for `path` (Starlette path syntax: /boxes/{box}). api=True answers
        errors as JSON ({"error": ...}) instead of a page."""

        def deco(fn: Handler) -> Handler:
            endpoint = _endpoint(fn, permission, public, api)
            self.routes.append(Route(path, endpoint, methods=list(methods), name=name or f"{self.name}.{fn.__name__}"))
            return fn
        return deco

    def api(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.page(path, api=True, **kw)


def client_address(request: Request) -> str:
    return request.client.host if request.client else ""


def _language(request: Request, state: ConsoleState, session: accounts.Session | None) -> str:
    """The account's language, else this browser's (the switch's cookie), else the configured one."""
    if session is not None and session.user.language in i18n.LANGUAGES:
        return session.user.language  # type: ignore[return-value]
    cookie = request.cookies.get(LANG_COOKIE)
    if cookie in i18n.LANGUAGES:
        return cookie  # type: ignore[return-value]
    return state.language


def secure_cookie(request: Request, state: ConsoleState) -> bool:
    mode = state.cfg.console.secure_cookies
    return mode == "always" or (mode == "auto" and request.url.scheme == "https")


def security_headers(resp: Response, state: ConsoleState) -> Response:
    h = resp.headers
    h.setdefault("X-Content-Type-Options", "nosniff")
    h.setdefault("X-Frame-Options", "DENY")
    h.setdefault("Referrer-Policy", "same-origin")
    h.setdefault("Content-Security-Policy", state.csp)
    return resp


async def _read_form(request: Request) -> dict[str, str]:
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("application/json"):
        body = await request.body()
        data = json.loads(body or b"{}")
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}
    if ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form(max_part_size=MAX_BODY)
        return {k: v for k, v in form.items() if isinstance(v, str)}
    return {}


def _endpoint(fn: Handler, permission: str | None, public: bool, api: bool) -> Callable[[Request], Awaitable[Response]]:
    is_async = inspect.iscoroutinefunction(fn)

    async def endpoint(request: Request) -> Response:
        state: ConsoleState = request.app.state.console
        token = request.cookies.get(SESSION_COOKIE, "")
        session = await run_in_threadpool(state.session_of, token) if token else None
        t = i18n.translator(_language(request, state, session), state.tz)
        c = Ctx(request, state, session, t, api=api)
        try:
            if session is None and not public:
                if api or request.method not in SAFE_METHODS or request.headers.get("accept") == "text/event-stream":
                    raise ConsoleError(401, t._("Your session has ended: sign in again."))
                nxt = urllib.parse.quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
                return security_headers(RedirectResponse(f"/login?next={nxt}", 303), state)
            if permission and session is not None and not session.user.can(permission):
                raise ConsoleError(403, t._("Your role cannot do this."))
            if request.method not in SAFE_METHODS:
                if int(request.headers.get("content-length") or 0) > MAX_BODY:
                    raise ConsoleError(413, t._("The request is too large."))
                try:
                    c.form = await _read_form(request)
                except ValueError:
                    raise ConsoleError(400, t._("The form could not be read.")) from None
                sent = c.form.get("csrf") or request.headers.get("x-csrf-token", "")
                want = session.csrf if session else request.cookies.get(LOGIN_CSRF_COOKIE, "")
                if not want or not sent or not hmac.compare_digest(sent, want):
                    raise ConsoleError(403, t._("The form has expired (missing or wrong security token): "
                                                "reload the page and try again."))
            resp: Response = await fn(c) if is_async else await run_in_threadpool(fn, c)  # type: ignore[misc, arg-type]
        except ConsoleError as e:
            resp = error_response(c, e.status, e.message)
        except Exception:
            log.exception("console: %s %s failed", request.method, request.url.path)
            resp = error_response(c, 500, t._("Something went wrong on the console; the details are in its log."))
        return security_headers(resp, state)

    endpoint.__name__ = getattr(fn, "__name__", "endpoint")
    return endpoint


def error_response(c: Ctx, status: int, message: str) -> Response:
    if c.api or c.request.headers.get("accept") == "text/event-stream":
        return JSONResponse({"error": message}, status_code=status)
    if c.request.headers.get("x-requested-with") == "fetch":
        return PlainTextResponse(message, status_code=status)
    try:
        return c.render("error.html", status=status, status_code=status, message=message)
    except Exception:  # noqa: BLE001 - the error page itself failed: plain text still says why
        log.exception("console: error page failed")
        return PlainTextResponse(message, status_code=status)


def new_login_csrf() -> str:
    return secrets.token_urlsafe(24)
