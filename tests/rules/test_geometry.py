"""Metric shapes on the degree grid, checked against the geodesic (pyproj.Geod)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pyproj import Geod
from segel.places import Area, Circle, Corridor, Place, PlaceIndex
from segel.places.geometry import buffered, distance_m

GEOD = Geod(ellps="WGS84")


@pytest.mark.parametrize("lat", [0.5, -6.2, 5.5, 45.0])
def test_local_distance_matches_geodesic(lat):
    for az in (0, 37, 90, 155, 270):
        for d in (10.0, 60.0, 250.0, 2000.0):
            lon2, lat2, _ = GEOD.fwd(117.0, lat, az, d)
            assert distance_m(lat, 117.0, lat2, lon2) == pytest.approx(d, rel=2e-4, abs=0.01)


@pytest.mark.parametrize("lat", [0.5, -6.2])
def test_circle_edge_is_at_its_radius(lat):
    idx = PlaceIndex([Place("T", "zone", "t", Circle(lat, 117.0, 60.0), margin_m=30.0)])
    for az in range(0, 360, 15):
        inside = GEOD.fwd(117.0, lat, az, 59.5)
        halo = GEOD.fwd(117.0, lat, az, 60.5)
        beyond = GEOD.fwd(117.0, lat, az, 90.5)
        assert idx.lookup(inside[1], inside[0]).core == {"T"}
        assert idx.lookup(halo[1], halo[0]).core == set() and idx.lookup(halo[1], halo[0]).halo == {"T"}
        assert idx.lookup(beyond[1], beyond[0]).halo == set()


def test_corridor_width_in_metres():
    # A 40 km road running north-east near Sangatta; 200 m wide = 100 m either side.
    a = (117.40, 0.40)
    lon_b, lat_b, _ = GEOD.fwd(a[0], a[1], 45, 40_000)
    road = Corridor((a, (lon_b, lat_b)), 200.0)
    idx = PlaceIndex([Place("R", "corridor", "road", road, margin_m=50.0)])
    for frac in (0.1, 0.5, 0.9):
        lon_m, lat_m, _ = GEOD.fwd(a[0], a[1], 45, 40_000 * frac)
        for side in (135, 315):  # perpendicular to the road
            near = GEOD.fwd(lon_m, lat_m, side, 99.0)
            halo = GEOD.fwd(lon_m, lat_m, side, 101.0)
            far = GEOD.fwd(lon_m, lat_m, side, 151.0)
            assert idx.lookup(near[1], near[0]).core == {"R"}
            assert idx.lookup(halo[1], halo[0]).core == set() and idx.lookup(halo[1], halo[0]).halo == {"R"}
            assert idx.lookup(far[1], far[0]).halo == set()


def test_polygon_margin_in_metres():
    ring = ((117.50, 0.50), (117.51, 0.50), (117.51, 0.51), (117.50, 0.51), (117.50, 0.50))
    halo = buffered(Area(ring), 40.0)
    south_edge = GEOD.fwd(117.505, 0.50, 180, 39.0)
    outside = GEOD.fwd(117.505, 0.50, 180, 41.0)
    from shapely import intersects_xy
    assert intersects_xy(halo, south_edge[0], south_edge[1])
    assert not intersects_xy(halo, outside[0], outside[1])


def test_bulk_and_single_lookups_agree():
    rng = np.random.default_rng(7)
    places = [Place(f"P{i}", "zone", "", Circle(float(la), float(lo), float(r)))
              for i, (la, lo, r) in enumerate(zip(rng.uniform(0, 0.05, 300), rng.uniform(117, 117.05, 300),
                                                 rng.uniform(20, 200, 300)))]
    idx = PlaceIndex(places)
    lats, lons = rng.uniform(0, 0.05, 2000), rng.uniform(117, 117.05, 2000)
    bulk = idx.lookup_many(lats, lons)
    assert [idx.lookup(float(a), float(b)) for a, b in zip(lats, lons)] == bulk
    # and both agree with a brute-force distance test
    for (la, lo), got in zip(zip(lats[:300], lons[:300]), bulk[:300]):
        want = {p.code for p in places if distance_m(p.shape.lat, p.shape.lon, la, lo) <= p.shape.radius_m}
        assert got.core == want
    assert any(b.core for b in bulk) and not math.isnan(lats[0])
