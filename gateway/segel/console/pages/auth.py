"""Sign in, sign out and the language switch."""

from __future__ import annotations

import math

from starlette.responses import Response

from segel import accounts, i18n
from segel.console.routing import (
    LANG_COOKIE,
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    Ctx,
    Router,
    client_address,
    new_login_csrf,
    secure_cookie,
)

router = Router("auth")


def safe_next(url: str | None) -> str:
    """Only a path on this site (never //host or a scheme): no open redirect after sign-in."""
    if not url or not url.startswith("/") or url.startswith("//") or "\\" in url:
        return "/"
    return url


def _login_page(c: Ctx, message: str = "", status: int = 200, username: str = "") -> Response:
    token = c.request.cookies.get(LOGIN_CSRF_COOKIE) or new_login_csrf()
    resp = c.render("login.html", status=status, message=message, login_csrf=token, username=username,
                    next=safe_next(c.query.get("next") or c.form.get("next")),
                    expired=bool(c.request.cookies.get(SESSION_COOKIE)) and c.session is None)
    resp.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", path="/",
                    secure=secure_cookie(c.request, c.state))
    return resp


@router.page("/login", public=True, permission=None)
def login_form(c: Ctx) -> Response:
    if c.session is not None:
        return c.redirect(safe_next(c.query.get("next")))
    return _login_page(c)


@router.page("/login", public=True, permission=None, methods=("POST",), name="auth.login")
def login(c: Ctx) -> Response:
    username = c.form.get("username", "").strip()
    try:
        # wall-clock time: the pages' "now" may be a rehearsal's simulated clock
        user = accounts.authenticate(c.db, username, c.form.get("password", ""), client_address(c.request))
    except accounts.LoginRefused as e:
        if e.code == "locked":
            minutes = max(1, math.ceil(e.retry_after_s / 60))
            msg = c.t.ngettext("Too many failed sign-ins: try again in %(n)d minute.",
                               "Too many failed sign-ins: try again in %(n)d minutes.", minutes) % {"n": minutes}
            return _login_page(c, msg, 429, username)
        if e.code == "disabled":
            return _login_page(c, c._("This account is disabled: ask an administrator."), 403, username)
        return _login_page(c, c._("Wrong user name or password."), 401, username)
    token, _session = accounts.start_session(c.db, user, client_address(c.request), c.state.session_ttl_s)
    resp = c.redirect(safe_next(c.form.get("next")))
    resp.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="lax", path="/",
                    secure=secure_cookie(c.request, c.state), max_age=int(c.state.session_ttl_s))
    resp.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    if user.language:
        resp.set_cookie(LANG_COOKIE, user.language, samesite="lax", path="/", max_age=400 * 86400)
    return resp


@router.page("/logout", methods=("POST",), permission=None)
def logout(c: Ctx) -> Response:
    accounts.end_session(c.db, c.request.cookies.get(SESSION_COOKIE, ""))
    resp = c.redirect("/login")
    resp.delete_cookie(SESSION_COOKIE, path="/")
    return resp


@router.page("/language", methods=("POST",), public=True, permission=None)
def language(c: Ctx) -> Response:
    """Switch the language for this browser and, when signed in, for the account."""
    lang = c.form.get("language", "")
    if lang not in i18n.LANGUAGES:
        lang = c.state.language
    if c.user is not None:
        accounts.set_language(c.db, c.user.username, lang)
    resp = c.redirect(safe_next(c.form.get("next")))
    resp.set_cookie(LANG_COOKIE, lang, samesite="lax", path="/", max_age=400 * 86400,
                    secure=secure_cookie(c.request, c.state))
    return resp
