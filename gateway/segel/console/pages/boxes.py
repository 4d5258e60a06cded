"""A box's page (its whole story, exports) and the card the map shows for it."""

from __future__ import annotations

import csv
import io
import json

from starlette.responses import Response

from segel import accounts
from segel.console import boxdata, mapdata
from segel.console.routing import ConsoleError, Ctx, Router
from segel.custody import display
from segel.custody.display import EVENT_LABELS, KIND_LABELS, LEG_LABELS, SEVERITY_LABELS, STATE_LABELS
from segel.i18n import N_

router = Router("boxes")

LEG_STATUS_LABELS = {"on_time": N_("on time"), "late": N_("late"), "pending": N_("not yet"), "missed": N_("not arrived")}
VISIT_LABELS = {"arrived": N_("arrived"), "enter": N_("entered"), "exit": N_("left")}


def _story(c: Ctx, box: str) -> tuple[boxdata.Story, mapdata.PlaceBook]:
    book = mapdata.place_book(c.db)
    cal_path = c.state.cfg.custody.calendar
    cal = boxdata.calendar(c.state.cfg.path(cal_path)) if cal_path else None
    s = boxdata.story(c.db, box, book, cal, c.now())
    if s is None:
        raise ConsoleError(404, c._("No such box.") + f" ({box})")
    c.require_scope(s.district, book.chain(s.tps))
    return s, book


def _state_of(c: Ctx, box: str, book: mapdata.PlaceBook) -> dict:
    rows = mapdata.boxes(c.db, book, {box})
    return rows[0] if rows else {}


@router.page("/boxes/{box}")
def box_page(c: Ctx) -> Response:
    s, book = _story(c, c.params["box"])
    st = _state_of(c, s.box, book)
    return c.render("box.html", s=s, book=book, st=st, state_label=c._(mapdata.STATE_LABELS.get(st.get("state", ""), "")),
                    kinds=KIND_LABELS, sevs=SEVERITY_LABELS, states=STATE_LABELS, events=EVENT_LABELS,
                    legs=LEG_LABELS, leg_status=LEG_STATUS_LABELS, visits=VISIT_LABELS,
                    describe=lambda a: display.describe(c.t, a, book.name),
                    seal_event=lambda e: display.event_label(c.t, e),
                    track=json.dumps({"track": [[lat, lon] for _t, lat, lon in s.track],
                                      "seals": [[e["lat"], e["lon"], display.event_label(c.t, e["event"])] for e in s.seals
                                                if e["lat"]],
                                      "tps": _point(book, s.tps)}))


def _point(book: mapdata.PlaceBook, code: str | None) -> list[float] | None:
    p = book.places.get(code or "")
    sh = getattr(p, "shape", None)
    return [sh.lat, sh.lon, sh.radius_m] if sh is not None and hasattr(sh, "radius_m") else None


@router.page("/boxes/{box}/card")
def card(c: Ctx) -> Response:
    book = mapdata.place_book(c.db)
    st = _state_of(c, c.params["box"], book)
    if not st:
        raise ConsoleError(404, c._("No such box."))
    c.require_scope(st["district"], book.chain(st["tps"]))
    return c.render("box_card.html", b=st, book=book, state_label=c._(mapdata.STATE_LABELS[st["state"]]),
                    alert_label=c._(KIND_LABELS[st["alert"]]) if st["alert"] in KIND_LABELS else "")


@router.page("/boxes/{box}/export.csv", permission=accounts.EXPORT)
def export_csv(c: Ctx) -> Response:
    s, _book = _story(c, c.params["box"])
    buf = io.StringIO()
    csv.writer(buf).writerows(boxdata.csv_rows(s, c.t.iso_local))
    return Response(buf.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{s.box}.csv"'})


@router.page("/boxes/{box}/export.geojson", permission=accounts.EXPORT)
def export_geojson(c: Ctx) -> Response:
    s, _book = _story(c, c.params["box"])
    return Response(json.dumps(boxdata.geojson(s, c.t.iso_local), indent=1), media_type="application/geo+json",
                    headers={"Content-Disposition": f'attachment; filename="{s.box}.geojson"'})
