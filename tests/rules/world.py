"""A small election world for the rules tests: one warehouse, PPK, PPS, two TPS, corridors, a
calendar in WITA, paired boxes, and a real Pipeline with the custody judge (real frames, real MACs)."""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from pyproj import Geod
from segel import protocol, store
from segel.custody import build_judge
from segel.custody.judge import CustodyJudge
from segel.edge.payloads import uplink
from segel.ingest.pipeline import Pipeline
from segel.places import Circle, Corridor, Place
from segel.protocol import Flag, Position, Seal, SealEvent, Status
from segel.registry import KeyRing, Registry

WITA = dt.timezone(dt.timedelta(hours=8))
GEOD = Geod(ellps="WGS84")
SECRET = bytes(range(32))

W = (0.500, 117.550)   # warehouse, r 250
K = (0.600, 117.550)   # PPK, r 150
S = (0.650, 117.550)   # PPS, r 100
T1 = (0.660, 117.550)  # the box's TPS, r 60
T2 = (0.660, 117.560)  # the neighbouring TPS, r 60


def places() -> list[Place]:
    def line(a: tuple[float, float], b: tuple[float, float]) -> tuple[tuple[float, float], ...]:
        return ((a[1], a[0]), (b[1], b[0]))
    return [
        Place("KPU-X", "warehouse", "Warehouse", Circle(*W, 250)),
        Place("K1", "ppk", "PPK 1", Circle(*K, 150), parent="KPU-X"),
        Place("S1", "pps", "PPS 1", Circle(*S, 100), parent="K1"),
        Place("T1", "tps", "TPS 001", Circle(*T1, 60), parent="S1"),
        Place("T2", "tps", "TPS 002", Circle(*T2, 60), parent="S1"),
        Place("R-WK", "corridor", "road W-K", Corridor(line(W, K), 400, "KPU-X", "K1"), margin_m=50),
        Place("R-KS", "corridor", "road K-S", Corridor(line(K, S), 300, "K1", "S1"), margin_m=50),
        Place("R-ST1", "corridor", "street S-T1", Corridor(line(S, T1), 200, "S1", "T1"), margin_m=50),
        Place("R-ST2", "corridor", "street S-T2", Corridor(line(S, T2), 200, "S1", "T2"), margin_m=50),
    ]


CALENDAR = """
name = "test election"
timezone = "WITA"
election_day = 2024-11-27
[legs.warehouse_to_ppk]
depart = 2024-11-23T06:00:00
arrive_by = 2024-11-23T23:00:00
[legs.ppk_to_pps]
depart = 2024-11-25T07:00:00
arrive_by = 2024-11-25T21:00:00
[legs.pps_to_tps]
depart = 2024-11-26T13:00:00
arrive_by = 2024-11-26T22:00:00
[seal.tps]
open = 2024-11-27T06:00:00
close = 2024-11-28T02:00:00
[seal.ppk]
open = 2024-11-28T08:00:00
close = 2024-12-03T23:00:00
[rules]
report_interval_s = 300
stop_minutes = 30
"""


def wita(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).replace(tzinfo=WITA).timestamp())


def offset(p: tuple[float, float], az: float, metres: float) -> tuple[float, float]:
    lon, lat, _ = GEOD.fwd(p[1], p[0], az, metres)
    return (lat, lon)


class Strict:
    """The judge as the pipeline sees it, but an exception is kept and re-raised by the test (the
    pipeline logs a failing judge and goes on, which would hide a bug here)."""

    def __init__(self, judge: CustodyJudge) -> None:
        self.judge = judge
        self.error: BaseException | None = None

    def __getattr__(self, name: str):  # on_accepted, on_rejected, on_tick
        fn = getattr(self.judge, name)

        def call(*a):
            try:
                return fn(*a)
            except BaseException as e:
                self.error = e
                raise
        return call

    def check(self) -> None:
        if self.error is not None:
            e, self.error = self.error, None
            raise e


@dataclass
class World:
    conn: sqlite3.Connection
    judge: CustodyJudge
    pipe: Pipeline
    strict: Strict
    counters: dict[int, int] = field(default_factory=dict)
    alerts: list[dict] = field(default_factory=list)

    @classmethod
    def make(cls, tmp: Path, boxes: dict[str, tuple[int, str]] | None = None, settings: dict | None = None) -> World:
        conn = store.connect(tmp / "gateway.db")
        reg = Registry(conn)
        boxes = boxes or {"BOX-1": (0x000101, "T1")}
        lines = ["box,device,tps"] + [f"{b},{d:06x},{t}" for b, (d, t) in boxes.items()]
        (tmp / "boxes.csv").write_text("\n".join(lines) + "\n")
        (tmp / "calendar.toml").write_text(CALENDAR)
        judge = build_judge(conn, places=places(), boxes=tmp / "boxes.csv", calendar=tmp / "calendar.toml",
                            settings=settings, register=True)
        strict = Strict(judge)
        return cls(conn, judge, Pipeline(conn, KeyRing(SECRET, reg), judges=[strict]), strict)  # type: ignore[list-item]

    def keys(self, dev: int) -> protocol.DeviceKeys:
        return protocol.DeviceKeys.from_device_key(protocol.derive_device_key(SECRET, dev, 0))

    def frame(self, dev: int, t: int, body: object, counter: int | None = None) -> bytes:
        if counter is None:
            counter = self.counters.get(dev, 0) + 1
        self.counters[dev] = max(counter, self.counters.get(dev, 0))
        return protocol.encode(self.keys(dev), dev, counter, t, body)  # type: ignore[arg-type]

    def pos_frame(self, dev: int, t: int, p: tuple[float, float], counter: int | None = None, flags: int = 0) -> bytes:
        return self.frame(dev, t, Position(p[0], p[1], Flag.FIX | flags, 1.0, 20), counter)

    def seal_frame(self, dev: int, t: int, ev: SealEvent, p: tuple[float, float], seq: int = 1,
                   counter: int | None = None) -> bytes:
        flags = Flag.FIX | (Flag.TAMPER | Flag.LOOP_OPEN if ev in (SealEvent.LOOP_OPEN, SealEvent.LID_OPEN) else 0)
        return self.frame(dev, t, Seal(int(ev), seq, flags, p[0], p[1]), counter)

    def status_frame(self, dev: int, t: int, mv: int) -> bytes:
        return self.frame(dev, t, Status(mv, "1.0", 0, 4, Flag.FIX, 10))

    def send(self, frame: bytes, rx: float) -> list[dict]:
        dev = int.from_bytes(frame[1:4], "big")
        res = self.pipe.process(uplink(rx, f"segel/up/{dev:06x}", frame))
        self.strict.check()
        self.alerts += res.alerts
        return res.alerts

    def tick(self, now: float) -> list[dict]:
        out = self.pipe.tick(now)
        self.strict.check()
        self.alerts += out
        return out

    def findings(self, kinds: tuple[str, ...] | None = None) -> list[tuple[str, str | None, float]]:
        rows = self.conn.execute("SELECT kind, place, t FROM judge_findings ORDER BY t, kind").fetchall()
        return [r for r in rows if kinds is None or r[0] in kinds]

    def raised(self, event: str = "raised") -> list[tuple[str, str | None]]:
        return [(a["kind"], a["place"]) for a in self.alerts if a["event"] == event]
