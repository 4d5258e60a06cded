"""A small regency for the national tests: Kutai Timur's places and calendar, a few boxes, the real
pipeline and custody judge, and trackers whose frames are encoded by segel.protocol.

`Regency.drive(box, hours)` sends one box's tracker along its plan's first legs (warehouse, its
PPK, its PPS) with a fix every 10 minutes, so the judge records arrivals, exits and positions.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from segel import protocol, store
from segel.custody.judge import build_judge
from segel.edge import topics
from segel.edge.payloads import uplink
from segel.ids import device_hex
from segel.ingest.pipeline import Pipeline
from segel.places import io as places_io
from segel.places.model import Circle
from segel.registry import KeyRing, Registry

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "scenarios" / "kutai-timur"
SECRET = bytes(range(7, 39))
F = protocol.Flag


@dataclass
class Tracker:
    device: int
    box: str
    counter: int = 0


@dataclass
class Regency:
    db: Path
    conn: sqlite3.Connection
    pipeline: Pipeline
    trackers: dict[str, Tracker]
    plans: dict
    places: dict
    sent: list[bytes] = field(default_factory=list)

    def send(self, box: str, dev_time: float, body: protocol.Body, rx_delay: float = 5.0) -> None:
        t = self.trackers[box]
        t.counter += 1
        keys = protocol.DeviceKeys.from_device_key(protocol.derive_device_key(SECRET, t.device, 0))
        fr = protocol.encode(keys, t.device, t.counter, int(dev_time), body)
        self.pipeline.process(uplink(dev_time + rx_delay, topics.tracker_up(device_hex(t.device)), fr, None))

    def at(self, code: str) -> tuple[float, float]:
        s = self.places[code].shape
        assert isinstance(s, Circle)
        return s.lat, s.lon

    def drive(self, box: str, legs: int = 2, step_s: float = 600.0) -> float:
        """Fixes along the first `legs` legs of the box's plan (straight lines at ~40 km/h), parked
        fixes until each next leg departs. Returns the last device time."""
        plan = self.plans[box]
        lat, lon = self.at(plan.legs[0].from_code)
        now = plan.legs[0].window.start - 3600
        for leg in plan.legs[:legs]:
            while now < leg.window.start:
                self.send(box, now, protocol.Position(lat, lon, F.FIX, 0.9, 0))
                now += step_s
            b = self.at(leg.to_code)
            steps = 12
            for s in range(1, steps + 1):
                f = s / steps
                self.send(box, now, protocol.Position(lat + (b[0] - lat) * f, lon + (b[1] - lon) * f, F.FIX, 0.9, 40))
                now += step_s
            lat, lon = b
            for _ in range(4):
                self.send(box, now, protocol.Position(lat, lon, F.FIX, 0.9, 0))
                now += step_s
        return now


def make(tmp: Path, boxes: int = 2, install=None) -> Regency:  # type: ignore[no-untyped-def]
    """A regency database with `boxes` boxes of one district; `install(conn)` runs before pairing
    when given (the national capture sees the pairings as they happen)."""
    db = tmp / "segel.db"
    conn = store.connect(db)
    places_io.import_files(conn, [SCENARIO / "places.csv", SCENARIO / "corridors.geojson"])
    if install is not None:
        install(conn)
    reg = Registry(conn)
    places = {p.code: p for p in places_io.load(conn)}
    tps = sorted(c for c, p in places.items() if p.kind == "tps" and c.startswith("64.08.04"))[:boxes]
    trackers = {}
    for i, t in enumerate(tps):
        box = f"{t}-GUB"
        reg.add_device(0x000301 + i)
        reg.pair(box, 0x000301 + i, tps=t)
        trackers[box] = Tracker(0x000301 + i, box)
    judge = build_judge(conn, calendar=SCENARIO / "calendar.toml", settings={"report_interval_s": 600})
    pipeline = Pipeline(conn, KeyRing(SECRET, reg), judges=[judge])
    return Regency(db, conn, pipeline, trackers, judge.plans, places)
