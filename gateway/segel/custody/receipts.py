"""Handover receipts: a receiving officer's signed-for handover of a box, linked to the tracker's arrival.

`submit()` validates a receipt as the phone page sends it, records it once (keyed by the id the
phone generated, so a receipt queued offline and sent twice is recorded once), appends it to the
box's ledger and raises the alerts it calls for: a place the box's plan does not name or a phone
position away from the place (`receipt_wrong_place`), seal numbers that differ from the last
recorded ones with no authorised opening in between (`seal_numbers_differ`). The tracker's
arrival is looked up at once; a receipt the tracker has not (yet) confirmed is checked again on
the judge's timer, and once the tracker had the time it takes to be declared silent it raises
`receipt_no_arrival` (resolved if a late frame shows the arrival after all). Docs: docs/custody.md.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass

from segel import store
from segel.custody import alerts as al
from segel.custody import ledger
from segel.custody.plan import Plan
from segel.i18n import N_
from segel.ids import device_hex, parse_box_label
from segel.influx import lines, outbox
from segel.places import geometry
from segel.places.index import PlaceIndex
from segel.places.model import Circle, Place
from segel.registry import transaction

SCHEMA = """
CREATE TABLE IF NOT EXISTS receipts (
    id TEXT PRIMARY KEY, client_id TEXT NOT NULL UNIQUE, box TEXT NOT NULL, device INTEGER, place TEXT NOT NULL,
    officer TEXT NOT NULL, witness TEXT, seals TEXT NOT NULL, condition TEXT NOT NULL, note TEXT,
    lat REAL, lon REAL, accuracy_m REAL, confirmed_at REAL NOT NULL, clock_offset_s REAL NOT NULL,
    received_at REAL NOT NULL, photo_sha256 TEXT, arrival_key TEXT, arrival_t REAL,
    state TEXT NOT NULL, submitted TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS receipts_box ON receipts(box, confirmed_at);
CREATE INDEX IF NOT EXISTS receipts_open ON receipts(state) WHERE state != 'linked';
CREATE TABLE IF NOT EXISTS receipt_photos (
    receipt_id TEXT PRIMARY KEY, mime TEXT NOT NULL, data BLOB NOT NULL
) WITHOUT ROWID
"""
CONDITIONS = ("intact", "damaged", "wet", "seal_broken", "other")
LINKED, PENDING, UNMATCHED = "linked", "pending", "unmatched"
MAX_PHOTO_BYTES = 1_500_000  # the page shrinks photos to ~0.3 MB; the console refuses bodies over 2 MB
MAX_AGE_S = 45 * 86400  # a receipt older than this (queued on a phone for weeks) is refused: check the phone's date
MATCH_S = 1800.0  # a receipt matches an arrival this close to the stay (clocks, a handover just before the fix)
PHOTO_TYPES = ((b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG\r\n\x1a\n", "image/png"))


class ReceiptError(ValueError):
    """A receipt that cannot be recorded: `status` is the HTTP status the console answers with,
    `field` the form field at fault (or None). The message says what to do: `template` (a source
    string of the catalog) formatted with `params`, so the phone page shows it translated."""

    def __init__(self, template: str, field: str | None = None, status: int = 400, **params: object) -> None:
        super().__init__(template.format(**params))
        self.template = template
        self.params = params
        self.field = field
        self.status = status


@dataclass(frozen=True)
class Officer:
    """Who submits (the console's account, `segel.accounts.User`): an account of role officer is
    scoped to its custody points (`places`) and/or districts (PPK codes); unscoped = anywhere."""

    user: str
    places: tuple[str, ...] = ()
    districts: tuple[str, ...] = ()

    @property
    def scope(self) -> str:
        return ", ".join(self.places + tuple(f"district {d}" for d in self.districts))


@dataclass
class Outcome:
    receipt: dict
    duplicate: bool
    alerts: list[dict]


def ensure_schema(conn: sqlite3.Connection) -> None:
    for stmt in SCHEMA.split(";"):
        if stmt.strip():
            conn.execute(stmt)
    al.ensure_schema(conn)
    ledger.ensure_schema(conn)


def _text(d: dict, key: str, field: str, need: bool = True, limit: int = 200) -> str:
    v = d.get(key)
    if v is None or (isinstance(v, str) and not v.strip()):
        if need:
            raise ReceiptError(N_("{name} is missing"), field, name=field)
        return ""
    if not isinstance(v, str):
        raise ReceiptError(N_("{name} must be text"), field, name=field)
    v = " ".join(v.split())
    if len(v) > limit:
        raise ReceiptError(N_("{name} is longer than {limit} characters"), field, name=field, limit=limit)
    return v


def _person(d: object, field: str, need: bool) -> dict | None:
    if d is None and not need:
        return None
    if not isinstance(d, dict):
        raise ReceiptError(N_("{name} is missing"), field, name=field)
    name = _text(d, "name", f"{field}.name", need)
    if not name and not need:
        return None
    # the receiving officer gives role and ID number; a witness at least a name
    return {"name": name, "role": _text(d, "role", f"{field}.role", need),
            "id_number": _text(d, "id_number", f"{field}.id_number", need)}


def normalise_seal(s: str) -> str:
    return "".join(s.split()).upper()


def photo_type(data: bytes) -> str:
    if len(data) > MAX_PHOTO_BYTES:
        raise ReceiptError(N_("the photo is {size} MB; at most {limit} MB (the page shrinks photos before "
                              "sending: reload it)"), "photo", 413, size=f"{len(data) / 1e6:.1f}",
                           limit=f"{MAX_PHOTO_BYTES / 1e6:g}")
    for magic, mime in PHOTO_TYPES:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    raise ReceiptError(N_("the photo is not an image (JPEG, PNG or WebP)"), "photo", 415)


def receipt_id(client_id: str) -> str:
    return "RC-" + hashlib.sha256(client_id.encode()).hexdigest()[:12]


def parse(data: dict, now: float, fleet: str | None) -> dict:
    """The submitted form, checked field by field; times corrected for the phone's clock."""
    if not isinstance(data, dict):
        raise ReceiptError(N_("a receipt is a JSON object"))
    client_id = _text(data, "client_id", "client_id", limit=80)
    label = data.get("label")
    if label:
        try:
            lf, box, ldev = parse_box_label(str(label))
        except ValueError:
            if str(label).strip().upper().startswith("SGL-"):
                raise ReceiptError(N_("this is a tracker's label, not the box's: scan the label on the box"),
                                   "label") from None
            raise ReceiptError(N_("this is not a Segel box label (SGL1:...)"), "label") from None
        if fleet is not None and lf != fleet.upper():
            raise ReceiptError(N_("this label belongs to another fleet ({theirs}; this one is {ours}): it was not "
                                  "printed for this election office"), "label", 422, theirs=lf, ours=fleet.upper())
    else:
        box, ldev = _text(data, "box", "box", limit=100), None
    seals = data.get("seals")
    if not isinstance(seals, list) or not seals or not all(isinstance(s, str) and s.strip() for s in seals):
        raise ReceiptError(N_("list the seal numbers seen on the box (at least one)"), "seals")
    cond = _text(data, "condition", "condition")
    if cond not in CONDITIONS:
        raise ReceiptError(N_("condition must be one of {choices}"), "condition", choices=", ".join(CONDITIONS))
    pos = data.get("position") or {}
    lat, lon, acc = pos.get("lat"), pos.get("lon"), pos.get("accuracy_m")
    if pos and not (isinstance(lat, (int, float)) and isinstance(lon, (int, float)) and -90 <= lat <= 90
                    and -180 <= lon <= 180):
        raise ReceiptError(N_("position needs lat and lon in degrees"), "position")
    try:
        confirmed = float(data["confirmed_at"]) / 1000
        sent = float(data.get("sent_at", data["confirmed_at"])) / 1000
    except (KeyError, TypeError, ValueError):
        raise ReceiptError(N_("confirmed_at (the phone's time, ms) is missing"), "confirmed_at") from None
    # The phone's clock may be wrong: the difference between our clock and the phone's when it sent
    # the receipt corrects the time it was confirmed (queued offline, that was hours earlier).
    offset = now - sent
    at = confirmed + offset
    if confirmed > sent + 60:
        raise ReceiptError(N_("confirmed_at is after sent_at: the phone's clock jumped"), "confirmed_at")
    if now - at > MAX_AGE_S:
        raise ReceiptError(N_("the receipt says it was confirmed {days} days ago: check the phone's date"),
                           "confirmed_at", days=int((now - at) // 86400))
    return {"client_id": client_id, "box": box, "label_device": ldev, "place": _text(data, "place", "place", limit=64),
            "officer": _person(data.get("officer"), "officer", True), "witness": _person(data.get("witness"), "witness", False),
            "seals": sorted({normalise_seal(s) for s in seals}), "condition": cond,
            "note": _text(data, "note", "note", need=False, limit=1000) or None,
            "lat": float(lat) if lat is not None else None, "lon": float(lon) if lon is not None else None,
            "accuracy_m": float(acc) if isinstance(acc, (int, float)) else None, "confirmed_at": at,
            "clock_offset_s": round(offset, 1)}


def in_scope(officer: Officer, place: str, places: dict[str, Place]) -> bool:
    """The place is one of the officer's, or inside one of its districts (an unscoped account: any)."""
    if not officer.places and not officer.districts:
        return True
    if place in officer.places:
        return True
    code: str | None = place
    while code:
        if code in officer.districts:
            return True
        code = places[code].parent if code in places else None
    return False


def submit(conn: sqlite3.Connection, data: dict, officer: Officer, now: float, *, places: dict[str, Place],
           index: PlaceIndex | None = None, plan: Plan | None = None, fleet: str | None = None,
           photo: bytes | None = None) -> Outcome:
    """Record one receipt (all or nothing). The same client_id again returns the stored receipt
    (duplicate=True) and records nothing; with other content it is refused (409)."""
    ensure_schema(conn)
    r = parse(data, now, fleet)
    rid = receipt_id(r["client_id"])
    canon = json.dumps({k: v for k, v in r.items() if k not in ("confirmed_at", "clock_offset_s")}, sort_keys=True)
    old = get(conn, rid)
    if old is not None:
        if old["submitted"] != canon:
            raise ReceiptError(N_("receipt id {id} was already used for another receipt"), "client_id", 409,
                               id=r["client_id"])
        return Outcome(old, True, [])
    row = conn.execute("SELECT device_id FROM boxes WHERE box_id = ?", (r["box"],)).fetchone()
    if row is None:
        raise ReceiptError(N_("no box {box} in this election (check the label)"), "box", 404, box=r["box"])
    if r["place"] not in places:
        raise ReceiptError(N_("no place {place}"), "place", 404, place=r["place"])
    if not in_scope(officer, r["place"], places):
        raise ReceiptError(N_("{user} records receipts at {scope} only, not at {place}"), "place", 403,
                           user=officer.user, scope=officer.scope, place=r["place"])
    mime = photo_type(photo) if photo else None
    device = row[0]
    alerts: list[dict] = []
    with transaction(conn):
        arrival = find_arrival(conn, device, r["place"], r["confirmed_at"]) if device is not None else None
        state = LINKED if arrival else PENDING
        sha = hashlib.sha256(photo).hexdigest() if photo else None
        conn.execute("INSERT INTO receipts(id, client_id, box, device, place, officer, witness, seals, condition, note, "
                     "lat, lon, accuracy_m, confirmed_at, clock_offset_s, received_at, photo_sha256, arrival_key, "
                     "arrival_t, state, submitted) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                     (rid, r["client_id"], r["box"], device, r["place"], json.dumps({**r["officer"], "user": officer.user}),
                      json.dumps(r["witness"]) if r["witness"] else None, json.dumps(r["seals"]), r["condition"],
                      r["note"], r["lat"], r["lon"], r["accuracy_m"], r["confirmed_at"], r["clock_offset_s"], now, sha,
                      arrival[2] if arrival else None, arrival[1] if arrival else None, state, canon))
        if photo and mime:
            conn.execute("INSERT INTO receipt_photos(receipt_id, mime, data) VALUES (?,?,?)", (rid, mime, photo))
        ledger.append(conn, r["box"], now, r["confirmed_at"], "receipt", {
            "receipt": rid, "client_id": r["client_id"], "place": r["place"], "officer": {**r["officer"], "user": officer.user},
            "witness": r["witness"], "seals": r["seals"], "condition": r["condition"], "note": r["note"],
            "lat": r["lat"], "lon": r["lon"], "accuracy_m": r["accuracy_m"], "confirmed_at": r["confirmed_at"],
            "clock_offset_s": r["clock_offset_s"], "photo_sha256": sha, "label_device":
                device_hex(r["label_device"]) if r["label_device"] is not None else None,
            "arrival": {"place": arrival[0], "t": arrival[1], "key": arrival[2]} if arrival else None})
        ctx = _Alerting(conn, r["box"], device, plan, rid, now, publish=True)
        wrong = _wrong_place(r, plan, places, index)
        if wrong:
            alerts += ctx.raise_("receipt_wrong_place", r["place"], r["confirmed_at"], wrong, r["lat"], r["lon"])
        differ = _seals_differ(conn, r, rid, device)
        if differ:
            alerts += ctx.raise_("seal_numbers_differ", r["place"], r["confirmed_at"], differ, r["lat"], r["lon"])
    return Outcome(get(conn, rid), False, alerts)  # type: ignore[arg-type]


def get(conn: sqlite3.Connection, rid: str) -> dict | None:
    cur = conn.execute("SELECT * FROM receipts WHERE id = ?", (rid,))
    row = cur.fetchone()
    if row is None:
        return None
    d = dict(zip([c[0] for c in cur.description], row))
    for k in ("officer", "witness", "seals"):
        d[k] = json.loads(d[k]) if d[k] else None
    return d


def of_box(conn: sqlite3.Connection, box: str) -> list[dict]:
    return listing(conn, box=box)


def listing(conn: sqlite3.Connection, box: str | None = None, state: str | None = None) -> list[dict]:
    """Receipts in the order they were confirmed, optionally of one box or in one state."""
    ensure_schema(conn)
    where, args = ["1=1"], []
    for col, v in (("box", box), ("state", state)):
        if v:
            where.append(f"{col} = ?")
            args.append(v)
    ids = [r[0] for r in conn.execute(f"SELECT id FROM receipts WHERE {' AND '.join(where)} ORDER BY confirmed_at, id",
                                      args)]
    return [get(conn, i) for i in ids]  # type: ignore[misc]


def find_arrival(conn: sqlite3.Connection, device: int, place: str, at: float, slack: float = MATCH_S
                 ) -> tuple[str, float, str] | None:
    """(place, time, key) of the tracker's recorded arrival at `place` whose stay holds `at`: arrived
    no later than `at` + slack, and not gone again before `at` - slack."""
    rows = conn.execute("SELECT kind, t, key FROM judge_findings WHERE device = ? AND place = ? AND kind IN "
                        "('arrived', 'exit') ORDER BY t", (device, place)).fetchall()
    best = None
    for i, (kind, t, key) in enumerate(rows):
        if kind != "arrived" or t > at + slack:
            continue
        left = next((t2 for k2, t2, _ in rows[i + 1:] if k2 == "exit" and t2 >= t), None)
        if left is None or left >= at - slack:
            best = (place, float(t), key)
    return best


def _wrong_place(r: dict, plan: Plan | None, places: dict[str, Place], index: PlaceIndex | None) -> dict | None:
    if plan is not None and r["place"] not in plan.custody_points:
        return {"message": f"{r['place']} is not a custody point of the box's plan",
                "plan_points": sorted(plan.custody_points)}
    if r["lat"] is None or index is None:
        return None
    if r["place"] in index.lookup(r["lat"], r["lon"]).halo:  # the halo counts as being at the place
        return None
    p = places[r["place"]]
    if isinstance(p.shape, Circle):
        dist = max(0.0, geometry.distance_m(r["lat"], r["lon"], p.shape.lat, p.shape.lon) - p.shape.radius_m - p.margin_m)
    else:
        dist = float("inf")
    if dist <= (r["accuracy_m"] or 0.0):
        return None  # the phone's own uncertainty reaches the place
    return {"message": f"the phone was {dist:.0f} m outside {r['place']} when the receipt was confirmed",
            "distance_m": round(dist), "accuracy_m": r["accuracy_m"]}


def _seals_differ(conn: sqlite3.Connection, r: dict, rid: str, device: int | None) -> dict | None:
    """Against the box's latest receipt before this one, unless the seal was opened with authority since."""
    prev = conn.execute("SELECT id, seals, place, confirmed_at FROM receipts WHERE box = ? AND id != ? AND "
                        "confirmed_at <= ? ORDER BY confirmed_at DESC LIMIT 1", (r["box"], rid, r["confirmed_at"])).fetchone()
    if prev is None or json.loads(prev[1]) == r["seals"]:
        return None
    if device is not None and conn.execute(
            "SELECT 1 FROM judge_findings WHERE device = ? AND kind = 'seal_authorised' AND t >= ? AND t <= ?",
            (device, prev[3], r["confirmed_at"])).fetchone():
        return None  # opened with authority (counting at the TPS) and sealed anew: new numbers expected
    before, now_ = set(json.loads(prev[1])), set(r["seals"])
    return {"message": f"seal numbers differ from receipt {prev[0]} at {prev[2]}", "previous_receipt": prev[0],
            "previous_place": prev[2],
            "missing": sorted(before - now_), "new": sorted(now_ - before)}


class _Alerting:
    def __init__(self, conn: sqlite3.Connection, box: str, device: int | None, plan: Plan | None, rid: str,
                 now: float, publish: bool = False) -> None:
        """publish: queue the alerts for the running gateway to publish (a receipt arrives in the
        console's process; the judge's timer returns its alerts to the gateway itself)."""
        self.conn, self.box, self.device, self.plan, self.rid, self.now = conn, box, device, plan, rid, now
        self.publish = publish

    def raise_(self, kind: str, place: str | None, t: float, detail: dict, lat: float | None = None,
               lon: float | None = None) -> list[dict]:
        row, ev = al.raise_alert(self.conn, kind=kind, subject=self.box, key=f"{kind}|{self.rid}", now=self.now,
                                 device_time=t, box=self.box, device=device_hex(self.device) if self.device is not None
                                 else None, place=place, district=self.plan.district if self.plan else None,
                                 message=detail["message"], detail={**detail, "receipt": self.rid}, lat=lat, lon=lon)
        outbox.enqueue(self.conn, [lines.alert(row, self.now)])
        ledger.record_alert(self.conn, row, ev, self.now, "system", detail["message"])
        published = al.to_json(row, ev)
        if self.publish:
            store.queue_publication(self.conn, "alert", published, self.now)
        return [published]


def check_pending(conn: sqlite3.Connection, now: float, grace_s: float, plans: dict[str, Plan]) -> list[dict]:
    """On the judge's timer: link receipts to arrivals learned since; a receipt still without an
    arrival `grace_s` after it was confirmed raises receipt_no_arrival (resolved if one turns up)."""
    if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'receipts'").fetchone() is None:
        return []
    out: list[dict] = []
    for rid, box, device, place, at, state in conn.execute(
            "SELECT id, box, device, place, confirmed_at, state FROM receipts WHERE state != 'linked'").fetchall():
        arrival = find_arrival(conn, device, place, at) if device is not None else None
        ctx = _Alerting(conn, box, device, plans.get(box), rid, now)
        if arrival is not None:
            conn.execute("UPDATE receipts SET state = ?, arrival_key = ?, arrival_t = ? WHERE id = ?",
                         (LINKED, arrival[2], arrival[1], rid))
            ledger.append(conn, box, now, arrival[1], "receipt_arrival",
                          {"receipt": rid, "place": place, "t": arrival[1], "key": arrival[2]})
            if state == UNMATCHED:
                open_ = al.open_alert(conn, box, "receipt_no_arrival")
                if open_ is not None and json.loads(open_["detail"] or "{}").get("receipt") == rid:
                    note = f"the tracker's arrival at {place} was received late"
                    out.append(al.resolve(conn, open_["id"], "system", note, now))
                    outbox.enqueue(conn, [lines.alert(al.get(conn, open_["id"]), now)])  # type: ignore[arg-type]
                    ledger.record_alert(conn, open_, "resolved", now, "system", note)
        elif state == PENDING and now - at > grace_s:
            conn.execute("UPDATE receipts SET state = ? WHERE id = ?", (UNMATCHED, rid))
            out += ctx.raise_("receipt_no_arrival", place, at, {
                "message": f"receipt {rid} at {place}, but the tracker recorded no arrival there"})
    return out
