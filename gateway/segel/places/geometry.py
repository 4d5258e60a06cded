"""Metres on a degree grid: local tangent-plane conversions on the WGS84 ellipsoid.

Positions are degrees, but radii, widths and margins are metres. Each shape is converted in its
own local frame (equirectangular about the shape's mean latitude, with the ellipsoid's meridional
and prime-vertical radii of curvature there), buffered in metres with shapely, and converted back
to degrees. For places of a few km the error against the geodesic (pyproj.Geod) is far below a
metre (tests/rules/test_geometry.py checks it); for a corridor the width's relative error is the
relative change of cos(latitude) along it (0.2 % for a 1-degree span at 6 degrees latitude).
"""

from __future__ import annotations

import math

import numpy as np
import shapely  # type: ignore[import-untyped]
from shapely.geometry.base import BaseGeometry  # type: ignore[import-untyped]

from segel.places.model import Area, Circle, Corridor, Shape

A = 6378137.0  # WGS84 semi-major axis, m
F = 1 / 298.257223563
E2 = F * (2 - F)


def radii(lat_deg: float | np.ndarray) -> tuple:
    """(metres per degree of latitude, metres per degree of longitude) at a latitude."""
    phi = np.radians(lat_deg)
    s2 = np.sin(phi) ** 2
    m = A * (1 - E2) / (1 - E2 * s2) ** 1.5  # meridional radius of curvature
    n = A / np.sqrt(1 - E2 * s2)  # prime vertical radius of curvature
    return m * math.pi / 180, n * np.cos(phi) * math.pi / 180


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Local-plane distance in metres; for the short distances of fences (under ~20 km).
    The same formula as radii(), in plain floats (called once per candidate place)."""
    phi = math.radians((lat1 + lat2) / 2)
    s2 = math.sin(phi) ** 2
    w = 1 - E2 * s2
    my = A * (1 - E2) / w ** 1.5 * math.pi / 180
    mx = A / math.sqrt(w) * math.cos(phi) * math.pi / 180
    return math.hypot((lat2 - lat1) * my, (lon2 - lon1) * mx)


def _to_local(coords: np.ndarray, lat0: float, lon0: float) -> np.ndarray:
    my, mx = radii(lat0)
    return np.column_stack(((coords[:, 0] - lon0) * mx, (coords[:, 1] - lat0) * my))


def _from_local(geom: BaseGeometry, lat0: float, lon0: float) -> BaseGeometry:
    my, mx = radii(lat0)
    return shapely.transform(geom, lambda xy: np.column_stack((xy[:, 0] / mx + lon0, xy[:, 1] / my + lat0)))


def circle_envelope(lat: np.ndarray, lon: np.ndarray, radius_m: np.ndarray) -> np.ndarray:
    """Vectorised: shapely boxes (degrees) that hold circles of radius_m about (lat, lon)."""
    my, mx = radii(lat)
    dlat, dlon = radius_m / my, radius_m / mx
    return shapely.box(lon - dlon, lat - dlat, lon + dlon, lat + dlat)


def buffered(shape: Shape, extra_m: float = 0.0, quad_segs: int = 16) -> BaseGeometry:
    """The shape in degrees, grown by extra_m metres (the hysteresis halo when extra_m > 0)."""
    if isinstance(shape, Circle):
        p = shapely.Point(0.0, 0.0).buffer(shape.radius_m + extra_m, quad_segs=quad_segs)
        return _from_local(p, shape.lat, shape.lon)
    if isinstance(shape, Area):
        coords = np.asarray(shape.ring, dtype=float)
        lat0, lon0 = float(coords[:, 1].mean()), float(coords[:, 0].mean())
        local = shapely.Polygon(_to_local(coords, lat0, lon0))
        if not local.is_valid:
            local = shapely.make_valid(local)
        if extra_m:
            local = local.buffer(extra_m, quad_segs=quad_segs)
        return _from_local(local, lat0, lon0)
    if isinstance(shape, Corridor):
        coords = np.asarray(shape.line, dtype=float)
        lat0, lon0 = float(coords[:, 1].mean()), float(coords[:, 0].mean())
        local = shapely.LineString(_to_local(coords, lat0, lon0)).buffer(shape.width_m / 2 + extra_m, quad_segs=quad_segs)
        return _from_local(local, lat0, lon0)
    raise TypeError(f"not a shape: {shape!r}")
