"""Plausibility of imported places: inside the configured region, near their parent.

A TPS whose longitude lost its sign (-117.5 instead of 117.5) or that sits 550 km from its PPS
parses fine and would be imported silently; the custody rules would then call every box at it
"not at its TPS". These checks turn such places into warnings with the place's line, and
`segel places import --strict` refuses them. The region is a bounding box (west, south, east,
north in degrees; `custody.region`, default Indonesia); the distances are per kind of place.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from segel.places.model import PPK, PPS, TPS, Area, Circle, Place, PlaceError

# Indonesia's bounding box with a margin (Sabang to Merauke, Miangas to Rote): west, south, east, north
DEFAULT_REGION = "94.7,-11.2,141.1,6.3"
# How far a place may be from its parent before it is called implausible, km (Kutai Timur, one of
# the largest regencies: TPS <= 2.5 km from their PPS, PPS <= 60 km from their PPK, PPK <= 121 km
# from the warehouse)
MAX_PARENT_KM: dict[str, float] = {TPS: 50.0, PPS: 150.0, PPK: 500.0}
EARTH_RADIUS_KM = 6371.0088


@dataclass(frozen=True)
class Region:
    west: float
    south: float
    east: float
    north: float

    @classmethod
    def parse(cls, text: str) -> Region:
        """'west,south,east,north' in degrees; ValueError saying what is wrong."""
        parts = [p.strip() for p in text.split(",")]
        try:
            w, s, e, n = (float(p) for p in parts)
        except ValueError:
            raise ValueError(f"region {text!r} must be four numbers: west,south,east,north (degrees), "
                             f"e.g. {DEFAULT_REGION}") from None
        if not all(math.isfinite(v) for v in (w, s, e, n)) or not (-180 <= w < e <= 180 and -90 <= s < n <= 90):
            raise ValueError(f"region {text!r}: need -180 <= west < east <= 180 and -90 <= south < north <= 90")
        return cls(w, s, e, n)

    def contains(self, lat: float, lon: float) -> bool:
        return self.south <= lat <= self.north and self.west <= lon <= self.east

    def __str__(self) -> str:
        return f"{self.west:g}..{self.east:g} E, {self.south:g}..{self.north:g} N"


def centre(p: Place) -> tuple[float, float] | None:
    """(lat, lon) of a circle's centre or a polygon's vertex mean; None for a corridor."""
    s = p.shape
    if isinstance(s, Circle):
        return s.lat, s.lon
    if isinstance(s, Area) and s.ring:
        pts = s.ring[:-1] or s.ring
        return sum(lat for _, lat in pts) / len(pts), sum(lon for lon, _ in pts) / len(pts)
    return None


def distance_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    la1, lo1, la2, lo2 = map(math.radians, (*a, *b))
    h = math.sin((la2 - la1) / 2) ** 2 + math.cos(la1) * math.cos(la2) * math.sin((lo2 - lo1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def plausibility(new: list[Place], where_of: dict[str, str], known: dict[str, Place], region: Region | None,
                 max_parent_km: dict[str, float] | None = None) -> list[PlaceError]:
    """Warnings for `new` places: outside `region`, or farther from their parent (in `known`,
    which includes `new`) than `max_parent_km` allows for their kind."""
    limits = MAX_PARENT_KM if max_parent_km is None else max_parent_km
    out: list[PlaceError] = []
    for p in new:
        at = where_of.get(p.code, p.code)
        c = centre(p)
        if c is None:
            continue
        lat, lon = c
        if region is not None and not region.contains(lat, lon):
            hint = ""
            if region.contains(lat, -lon):
                hint = f" (a lost minus sign? longitude {-lon:g} would be inside)"
            elif region.contains(-lat, lon):
                hint = f" (a lost minus sign? latitude {-lat:g} would be inside)"
            elif region.contains(lon, lat):
                hint = " (latitude and longitude swapped?)"
            out.append(PlaceError(at, "lat/lon", f"{lat:g}, {lon:g} is outside the region {region}{hint}"))
            continue
        limit = limits.get(p.kind)
        par = known.get(p.parent) if p.parent else None
        pc = centre(par) if par is not None else None
        if limit is not None and pc is not None:
            d = distance_km(c, pc)
            if d > limit:
                out.append(PlaceError(at, "lat/lon", f"{d:.0f} km from its parent {par.code} ({par.kind}); a "  # type: ignore[union-attr]
                                      f"{p.kind} is expected within {limit:g} km (--max-parent-km)"))
    return out
