"""The national view in the console: every province and regency, a regency's districts and alerts, one box.

`segel national view` serves the console in a national mode: these pages, read-only, over the
national store (PostgreSQL, `national.store_dsn`), for oversight roles (every role with `view`;
nothing here changes anything). An account scoped to districts sees here the provinces (`64`)
or regencies (`64.08`) its scope names; an unscoped one sees the whole country. Times of a
regency are shown in its own zone (WIB, WITA, WIT), the country's in the console's zone.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
from starlette.responses import Response

from segel import accounts, i18n
from segel.console.routing import ConsoleError, Ctx, Router
from segel.custody import display
from segel.i18n import N_
from segel.national import codes, model, view, wilayah

router = Router("national", templates=Path(__file__).with_name("templates"))
router.nav(N_("National"), "/national", permission=accounts.VIEW, order=5)

STATE_LABELS = {"warehouse": N_("warehouse"), "ppk": N_("PPK"), "pps": N_("PPS"), "tps": N_("TPS"),
                "in_transit": N_("in transit"), "unknown": N_("not yet tracked")}


def _conn(c: Ctx) -> psycopg.Connection:
    """A read-only connection to the national store for this request (closed by the caller)."""
    dsn = c.state.cfg.national.store_dsn
    if not dsn:
        raise ConsoleError(503, c._("No national store is configured (national.store_dsn)."))
    try:
        return psycopg.connect(dsn, autocommit=True, options="-c default_transaction_read_only=on")
    except psycopg.Error:
        raise ConsoleError(503, c._("The national store cannot be reached; try again shortly.")) from None


def _sees(c: Ctx, code: str) -> bool:
    """Unscoped accounts see everything; a scope of `64` or `64.08` shows that province or regency."""
    u = c.user
    if u is None:
        return False
    if not u.districts:
        return True
    return any(code == d or code.startswith(d + ".") or d.startswith(code + ".") for d in u.districts)


def _zone_t(c: Ctx, code: str) -> i18n.Translator:
    return i18n.translator(c.t.lang, i18n.zone(wilayah.zone(code)))


def _alert_words(zt: i18n.Translator) -> dict:
    """An alert's severity, kind, state and what happened, in the reader's language and the regency's zone."""
    def label(labels: dict[str, str], code: str) -> str:
        return zt._(labels[code]) if code in labels else code

    return {"kind_label": lambda k: display.kind_label(zt, k), "describe": lambda a: display.describe(zt, a),
            "sev_label": lambda s: label(display.SEVERITY_LABELS, s),
            "alert_state": lambda s: label(display.STATE_LABELS, s)}


@router.page("/")
def home(c: Ctx) -> Response:
    """In national mode the console's start page is the national view."""
    return c.redirect("/national")


@router.page("/national")
def overview(c: Ctx) -> Response:
    with _conn(c) as conn:
        rows = [p for p in view.overview(conn) if _sees(c, p.code)]
    for p in rows:
        p.regencies = [r for r in p.regencies if _sees(c, r.code)]
    return c.render("national.html", provinces=rows, total=view.totals(rows), states=model.STATES,
                    state_labels=STATE_LABELS, regencies=sum(len(p.regencies) for p in rows))


@router.page("/national/{regency}")
def regency(c: Ctx) -> Response:
    code = _code(c)
    with _conn(c) as conn:
        info = view.regency(conn, code)
    if info is None:
        raise ConsoleError(404, c._("This regency has sent nothing yet."))
    zt = _zone_t(c, code)
    return c.render("national_regency.html", r=info, zt=zt, zone=wilayah.zone(code),
                    states=model.STATES, state_labels=STATE_LABELS, **_alert_words(zt))


@router.page("/national/{regency}/boxes")
def boxes(c: Ctx) -> Response:
    code = _code(c)
    district, state = c.query.get("district") or None, c.query.get("state") or None
    with _conn(c) as conn:
        rows = view.boxes(conn, code, district, state)
    return c.render("national_boxes.html", code=code, name=wilayah.regency_name(code), rows=rows, district=district,
                    state=state, zt=_zone_t(c, code), state_labels=STATE_LABELS)


@router.page("/national/{regency}/boxes/{box}")
def box(c: Ctx) -> Response:
    code = _code(c)
    with _conn(c) as conn:
        info = view.box(conn, code, c.params["box"])
    if info is None:
        raise ConsoleError(404, c._("No such box in this regency."))
    zt = _zone_t(c, code)
    return c.render("national_box.html", b=info, name=wilayah.regency_name(code), zt=zt,
                    zone=wilayah.zone(code), state_labels=STATE_LABELS, **_alert_words(zt))


def _code(c: Ctx) -> str:
    try:
        code = codes.parse(c.params["regency"])
    except codes.CodeError:
        raise ConsoleError(404, c._("No such regency.")) from None
    if not _sees(c, code):
        raise ConsoleError(403, c._("This is outside the districts and places of your account."))
    return code
