"""One box's whole story from the gateway's database: track, seal events, custody legs against the plan, alerts.

Everything here is read from what the gateway recorded: the judge's frames (positions and seal
events in counter order, i.e. device order), its findings (arrivals and place visits), the
alerts with their history, the tracker's last state, and the custody ledger's verdict.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from segel.console.mapdata import PlaceBook
from segel.custody import alerts as al
from segel.custody import ledger
from segel.custody.plan import OUTBOUND, Calendar, Plan, load_calendar, make_plan
from segel.protocol import SealEvent


@dataclass
class LegView:
    name: str
    from_code: str
    to_code: str
    depart: float
    arrive_by: float
    arrived: float | None
    status: str  # on_time | late | pending | missed


@dataclass
class Story:
    box: str
    tps: str | None
    contest: str | None
    device: int | None
    district: str | None
    state: dict = field(default_factory=dict)  # device_state row
    board: str | None = None
    track: list[tuple[float, float, float]] = field(default_factory=list)  # (t, lat, lon)
    seals: list[dict] = field(default_factory=list)
    visits: list[dict] = field(default_factory=list)  # arrivals, enters, exits at places
    legs: list[LegView] = field(default_factory=list)
    alerts: list[dict] = field(default_factory=list)
    ledger_ok: bool = True
    ledger_entries: int = 0
    ledger_head: str = ""
    ledger_problem: str = ""


LEG_STATUS = ("on_time", "late", "pending", "missed")


_calendars: dict[str, tuple[float, Calendar]] = {}


def calendar(path: Path | None) -> Calendar | None:
    """The election calendar (cached until the file changes)."""
    if path is None or not path.is_file():
        return None
    m = path.stat().st_mtime
    hit = _calendars.get(str(path))
    if hit is None or hit[0] != m:
        hit = (m, load_calendar(path))
        _calendars[str(path)] = hit
    return hit[1]


def story(conn: sqlite3.Connection, box: str, book: PlaceBook, cal: Calendar | None, now: float) -> Story | None:
    r = conn.execute("SELECT box_id, tps, contest, device_id FROM boxes WHERE box_id = ?", (box,)).fetchone()
    if r is None:
        return None
    s = Story(r[0], r[1], r[2], r[3], book.district(r[1]))
    if s.device is not None:
        cols = ("last_seen_at", "last_fix_time", "last_lat", "last_lon", "last_seal_event", "last_seal_time",
                "last_flags", "last_battery_mv", "last_route", "max_counter")
        st = conn.execute(f"SELECT {', '.join(cols)} FROM device_state WHERE device_id = ?", (s.device,)).fetchone()
        s.state = dict(zip(cols, st)) if st else {}
        b = conn.execute("SELECT board FROM devices WHERE device_id = ?", (s.device,)).fetchone()
        s.board = b[0] if b else None
        _frames(conn, s)
        _visits(conn, s, book)
    s.alerts = [dict(a, history=al.history(conn, a["id"])) for a in al.listing(conn, box=box, limit=500)]
    v = ledger.verify(conn, box)
    s.ledger_ok, s.ledger_entries, s.ledger_head, s.ledger_problem = v.ok, v.entries, v.head, v.reason
    if cal is not None and s.tps and s.tps in book.places:
        try:
            plan = make_plan(box, s.tps, book.places, cal)
        except (ValueError, KeyError):
            plan = None
        if plan is not None:
            s.legs = legs(plan, s.visits, now)
    return s


def _frames(conn: sqlite3.Connection, s: Story) -> None:
    if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'judge_frames'").fetchone():
        return
    for (body,) in conn.execute("SELECT body FROM judge_frames WHERE device = ? ORDER BY counter", (s.device,)):
        fr = json.loads(body)
        if fr["k"] == "pos" and fr.get("fix"):
            s.track.append((fr["t"], fr["lat"], fr["lon"]))
        elif fr["k"] == "seal":
            ev = int(fr["ev"])
            name = SealEvent(ev).name.lower() if ev in SealEvent._value2member_map_ else f"unknown_{ev}"
            s.seals.append({"t": fr["t"], "event": name, "seq": fr["seq"], "lat": fr["lat"] or None,
                            "lon": fr["lon"] or None, "rx": fr["rx"]})


def _visits(conn: sqlite3.Connection, s: Story, book: PlaceBook) -> None:
    if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'judge_findings'").fetchone():
        return
    for kind, place, t, raised in conn.execute(
            "SELECT kind, place, t, raised_at FROM judge_findings WHERE device = ? AND kind IN ('arrived', 'enter', 'exit') "
            "ORDER BY t, kind", (s.device,)):
        s.visits.append({"kind": kind, "place": place, "name": book.name(place), "t": t, "learned": raised,
                         "place_kind": book.places[place].kind if place in book.places else None})


def legs(plan: Plan, visits: list[dict], now: float) -> list[LegView]:
    """Each leg of the plan with the box's arrival at its destination (as the judge counts it:
    outbound any arrival; on the way back only after the box was at its TPS)."""
    arrived = [(v["place"], v["t"]) for v in visits if v["kind"] == "arrived"]
    at_tps = [t for p, t in arrived if p == plan.tps]
    out = []
    for leg in plan.legs:
        since = float("-inf") if leg.name in OUTBOUND else (min(at_tps) if at_tps else leg.window.start)
        times = [t for p, t in arrived if p == leg.to_code and t >= since]
        when = min(times) if times else None
        if when is not None:
            status = "on_time" if when <= leg.window.end else "late"
        else:
            status = "missed" if now > leg.window.end else "pending"
        out.append(LegView(leg.name, leg.from_code, leg.to_code, leg.window.start, leg.window.end, when, status))
    return out


def geojson(s: Story, t_iso) -> dict:  # type: ignore[no-untyped-def]
    """The box's track, seal events and arrivals as GeoJSON (times as local ISO 8601)."""
    feats: list[dict] = []
    if s.track:
        feats.append({"type": "Feature", "properties": {"box": s.box, "kind": "track", "from": t_iso(s.track[0][0]),
                                                        "to": t_iso(s.track[-1][0]), "points": len(s.track)},
                      "geometry": {"type": "LineString", "coordinates": [[lon, lat] for _t, lat, lon in s.track]}})
    for e in s.seals:
        if e["lat"] is not None:
            feats.append({"type": "Feature", "properties": {"box": s.box, "kind": "seal", "event": e["event"],
                                                            "seq": e["seq"], "time": t_iso(e["t"])},
                          "geometry": {"type": "Point", "coordinates": [e["lon"], e["lat"]]}})
    for a in s.alerts:
        if a["lat"] is not None:
            feats.append({"type": "Feature", "properties": {"box": s.box, "kind": "alert", "alert": a["kind"],
                                                            "id": a["id"], "state": a["state"],
                                                            "time": t_iso(a["device_time"] or a["raised_at"])},
                          "geometry": {"type": "Point", "coordinates": [a["lon"], a["lat"]]}})
    return {"type": "FeatureCollection", "features": feats}


def csv_rows(s: Story, t_iso) -> list[list[str]]:  # type: ignore[no-untyped-def]
    """One row per thing that happened, in device time order: positions, seal events, visits, alerts."""
    rows: list[tuple[float, list[str]]] = []
    for t, lat, lon in s.track:
        rows.append((t, [t_iso(t), "position", f"{lat:.6f}", f"{lon:.6f}", "", ""]))
    for e in s.seals:
        rows.append((e["t"], [t_iso(e["t"]), "seal", f"{e['lat']:.6f}" if e["lat"] else "",
                              f"{e['lon']:.6f}" if e["lon"] else "", e["event"], f"seq {e['seq']}"]))
    for v in s.visits:
        rows.append((v["t"], [t_iso(v["t"]), v["kind"], "", "", v["place"] or "", v["name"]]))
    for a in s.alerts:
        t = a["device_time"] if a["device_time"] is not None else a["raised_at"]
        rows.append((t, [t_iso(t), "alert", "" if a["lat"] is None else f"{a['lat']:.6f}",
                         "" if a["lon"] is None else f"{a['lon']:.6f}", a["kind"], f"{a['id']} {a['state']}"]))
    rows.sort(key=lambda r: r[0])
    return [["time", "what", "lat", "lon", "detail", "more"]] + [r for _t, r in rows]
