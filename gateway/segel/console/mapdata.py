"""What the map shows, read from the gateway's database: places, outlines, and every box with its custody state.

A box's custody state comes from the judge's own record (its rule state after the box's latest
frame in counter order: which places hold it) and the box's alerts:

    alert      an open or acknowledged critical or high alert
    warehouse  inside a KPU warehouse        ppk / pps / tps   inside such a place
    returning  between places after it reached its own TPS
    transit    between places before that    unheard           no position yet

The places (and the outlines drawn when there is no basemap) change only when places are
imported, so they are built once per import and cached.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass, field

import shapely
from shapely.geometry import MultiPoint, mapping

from segel.i18n import N_
from segel.places import io as places_io
from segel.places.model import PPK, PPS, TPS, WAREHOUSE, Area, Circle, Corridor, Place

STATES = ("alert", "warehouse", "ppk", "pps", "tps", "transit", "returning", "unheard")
STATE_LABELS = {"alert": N_("alert"), "warehouse": N_("at the warehouse"), "ppk": N_("at the PPK"),
                "pps": N_("at the PPS"), "tps": N_("at the TPS"), "transit": N_("in transit"),
                "returning": N_("returning"), "unheard": N_("not heard yet")}
PLACE_KIND_LABELS = {WAREHOUSE: N_("KPU warehouse"), PPK: N_("PPK (district)"), PPS: N_("PPS (village)"),
                     TPS: N_("TPS (polling station)"), "zone": N_("zone"), "corridor": N_("corridor")}
_KIND_STATE = {WAREHOUSE: "warehouse", PPK: "ppk", PPS: "pps", TPS: "tps"}


@dataclass
class PlaceBook:
    """All places, their hierarchy, and the map's GeoJSON (built lazily, once)."""

    places: dict[str, Place]
    signature: tuple
    _geo: dict | None = None
    _outlines: dict | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def chain(self, code: str | None) -> list[str]:
        """The code and its ancestors: TPS, PPS, PPK, warehouse."""
        out: list[str] = []
        while code and code in self.places and code not in out:
            out.append(code)
            code = self.places[code].parent
        return out

    def district(self, code: str | None) -> str | None:
        """The PPK a place belongs to (itself for a PPK)."""
        return next((c for c in self.chain(code) if self.places[c].kind == PPK), None)

    def name(self, code: str | None) -> str:
        return self.places[code].name if code and code in self.places else (code or "")

    def districts(self) -> list[tuple[str, str]]:
        return sorted((c, p.name) for c, p in self.places.items() if p.kind == PPK)

    def geojson(self) -> dict:
        """Places and corridors as one FeatureCollection (circles as points with radius_m)."""
        with self._lock:
            if self._geo is None:
                feats = []
                for p in self.places.values():
                    s = p.shape
                    props: dict[str, object] = {"code": p.code, "kind": p.kind, "name": p.name, "parent": p.parent,
                             "district": self.district(p.code)}
                    if isinstance(s, Circle):
                        geom: dict = {"type": "Point", "coordinates": [round(s.lon, 6), round(s.lat, 6)]}
                        props["radius_m"] = s.radius_m
                    elif isinstance(s, Area):
                        geom = {"type": "Polygon", "coordinates": [[[round(x, 6), round(y, 6)] for x, y in s.ring]]}
                    elif isinstance(s, Corridor):
                        geom = {"type": "LineString", "coordinates": [[round(x, 6), round(y, 6)] for x, y in s.line]}
                        props["width_m"] = s.width_m
                    else:
                        continue
                    feats.append({"type": "Feature", "geometry": geom, "properties": props})
                self._geo = {"type": "FeatureCollection", "features": feats}
            return self._geo

    def outlines(self) -> dict:
        """District and village outlines for a map with no basemap: the hull of each PPK's (and
        each PPS's) places, widened by a few kilometres. Not administrative borders: a shape
        that puts the places in context so the map is never blank."""
        with self._lock:
            if self._outlines is None:
                groups: dict[tuple[str, str], list[tuple[float, float]]] = {}
                for p in self.places.values():
                    if not isinstance(p.shape, Circle):
                        continue
                    for c in self.chain(p.code):
                        k = self.places[c].kind
                        if k in (PPK, PPS):
                            groups.setdefault((k, c), []).append((p.shape.lon, p.shape.lat))
                feats = []
                for (k, code), pts in sorted(groups.items()):
                    widen = 0.03 if k == PPK else 0.008  # degrees: ~3.3 km around a district, ~0.9 km a village
                    geom = shapely.simplify(MultiPoint(pts).convex_hull.buffer(widen, quad_segs=4), widen / 4)
                    feats.append({"type": "Feature", "geometry": mapping(geom),
                                  "properties": {"kind": "district" if k == PPK else "village", "code": code,
                                                 "name": self.places[code].name}})
                self._outlines = {"type": "FeatureCollection", "features": feats}
            return self._outlines


_book: PlaceBook | None = None
_book_lock = threading.Lock()


def place_book(conn: sqlite3.Connection) -> PlaceBook:
    """The places of the database, reloaded when an import changed them."""
    global _book
    places_io.ensure_schema(conn)
    sig = tuple(conn.execute("SELECT COUNT(*), COALESCE(MAX(rowid), 0), COALESCE(SUM(length(body)), 0) FROM places").fetchone())
    sig = (str(conn.execute("PRAGMA database_list").fetchone()[2]),) + sig
    with _book_lock:
        if _book is None or _book.signature != sig:
            _book = PlaceBook({p.code: p for p in places_io.load(conn)}, sig)
        return _book


def _latest_states(conn: sqlite3.Connection) -> dict[int, dict]:
    if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'judge_frames'").fetchone():
        return {}
    rows = conn.execute(
        "SELECT f.device, f.state FROM judge_frames f JOIN (SELECT device, MAX(counter) AS c FROM judge_frames "
        "WHERE state IS NOT NULL GROUP BY device) m ON f.device = m.device AND f.counter = m.c").fetchall()
    return {d: json.loads(s) for d, s in rows if s}


def _reached_own_tps(conn: sqlite3.Connection) -> set[str]:
    if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'judge_findings'").fetchone():
        return set()
    return {b for (b,) in conn.execute(
        "SELECT DISTINCT b.box_id FROM judge_findings f JOIN judge_devices d ON d.device = f.device "
        "JOIN boxes b ON b.box_id = d.box WHERE f.kind = 'arrived' AND f.place = b.tps")}


def _alerting(conn: sqlite3.Connection) -> dict[str, tuple[str, str]]:
    """box -> (kind, severity) of its most severe active critical or high alert."""
    if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'alerts'").fetchone():
        return {}
    out: dict[str, tuple[str, str]] = {}
    for box, kind, sev in conn.execute(
            "SELECT box, kind, severity FROM alerts WHERE state IN ('open', 'acknowledged') "
            "AND severity IN ('critical', 'high') AND box IS NOT NULL ORDER BY severity = 'critical', raised_at"):
        out[box] = (kind, sev)  # critical rows come last and win
    return out


def boxes(conn: sqlite3.Connection, book: PlaceBook, only: set[str] | None = None) -> list[dict]:
    """Every paired box (or those in `only`): last verified position, custody state, place, district."""
    states = _latest_states(conn)
    back = _reached_own_tps(conn)
    alerting = _alerting(conn)
    out = []
    for box, tps, dev, lat, lon, fix_t, seen, batt in conn.execute(
            "SELECT b.box_id, b.tps, b.device_id, s.last_lat, s.last_lon, s.last_fix_time, s.last_seen_at, "
            "s.last_battery_mv FROM boxes b LEFT JOIN device_state s ON s.device_id = b.device_id ORDER BY b.box_id"):
        if only is not None and box not in only:
            continue
        st = states.get(dev) if dev is not None else None
        inside = sorted(c for c, v in (st or {}).get("places", {}).items() if v.get("ph") != "pin")
        where = next((c for c in inside if c in book.places and book.places[c].kind in _KIND_STATE), None)
        if lat is None or lon is None:
            state = "unheard"
        elif where is not None:
            state = _KIND_STATE[book.places[where].kind]
        else:
            state = "returning" if box in back else "transit"
        alert = alerting.get(box)
        if alert is not None:
            state = "alert"
        out.append({"box": box, "tps": tps, "district": book.district(tps), "device": f"{dev:06x}" if dev is not None else None,
                    "lat": lat, "lon": lon, "fix_t": fix_t, "seen": seen, "battery_mv": batt, "state": state,
                    "place": where, "alert": alert[0] if alert else None})
    return out
