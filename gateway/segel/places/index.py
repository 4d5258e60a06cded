"""The spatial index: which places hold a position, with their hysteresis halos.

One shapely STRtree holds, per place, the region where the place can matter at all: its halo (the
shape grown by its hysteresis margin). For circles the tree holds the halo's envelope (a box of 5
vertices instead of a 64-gon: 500,000 TPS stay small in memory) and the exact test is a metric
distance; for polygons and corridors the tree holds the halo polygon itself. A position is a point
*input* and the fences are the *tree*, so the query predicate is "within" (point within fence):
STRtree.query tests predicate(input, tree_geometry), and "contains" would find nothing.

One-point lookups (the judge's, once per position frame) go through a grid of small cells filled
on first use: per cell, the places whose tree geometry touches it, and for each polygon whether
the cell lies wholly inside its halo or core (then no point test is needed). A tracker on a road
asks about the same few cells again and again, so most lookups cost a dict hit and a distance per
nearby circle instead of a tree query and a point-in-polygon test per corridor (about 150 µs).
The answers are exactly the tree's: the same envelope and distance tests for circles, GEOS's own
predicates for polygons (`lookup_many` keeps the tree path; tests compare both).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import math

import numpy as np
import shapely  # type: ignore[import-untyped]

from segel.places import geometry
from segel.places.model import Circle, Place


@dataclass(frozen=True)
class Lookup:
    """Places whose shape holds the point (`core`) and whose halo holds it (`halo` ⊇ core)."""

    core: frozenset[str]
    halo: frozenset[str]

    def halo_only(self) -> frozenset[str]:
        return self.halo - self.core


EMPTY = Lookup(frozenset(), frozenset())

CELL_DEG = 0.002  # ~220 m: most cells on a 1.5 km wide corridor lie wholly inside it
CELL_PAD = 1e-9  # cells a hair larger than the grid, so a point on a cell's edge is inside its cell
MAX_CELLS = 200_000  # the cell cache is dropped and refilled beyond this (bounded memory)
# A cell's entries: (circle, index) for circles; (polygon, index, in_halo, in_core) for polygons,
# the flags saying the whole cell is inside the halo / the core.
_CIRCLE, _POLY = 0, 1


class PlaceIndex:
    def __init__(self, places: Iterable[Place]) -> None:
        self.places: dict[str, Place] = {}
        for p in places:
            self.places[p.code] = p
        items = list(self.places.values())
        self._codes = [p.code for p in items]
        circ = [i for i, p in enumerate(items) if isinstance(p.shape, Circle)]
        other = [i for i, p in enumerate(items) if not isinstance(p.shape, Circle)]
        n = len(items)
        self._is_circle = np.zeros(n, dtype=bool)
        self._lat = np.zeros(n)
        self._lon = np.zeros(n)
        self._r = np.zeros(n)
        self._rm = np.zeros(n)
        geoms = np.empty(n, dtype=object)
        if circ:
            ci = np.asarray(circ)
            shapes = [items[i].shape for i in circ]
            self._is_circle[ci] = True
            self._lat[ci] = [s.lat for s in shapes]  # type: ignore[union-attr]
            self._lon[ci] = [s.lon for s in shapes]  # type: ignore[union-attr]
            self._r[ci] = [s.radius_m for s in shapes]  # type: ignore[union-attr]
            self._rm[ci] = self._r[ci] + np.asarray([items[i].margin_m for i in circ])
            # A hair wider than the halo, so float rounding at the envelope never hides a hit.
            geoms[ci] = geometry.circle_envelope(self._lat[ci], self._lon[ci], self._rm[ci] * 1.0001 + 0.01)
        self._core: dict[int, shapely.Geometry] = {}
        for i in other:
            p = items[i]
            core = geometry.buffered(p.shape)
            halo = geometry.buffered(p.shape, p.margin_m) if p.margin_m else core
            shapely.prepare(core)
            self._core[i] = core
            geoms[i] = halo
        self._tree = shapely.STRtree(list(geoms))
        # Plain Python tuples for the one-point path (numpy scalar access costs more than the maths).
        self._circles: list[tuple[float, float, float, float] | None] = [
            (la, lo, r, rm) if c else None
            for c, la, lo, r, rm in zip(self._is_circle.tolist(), self._lat.tolist(), self._lon.tolist(),
                                        self._r.tolist(), self._rm.tolist())]
        self._geoms = geoms
        self._halo_prepared = False
        # circle envelopes' bounds: the tree's "within" is strict containment in the box
        self._env: dict[int, tuple[float, float, float, float]] = {}
        if circ:
            for i, b in zip(circ, shapely.bounds(geoms[np.asarray(circ)]).tolist()):
                self._env[i] = (b[0], b[1], b[2], b[3])
        self._cells: dict[tuple[int, int], tuple] = {}

    def __len__(self) -> int:
        return len(self._codes)

    def __contains__(self, code: str) -> bool:
        return code in self.places

    def get(self, code: str) -> Place | None:
        return self.places.get(code)

    def lookup(self, lat: float, lon: float) -> Lookup:
        """Places holding (lat, lon): enrichment only, no judgement (that is the rules' job)."""
        if not (math.isfinite(lat) and math.isfinite(lon)):
            return self.lookup_tree(lat, lon)
        key = (math.floor(lat / CELL_DEG), math.floor(lon / CELL_DEG))
        cell = self._cells.get(key)
        if cell is None:
            cell = self._fill(key)
        if not cell:
            return EMPTY
        core: list[str] = []
        halo: list[str] = []
        codes = self._codes
        for e in cell:
            i = e[1]
            if e[0] == _CIRCLE:
                x0, y0, x1, y1 = self._env[i]
                if not (x0 < lon < x1 and y0 < lat < y1):
                    continue
                clat, clon, r, rm = self._circles[i]  # type: ignore[misc]
                d = geometry.distance_m(clat, clon, lat, lon)
                if d <= rm:
                    halo.append(codes[i])
                    if d <= r:
                        core.append(codes[i])
            else:
                if not (e[2] or shapely.contains_xy(self._geoms[i], lon, lat)):
                    continue
                halo.append(codes[i])
                if e[3] or shapely.intersects_xy(self._core[i], lon, lat):
                    core.append(codes[i])
        if not halo:
            return EMPTY
        return Lookup(frozenset(core), frozenset(halo))

    def _fill(self, key: tuple[int, int]) -> tuple:
        """The entries of one grid cell, from one tree query with the cell's box."""
        if len(self._cells) >= MAX_CELLS:
            self._cells.clear()
        if not self._halo_prepared:
            for i in self._core:
                shapely.prepare(self._geoms[i])
            self._halo_prepared = True
        y0, x0 = key[0] * CELL_DEG - CELL_PAD, key[1] * CELL_DEG - CELL_PAD
        box = shapely.box(x0, y0, x0 + CELL_DEG + 2 * CELL_PAD, y0 + CELL_DEG + 2 * CELL_PAD)
        entries: list[tuple] = []
        for i in sorted(self._tree.query(box, predicate="intersects").tolist()):
            if self._circles[i] is not None:
                entries.append((_CIRCLE, i))
            else:
                entries.append((_POLY, i, bool(shapely.contains_properly(self._geoms[i], box)),
                                bool(shapely.covers(self._core[i], box))))
        cell = tuple(entries)
        self._cells[key] = cell
        return cell

    def lookup_tree(self, lat: float, lon: float) -> Lookup:
        """lookup() by a tree query for this one point (the path before the cell grid)."""
        hits = self._tree.query(shapely.Point(lon, lat), predicate="within")
        if len(hits) == 0:
            return EMPTY
        core: list[str] = []
        halo: list[str] = []
        circles = self._circles
        for i in hits.tolist():
            code = self._codes[i]
            c = circles[i]
            if c is not None:
                clat, clon, r, rm = c
                d = geometry.distance_m(clat, clon, lat, lon)
                if d <= rm:
                    halo.append(code)
                    if d <= r:
                        core.append(code)
            else:
                halo.append(code)
                if shapely.intersects_xy(self._core[i], lon, lat):
                    core.append(code)
        return Lookup(frozenset(core), frozenset(halo))

    def lookup_many(self, lats: np.ndarray, lons: np.ndarray) -> list[Lookup]:
        """The same as lookup() for many points, with one bulk tree query."""
        pts = shapely.points(np.asarray(lons, dtype=float), np.asarray(lats, dtype=float))
        pairs = self._tree.query(pts, predicate="within")
        out: list[tuple[list[str], list[str]]] = [([], []) for _ in range(len(pts))]
        if pairs.shape[1]:
            src, idx = pairs
            lat_p, lon_p = np.asarray(lats, dtype=float)[src], np.asarray(lons, dtype=float)[src]
            circ = self._is_circle[idx]
            my, mx = geometry.radii((lat_p + self._lat[idx]) / 2)
            d = np.hypot((lat_p - self._lat[idx]) * my, (lon_p - self._lon[idx]) * mx)
            for k, (s, i) in enumerate(zip(src.tolist(), idx.tolist())):
                core, halo = out[s]
                code = self._codes[i]
                if circ[k]:
                    if d[k] <= self._rm[i]:
                        halo.append(code)
                        if d[k] <= self._r[i]:
                            core.append(code)
                else:
                    halo.append(code)
                    if shapely.intersects_xy(self._core[i], float(lon_p[k]), float(lat_p[k])):
                        core.append(code)
        return [Lookup(frozenset(c), frozenset(h)) if h else EMPTY for c, h in out]
