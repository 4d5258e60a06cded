"""The place index's cell grid (one-point lookups) answers exactly what its tree answers."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from segel.places import io
from segel.places.index import CELL_DEG, PlaceIndex

from tests.rules.world import offset, places

SCN = Path(__file__).resolve().parents[2] / "scenarios" / "kutai-timur"
KT = io.parse_file(SCN / "places.csv")[0] + io.parse_file(SCN / "corridors.geojson")[0]
KT_INDEX = PlaceIndex(KT)
WORLD_INDEX = PlaceIndex(places())


def _same(index: PlaceIndex, lat: float, lon: float) -> None:
    a = index.lookup(lat, lon)
    assert a == index.lookup_tree(lat, lon)
    assert a == index.lookup_many(np.array([lat]), np.array([lon]))[0]


@settings(max_examples=400, deadline=None)
@given(st.integers(0, len(KT) - 1), st.floats(0, 360), st.floats(0, 2.0))
def test_near_every_kutai_timur_fence(i, az, k):
    """Points around a place's edge (0 to 2 radii or half-widths out) and on its roads."""
    p = KT[i]
    shape = p.shape
    if hasattr(shape, "radius_m"):
        lat, lon = offset((shape.lat, shape.lon), az, k * (shape.radius_m + p.margin_m))
    else:
        pts = shape.line if hasattr(shape, "line") else shape.ring
        a, b = pts[int(k * 1000) % (len(pts) - 1)], pts[int(k * 1000) % (len(pts) - 1) + 1]
        f = (k % 1.0)
        lat, lon = offset((a[1] + (b[1] - a[1]) * f, a[0] + (b[0] - a[0]) * f), az, k * 500)
    _same(KT_INDEX, lat, lon)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 8), st.floats(0, 360), st.floats(0, 400))
def test_near_the_small_world(i, az, d):
    centres = [(0.5, 117.55), (0.6, 117.55), (0.65, 117.55), (0.66, 117.55), (0.66, 117.56)]
    lat, lon = offset(centres[i % len(centres)], az, d)
    _same(WORLD_INDEX, lat, lon)


def test_points_on_cell_edges():
    """A point exactly on a cell's edge or corner belongs to one cell and gets the tree's answer."""
    for p in KT[:40]:
        s = p.shape
        base = (s.lat, s.lon) if hasattr(s, "lat") else (s.line[0][1], s.line[0][0])
        i, j = math.floor(base[0] / CELL_DEG), math.floor(base[1] / CELL_DEG)
        for di in (0, 1):
            for dj in (0, 1):
                _same(KT_INDEX, (i + di) * CELL_DEG, (j + dj) * CELL_DEG)
                _same(KT_INDEX, (i + di) * CELL_DEG, base[1])
