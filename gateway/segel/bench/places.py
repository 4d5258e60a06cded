"""`segel bench places`: lookup rate of the place index as places grow, against brute force, and
the custody judge's cost per frame at that size. Figures are printed, never asserted."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np

from segel.places import geometry
from segel.places.index import PlaceIndex
from segel.places.model import Circle, Place

# Indonesia's extent, roughly: where 820,000 TPS would be.
LAT, LON = (-10.0, 5.5), (95.5, 140.5)


@dataclass
class BenchRow:
    places: int
    build_s: float
    lookups_per_s: float          # one lookup() per call, as the judge does per frame
    bulk_lookups_per_s: float     # lookup_many() over all query points at once
    brute_lookups_per_s: float    # baseline: vectorised distance to every place, per point
    speedup: float                # lookups_per_s / brute_lookups_per_s
    hit_ratio: float              # share of query points inside at least one place
    judge_us_per_frame: float | None = None  # custody judge, one position frame, SQLite included

    def as_dict(self) -> dict:
        return asdict(self)


def random_places(n: int, seed: int = 1) -> list[Place]:
    rng = np.random.default_rng(seed)
    lat = rng.uniform(*LAT, n)
    lon = rng.uniform(*LON, n)
    r = rng.uniform(30, 120, n)
    return [Place(f"TPS-{i:07d}", "zone", "", Circle(float(a), float(b), float(c)))
            for i, (a, b, c) in enumerate(zip(lat.tolist(), lon.tolist(), r.tolist()))]


def query_points(places: list[Place], n: int, seed: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Half near a place (within 1.5 radii: hits and near misses), half anywhere."""
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(places), n // 2)
    c = [places[i].shape for i in pick.tolist()]
    lat0 = np.array([s.lat for s in c])  # type: ignore[union-attr]
    lon0 = np.array([s.lon for s in c])  # type: ignore[union-attr]
    rad = np.array([s.radius_m for s in c]) * rng.uniform(0, 1.5, len(c))  # type: ignore[union-attr]
    az = rng.uniform(0, 2 * np.pi, len(c))
    my, mx = geometry.radii(lat0)
    lat = np.concatenate([lat0 + rad * np.cos(az) / my, rng.uniform(*LAT, n - n // 2)])
    lon = np.concatenate([lon0 + rad * np.sin(az) / mx, rng.uniform(*LON, n - n // 2)])
    return lat, lon


class BruteForce:
    """The baseline: every place's distance to the point, vectorised with numpy."""

    def __init__(self, places: list[Place]) -> None:
        self.codes = np.array([p.code for p in places])
        self.lat = np.array([p.shape.lat for p in places])  # type: ignore[union-attr]
        self.lon = np.array([p.shape.lon for p in places])  # type: ignore[union-attr]
        self.r = np.array([p.shape.radius_m for p in places])  # type: ignore[union-attr]

    def lookup(self, lat: float, lon: float) -> frozenset[str]:
        my, mx = geometry.radii((self.lat + lat) / 2)
        d = np.hypot((self.lat - lat) * my, (self.lon - lon) * mx)
        return frozenset(self.codes[d <= self.r].tolist())


def judge_cost(index: PlaceIndex, frames: int = 2000) -> float:
    """Microseconds per accepted position frame through the custody judge (SQLite in memory)."""
    from segel import store
    from segel.custody.judge import CustodyJudge
    from segel.custody.plan import Leg, Plan, Window
    from segel.messages import Accepted
    from segel.protocol import Flag, Frame, FrameType, Header, Position

    conn = store.connect(":memory:")
    codes = list(index.places)[:4]
    plan = Plan("BOX", codes[-1], tuple(Leg(f"l{i}", a, b, Window(0, 2e9)) for i, (a, b) in
                                          enumerate(zip(codes, codes[1:]))), ())
    judge = CustodyJudge(conn, index, {"BOX": plan})
    lat, lon = query_points(list(index.places.values()), frames, seed=3)
    recs = [Accepted(1, c + 1, 1_700_000_000 + 60 * c, 1_700_000_005.0 + 60 * c,
                     Frame(Header(1, int(FrameType.POSITION), 1, c + 1, 1_700_000_000 + 60 * c),
                           Position(float(a), float(b), Flag.FIX, 1.0, 30)), None, "BOX")
            for c, (a, b) in enumerate(zip(lat.tolist(), lon.tolist()))]
    t0 = time.perf_counter()
    for r in recs:
        conn.execute("BEGIN")
        judge.on_accepted(r, conn)
        conn.execute("COMMIT")
    dt = time.perf_counter() - t0
    conn.close()
    return dt / frames * 1e6


def run(n: int, lookups: int = 20_000, brute_lookups: int = 200, judge_frames: int = 2000) -> BenchRow:
    places = random_places(n)
    t0 = time.perf_counter()
    index = PlaceIndex(places)
    build = time.perf_counter() - t0
    lat, lon = query_points(places, lookups)
    la, lo = lat.tolist(), lon.tolist()
    t0 = time.perf_counter()
    hits = sum(1 for a, b in zip(la, lo) if index.lookup(a, b).core)
    single = lookups / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    index.lookup_many(lat, lon)
    bulk = lookups / (time.perf_counter() - t0)
    brute = BruteForce(places)
    k = min(brute_lookups, lookups)
    t0 = time.perf_counter()
    for a, b in zip(la[:k], lo[:k]):
        brute.lookup(a, b)
    brute_rate = k / (time.perf_counter() - t0)
    # the index and the baseline agree (a benchmark of a wrong answer is worth nothing)
    for a, b in zip(la[:k], lo[:k]):
        if index.lookup(a, b).core != brute.lookup(a, b):
            raise AssertionError(f"index and brute force disagree at {a}, {b}")
    row = BenchRow(n, build, single, bulk, brute_rate, single / brute_rate, hits / lookups)
    if judge_frames:
        row.judge_us_per_frame = judge_cost(index, judge_frames)
    return row
