"""The handover pages: the receipt app (`/handover/`), its service worker and manifest, the API the app
sends receipts to, and a box's receipts and ledger (`/handover/box/{box}`)."""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from segel import accounts
from segel.console.routing import MAX_BODY, ConsoleError, Ctx, Router
from segel.custody import display, ledger, receipts
from segel.custody.plan import Calendar, Plan, corridor_map, make_plan, stored_calendar
from segel.handover.icons import icon
from segel.i18n import N_
from segel.ids import fleet_id, parse_box_label
from segel.places import io as places_io
from segel.places.index import PlaceIndex
from segel.places.model import CORRIDOR, ZONE, Place
from segel.registry import RegistryError, load_fleet_secret
from segel.report.texts import Texts

log = logging.getLogger("segel.handover")
HERE = Path(__file__).parent
STATIC = HERE / "static"
router = Router("handover", templates=HERE / "templates", static=STATIC)
router.nav(N_("Receipts"), "/handover/", permission=accounts.CONFIRM_HANDOVER, order=60)
CACHE_S = 60.0  # places, calendar and the fleet id are read again after this long
KIND_ORDER = {"warehouse": 0, "ppk": 1, "pps": 2, "tps": 3}

# Everything the app says, in the catalog (the page passes them to its script translated).
STRINGS = {
    "online": N_("Online: receipts are sent at once."),
    "offline": N_("Offline: receipts wait on this phone and are sent when there is a signal."),
    "queued": N_("waiting to be sent"), "sent": N_("recorded"), "refused": N_("refused"),
    "duplicate": N_("was already recorded"), "linked": N_("the tracker's arrival is recorded"),
    "pending": N_("the tracker's arrival is not known yet"), "alert": N_("Alert"),
    "scan_failed": N_("No QR code found in the photo: take it again, closer and sharper."),
    "not_box_label": N_("This QR code is not a Segel box label."),
    "tracker_label": N_("This is the tracker's own label: scan the label on the box."),
    "scanned": N_("Box {box}, tracker {tracker}"),
    "missing": N_("Fill in: {fields}"), "not_image": N_("The photo could not be read as an image."),
    "login": N_("Your session has ended: sign in again. The receipts stay on this phone and are sent after."),
    "sign_in": N_("Sign in"), "delete": N_("Remove"), "entry": N_("ledger entry {seq} of the box"),
    "box": N_("Box code"), "place": N_("Custody point"), "officer_name": N_("Name"), "officer_role": N_("Role"),
    "officer_id": N_("ID number (NIK)"), "seals": N_("Seal numbers"),
}
CONDITIONS = [("intact", N_("intact")), ("damaged", N_("damaged")), ("wet", N_("wet")),
              ("seal_broken", N_("seal broken")), ("other", N_("other"))]


@dataclass
class World:
    """What a receipt is judged against, read from the database and cached for CACHE_S."""

    at: float
    places: dict[str, Place]
    index: PlaceIndex
    calendar: Calendar | None
    cmap: dict
    fleet: str | None

    def plan(self, conn: sqlite3.Connection, box: str) -> Plan | None:
        row = conn.execute("SELECT tps FROM boxes WHERE box_id = ?", (box,)).fetchone()
        if row is None or not row[0] or self.calendar is None:
            return None
        try:
            return make_plan(box, row[0], self.places, self.calendar, self.cmap)
        except ValueError:
            return None


def world(c: Ctx) -> World:
    w: World | None = c.state.extras.get("handover")
    if w is not None and time.monotonic() - w.at < CACHE_S:
        return w
    conn = c.db
    places = {p.code: p for p in places_io.load(conn)}
    fleet = None
    try:
        fleet = fleet_id(load_fleet_secret(c.state.cfg.path(c.state.cfg.gateway.fleet_secret)))
    except RegistryError as e:  # receipts still work; labels of another fleet are then told by their box
        log.warning("handover: cannot read the fleet secret (%s): labels are not checked for their fleet", e)
    w = World(time.monotonic(), places, PlaceIndex(places.values()), stored_calendar(conn), corridor_map(places), fleet)
    c.state.extras["handover"] = w
    return w


def custody_points(user: accounts.User | None, places: dict[str, Place]) -> list[Place]:
    """The places where this account may confirm handovers: its own custody points, or every
    warehouse, PPK, PPS and TPS of its districts (segel.custody.receipts.in_scope decides)."""
    officer = officer_of(user) if user is not None else receipts.Officer("")
    out = [p for p in places.values() if p.kind not in (CORRIDOR, ZONE) and receipts.in_scope(officer, p.code, places)]
    return sorted(out, key=lambda p: (KIND_ORDER.get(p.kind, 9), p.code))


def officer_of(user: accounts.User) -> receipts.Officer:
    return receipts.Officer(user.label, tuple(user.places), tuple(user.districts))


def _version(name: str) -> str:
    return hashlib.sha256((STATIC / name).read_bytes()).hexdigest()[:10]


@router.page("/handover/", permission=accounts.CONFIRM_HANDOVER)
def app_page(c: Ctx) -> Response:
    w = world(c)
    return c.render("handover/receipt.html", places=custody_points(c.user, w.places), conditions=CONDITIONS,
                    strings={k: c._(v) for k, v in STRINGS.items()},
                    js_version=_version("receipt.js"), css_version=_version("receipt.css"))


@router.page("/handover/sw.js", public=True, permission=None)
def service_worker(c: Ctx) -> Response:
    # served from /handover/ so that its scope is the app; no-cache: the browser checks for a new one
    return Response((STATIC / "sw.js").read_bytes(), media_type="text/javascript",
                    headers={"Cache-Control": "no-cache"})


@router.page("/handover/manifest.webmanifest", public=True, permission=None)
def manifest(c: Ctx) -> Response:
    doc = {"name": c._("Segel handover receipts"), "short_name": c._("Receipts"), "start_url": "/handover/",
           "scope": "/handover/", "display": "standalone", "background_color": "#14233a", "theme_color": "#14233a",
           "lang": c.t.lang, "icons": [{"src": f"/handover/icon-{n}.png", "sizes": f"{n}x{n}", "type": "image/png",
                                        "purpose": "any maskable"} for n in (192, 512)]}
    return Response(json.dumps(doc), media_type="application/manifest+json")


@router.page("/handover/icon-{size:int}.png", public=True, permission=None)
def app_icon(c: Ctx) -> Response:
    size = int(c.params["size"])
    if size not in (192, 512):
        raise ConsoleError(404, c._("Not found"))
    return Response(icon(size), media_type="image/png", headers={"Cache-Control": "max-age=86400"})


@router.api("/handover/api/session", permission=accounts.CONFIRM_HANDOVER)
def session(c: Ctx) -> Response:
    """The app's fresh token after it was offline (the cached page may hold an old one)."""
    u = c.user
    assert u is not None
    return c.json({"user": u.username, "name": u.full_name, "csrf": c.csrf})


@router.api("/handover/api/receipts", permission=accounts.CONFIRM_HANDOVER, methods=("POST",))
async def submit(c: Ctx) -> Response:
    photo = None
    if c.request.headers.get("content-type", "").startswith("multipart/form-data"):
        form = await c.request.form(max_part_size=MAX_BODY)  # parsed already (the CSRF check): cached
        raw = form.get("receipt")
        up = form.get("photo")
        if up is not None and not isinstance(up, str):
            photo = await up.read() or None
        await form.close()  # the photo's spooled temporary file
    else:
        raw = (await c.request.body()).decode("utf-8", "replace")
    try:
        data = json.loads(raw) if isinstance(raw, str) else None
    except json.JSONDecodeError:
        data = None
    if not isinstance(data, dict):
        return JSONResponse({"error": c._("The receipt could not be read."), "field": None}, 400)
    return await run_in_threadpool(_submit, c, data, photo)


def _submit(c: Ctx, data: dict, photo: bytes | None) -> Response:
    w = world(c)
    u = c.user
    assert u is not None
    try:
        box = parse_box_label(str(data["label"]))[1] if data.get("label") else str(data.get("box") or "")
    except ValueError:
        box = ""
    officer = officer_of(u)
    try:
        out = receipts.submit(c.db, data, officer, c.now(), places=w.places, index=w.index, plan=w.plan(c.db, box),
                              fleet=w.fleet, photo=photo)
    except receipts.ReceiptError as e:
        return JSONResponse({"error": c._(e.template).format(**e.params), "field": e.field}, e.status)
    r = out.receipt
    seq = c.db.execute("SELECT seq FROM custody_ledger WHERE box = ? AND event = 'receipt' AND "
                       "json_extract(body, '$.receipt') = ?", (r["box"], r["id"])).fetchone()
    tx = Texts(c.t.lang, c.t.tz, c.t.zone_name)  # type: ignore[arg-type]
    return c.json({"receipt": {"id": r["id"], "box": r["box"], "place": r["place"], "state": r["state"],
                               "confirmed_at": r["confirmed_at"], "clock_offset_s": r["clock_offset_s"]},
                   "duplicate": out.duplicate, "ledger_seq": seq[0] if seq else None,
                   "alerts": [{"id": a["id"], "kind": a["kind"], "severity": a["severity"], "title": tx.label(a["kind"]),
                               "message": alert_text(c, a, w.places)} for a in out.alerts]})


def alert_text(c: Ctx, a: dict, places: dict[str, Place]) -> str:
    """What the officer reads about an alert their receipt raised, in their language."""
    return display.describe(c.t, a, lambda code: places[code].name if code in places else None)


@router.page("/handover/box/{box}", permission=accounts.VIEW)
def box_page(c: Ctx) -> Response:
    box = str(c.params["box"])
    w = world(c)
    row = c.db.execute("SELECT tps FROM boxes WHERE box_id = ?", (box,)).fetchone()
    if row is None:
        raise ConsoleError(404, c._("No such box."))
    chain: list[str] = []
    code = row[0]
    while code and code in w.places and len(chain) < 8:
        chain.append(code)
        code = w.places[code].parent
    district = next((x for x in chain if w.places[x].kind == "ppk"), None)
    c.require_scope(district, chain)
    tx = Texts(c.t.lang, c.t.tz, c.t.zone_name)  # type: ignore[arg-type]
    entries = [{"seq": e["seq"], "at": c.t.datetime(e["at_ms"] / 1000), "event": tx.label(e["event"]),
                "body": summary(e["event"], e["body"])} for e in ledger.export(c.db, box)[-60:]][::-1]
    return c.render("handover/box.html", box=box, receipts=receipts.of_box(c.db, box), entries=entries,
                    label=tx.label, places=w.places)


def summary(event: str, body_text: str) -> str:
    """A ledger entry's content as a line a person reads (the full JSON is in the bundle)."""
    try:
        b = json.loads(body_text)
    except json.JSONDecodeError:
        return body_text[:240]
    if event == "receipt":
        o = b.get("officer") or {}
        return (f"{b.get('receipt')} · {o.get('name')} ({o.get('role')}) · {b.get('place')} · "
                f"{', '.join(b.get('seals') or [])} · {b.get('condition')}")
    if event == "frame" and b.get("k") == "pos":
        return f"#{b.get('c')} {b.get('lat', 0):.5f}, {b.get('lon', 0):.5f}"
    if event == "frame":
        return f"#{b.get('c')} {b.get('k')}"
    keep = {k: v for k, v in b.items() if k not in ("key",)}
    return json.dumps(keep, ensure_ascii=False, separators=(", ", ": "))[:240]
