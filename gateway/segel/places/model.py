"""Places of an election: what they are, their shapes in metres, and how they are checked.

Kinds follow the custody hierarchy: a TPS belongs to a PPS, a PPS to a PPK, a PPK to a KPU
warehouse. Free zones (a depot, a river crossing) and corridors (roads, sea lanes between places)
may name a parent or not. Shapes are given as users think of them: a circle is a point and a radius
in metres, a corridor is a line and a width in metres; hysteresis margins are metres too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Union

WAREHOUSE, PPK, PPS, TPS, ZONE, CORRIDOR = "warehouse", "ppk", "pps", "tps", "zone", "corridor"
KINDS = (WAREHOUSE, PPK, PPS, TPS, ZONE, CORRIDOR)
# The kind a place's parent must have (None: any kind, or no parent).
PARENT_KIND: dict[str, str | None] = {TPS: PPS, PPS: PPK, PPK: WAREHOUSE, WAREHOUSE: None, ZONE: None, CORRIDOR: None}

# Defaults chosen for consumer GNSS at HDOP ~1-2 (typical scatter 5-15 m): a fence edge crossed by
# jitter alone never goes beyond the margin, and dwell makes a drive-by through a TPS no visit.
DEFAULT_MARGIN_M = 30.0
DEFAULT_DWELL_S = 120.0


class PlaceError(ValueError):
    """A place definition that cannot be used; `where` says which file line or feature."""

    def __init__(self, where: str, field_name: str | None, reason: str) -> None:
        self.where = where
        self.field = field_name
        self.reason = reason
        msg = f"{where}: {reason}" if field_name is None else f"{where}: field {field_name}: {reason}"
        super().__init__(msg)


@dataclass(frozen=True)
class Circle:
    lat: float
    lon: float
    radius_m: float


@dataclass(frozen=True)
class Area:
    """A polygon; `ring` is the exterior ring as (lon, lat) pairs (GeoJSON/WKT order)."""

    ring: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Corridor:
    """A road or lane: a line of (lon, lat) pairs buffered to `width_m` (full width, metres)."""

    line: tuple[tuple[float, float], ...]
    width_m: float
    from_code: str | None = None
    to_code: str | None = None


Shape = Union[Circle, Area, Corridor]


@dataclass(frozen=True)
class Place:
    code: str
    kind: str
    name: str
    shape: Shape
    parent: str | None = None
    margin_m: float = DEFAULT_MARGIN_M
    dwell_s: float = DEFAULT_DWELL_S
    extra: dict[str, str] = field(default_factory=dict, compare=False)

    def to_json(self) -> dict:
        s = self.shape
        shape: dict
        if isinstance(s, Circle):
            shape = {"type": "circle", "lat": s.lat, "lon": s.lon, "radius_m": s.radius_m}
        elif isinstance(s, Area):
            shape = {"type": "polygon", "ring": [list(p) for p in s.ring]}
        else:
            shape = {"type": "corridor", "line": [list(p) for p in s.line], "width_m": s.width_m,
                     "from": s.from_code, "to": s.to_code}
        return {"code": self.code, "kind": self.kind, "name": self.name, "parent": self.parent,
                "margin_m": self.margin_m, "dwell_s": self.dwell_s, "shape": shape}

    @classmethod
    def from_json(cls, d: dict) -> Place:
        sh = d["shape"]
        shape: Shape
        if sh["type"] == "circle":
            shape = Circle(sh["lat"], sh["lon"], sh["radius_m"])
        elif sh["type"] == "polygon":
            shape = Area(tuple((float(x), float(y)) for x, y in sh["ring"]))
        else:
            shape = Corridor(tuple((float(x), float(y)) for x, y in sh["line"]), sh["width_m"], sh.get("from"), sh.get("to"))
        return cls(d["code"], d["kind"], d["name"], shape, d.get("parent"), d["margin_m"], d["dwell_s"])


def _check_lonlat(where: str, fld: str, lon: float, lat: float) -> None:
    if not (math.isfinite(lat) and -90 <= lat <= 90):
        raise PlaceError(where, fld, f"latitude {lat} is outside -90..90 (coordinates are lon, lat in WKT/GeoJSON)")
    if not (math.isfinite(lon) and -180 <= lon <= 180):
        raise PlaceError(where, fld, f"longitude {lon} is outside -180..180")


def validate(place: Place, where: str) -> None:
    """Checks one place on its own (not its parent); raises PlaceError naming the field."""
    if not place.code or any(c.isspace() for c in place.code) or not place.code.isprintable():
        raise PlaceError(where, "code", f"{place.code!r} is empty or contains spaces or control characters")
    if place.kind not in KINDS:
        raise PlaceError(where, "kind", f"{place.kind!r} is not one of {', '.join(KINDS)}")
    if not (math.isfinite(place.margin_m) and 0 <= place.margin_m <= 5000):
        raise PlaceError(where, "margin_m", f"{place.margin_m} must be 0..5000 metres")
    if not (math.isfinite(place.dwell_s) and 0 <= place.dwell_s <= 86400):
        raise PlaceError(where, "dwell_s", f"{place.dwell_s} must be 0..86400 seconds")
    s = place.shape
    if isinstance(s, Circle):
        _check_lonlat(where, "lat/lon", s.lon, s.lat)
        if not (math.isfinite(s.radius_m) and 0 < s.radius_m <= 100_000):
            raise PlaceError(where, "radius_m", f"{s.radius_m} must be more than 0 and at most 100000 metres")
        if place.kind == CORRIDOR:
            raise PlaceError(where, "kind", "a corridor is a line with a width, not a circle")
    elif isinstance(s, Area):
        if len(s.ring) < 4 or s.ring[0] != s.ring[-1]:
            raise PlaceError(where, "geometry", "a polygon ring needs at least 4 points and must end where it starts")
        for lon, lat in s.ring:
            _check_lonlat(where, "geometry", lon, lat)
        if place.kind == CORRIDOR:
            raise PlaceError(where, "kind", "a corridor is a line with a width, not a polygon")
    else:
        if place.kind != CORRIDOR:
            raise PlaceError(where, "kind", f"a line is only allowed for kind corridor, not {place.kind!r}")
        if len(s.line) < 2:
            raise PlaceError(where, "geometry", "a corridor line needs at least 2 points")
        for lon, lat in s.line:
            _check_lonlat(where, "geometry", lon, lat)
        if not (math.isfinite(s.width_m) and 0 < s.width_m <= 50_000):
            raise PlaceError(where, "width_m", f"{s.width_m} must be more than 0 and at most 50000 metres")


def check_hierarchy(places: dict[str, Place], where: dict[str, str]) -> None:
    """Every parent exists and has the kind the hierarchy needs; corridor ends exist. Raises the
    first problem; `hierarchy_errors` lists them all."""
    errors = hierarchy_errors(places, where)
    if errors:
        raise errors[0]


def hierarchy_errors(places: dict[str, Place], where: dict[str, str], failed: frozenset[str] = frozenset()) -> list[PlaceError]:
    """Every hierarchy problem at once. `failed`: codes whose own line has an error (reported
    there); a place naming one of them as parent is not blamed a second time."""
    out: list[PlaceError] = []
    for code, p in places.items():
        want = PARENT_KIND[p.kind]
        at = where.get(code, code)
        if p.parent:
            par = places.get(p.parent)
            if par is None:
                if p.parent not in failed:
                    out.append(PlaceError(at, "parent", f"{p.parent!r} is not a known place"))
            elif want is not None and par.kind != want:
                out.append(PlaceError(at, "parent", f"a {p.kind}'s parent must be a {want}; {p.parent} is a {par.kind}"))
        elif p.kind in (TPS, PPS, PPK):
            out.append(PlaceError(at, "parent", f"a {p.kind} needs a parent ({want})"))
        if isinstance(p.shape, Corridor):
            for fld, end in (("from", p.shape.from_code), ("to", p.shape.to_code)):
                if end and end not in places and end not in failed:
                    out.append(PlaceError(at, fld, f"{end!r} is not a known place"))
    return out
