"""A simulated run of the real gateway that fills a real InfluxDB for the dashboard tests.

Six boxes of the Kutai Timur scenario (two districts) travel their custody plans from the
warehouse to their TPS, following the calendar's leg windows; their trackers send position,
seal and status frames encoded by segel.protocol, some over LoRa (bridge topics with RSSI/SNR
from one or two base stations), some over depot WiFi. Incidents: a seal cut at a PPS (critical
alert), the authorised opening for the count at a TPS, a tracker with a failing battery, two
trackers that fall silent, a store-and-forward burst, and forged, replayed, unknown and
misrouted frames. Everything goes through segel.ingest.pipeline.Pipeline with the custody judge; the
outbox is drained into InfluxDB by segel.influx.outbox.Drainer with segel.influx.writers.V1Writer. Gateway
health points are written the way segel.service.gateway does every health interval.
"""

from __future__ import annotations

import math
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from segel import protocol, store
from segel.custody import alerts as al
from segel.custody.judge import build_judge
from segel.custody.plan import OUTBOUND, Leg, Plan
from segel.edge import topics
from segel.edge.payloads import uplink
from segel.ids import device_hex
from segel.influx import outbox, schema
from segel.influx.outbox import Drainer
from segel.influx.writers import V1Writer
from segel.messages import RxMeta, Uplink
from segel.ingest.pipeline import Pipeline
from segel.places import io as places_io
from segel.places.model import Circle, Corridor, Place
from segel.registry import KeyRing, Registry

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "scenarios" / "kutai-timur"
SECRET = bytes(range(100, 132))
DATABASE = "segel"
STEP_S = 600  # a fix every 10 minutes on the road
STAY_S = 1800  # and every 30 minutes while parked
STATUS_S = 7200
F = protocol.Flag


@dataclass
class Tracker:
    device: int
    box: str
    plan: Plan
    lora: bool
    counter: int = 0
    battery: float = 4100.0
    flags: int = 0
    silent_after: float | None = None  # device time after which it sends nothing
    bodies: list[tuple[float, float, protocol.Body]] = field(default_factory=list)  # (device time, receive time, body)
    frames: list[tuple[float, float, bytes]] = field(default_factory=list)  # encoded, counters in device-time order


@dataclass
class Run:
    db_path: Path
    conn: sqlite3.Connection
    pipeline: Pipeline
    trackers: list[Tracker]
    start: float
    end: float
    tick_at: float
    rejected: dict[str, int]
    districts: list[str]

    def open_alerts(self) -> dict[str, int]:
        """Ground truth from the gateway's own alert table."""
        out: dict[str, int] = {}
        for sev, n in self.conn.execute(
                "SELECT severity, COUNT(*) FROM alerts WHERE state IN (?, ?) GROUP BY severity", (al.OPEN, al.ACKNOWLEDGED)):
            out[sev] = n
        return out


def _distance_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    dlat = math.radians(b[0] - a[0])
    dlon = math.radians(b[1] - a[1]) * math.cos(math.radians((a[0] + b[0]) / 2))
    return 6371.0 * math.hypot(dlat, dlon)


def _choose_boxes(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    """Three boxes in each of two districts, from the scenario's boxes.csv (box, tps)."""
    rows = [ln.split(",") for ln in (SCENARIO / "boxes.csv").read_text().splitlines()[1:] if ln.strip()]
    by_ppk: dict[str, list[tuple[str, str]]] = {}
    for box, tps, _contest in rows:
        by_ppk.setdefault(".".join(tps.split(".")[:3]), []).append((box, tps))
    ppks = sorted(by_ppk)[:2]
    return [bt for p in ppks for bt in by_ppk[p][:3]]


def build(tmp: Path, influx_url: str) -> Run:
    db_path = tmp / "gateway.db"
    conn = store.connect(db_path)
    reg = Registry(conn)
    places_io.import_files(conn, [SCENARIO / "places.csv", SCENARIO / "corridors.geojson"])
    places = {p.code: p for p in places_io.load(conn)}
    chosen = _choose_boxes(conn)
    for i, (box, tps) in enumerate(chosen):
        reg.add_device(0x000201 + i)
        reg.pair(box, 0x000201 + i, tps=tps)
    # this run's trackers report every STAY_S at most (not the demo rehearsal's interval in the
    # scenario calendar), so a tracker quiet for hours is silent
    judge = build_judge(conn, calendar=SCENARIO / "calendar.toml", settings={"report_interval_s": STAY_S})
    pipeline = Pipeline(conn, KeyRing(SECRET, reg), judges=[judge])
    trackers = [Tracker(0x000201 + i, box, judge.plans[box], lora=i % 3 != 2) for i, (box, _tps) in enumerate(chosen)]
    districts = sorted({t.plan.district for t in trackers if t.plan.district})

    # the count at the TPS on election day, in the seal permit's window
    tps_permit = {t.box: next(p for p in t.plan.seal if p.place == t.plan.tps).window for t in trackers}
    end = max(w.start for w in tps_permit.values()) + 8 * 3600
    start = min(t.plan.legs[0].window.start for t in trackers) - 3600
    trackers[3].battery = 3480.0  # an old cell: drops below low_battery_mv on the way
    for i, t in enumerate(trackers):
        _travel(t, places, i, end)
    # incidents
    t_cut = trackers[1]  # seal cut at its PPS during the ppk_to_pps leg's stay
    leg = next(lg for lg in t_cut.plan.legs if lg.name == "ppk_to_pps")
    cut_at = _ll(places[leg.to_code])
    _seal(t_cut, leg.window.end + 1800, protocol.SealEvent.LOOP_OPEN, cut_at[0], cut_at[1], F.LOOP_OPEN | F.TAMPER | F.FIX)
    t_count = trackers[0]  # opened for the count, inside the permit
    w = tps_permit[t_count.box]
    tp = _ll(places[t_count.plan.tps])
    _seal(t_count, w.start + 3600, protocol.SealEvent.LOOP_OPEN, tp[0], tp[1], F.LOOP_OPEN | F.FIX)
    trackers[4].silent_after = end - 5 * 3600
    trackers[5].silent_after = end - 4 * 3600
    for t in trackers:  # the tracker numbers its frames as they happen
        t.frames = [(dt, rx, _encode(t, dt, body)) for dt, rx, body in sorted(t.bodies, key=lambda b: b[0])]
    # a dead zone: tracker 2's frames during its pps_to_tps leg arrive together when it reaches the TPS
    dz = next(lg for lg in trackers[2].plan.legs if lg.name == "pps_to_tps")
    burst_at = dz.window.end + 600
    trackers[2].frames = [(dt, burst_at if dz.window.start <= dt <= dz.window.end else rx, fr)
                          for dt, rx, fr in trackers[2].frames]

    ups: list[Uplink] = []
    for t in trackers:
        for dev_time, rx, fr in t.frames:
            if t.silent_after is not None and dev_time > t.silent_after:
                continue
            if t.lora:
                meta = RxMeta(rssi=-95.0 - (t.device % 7) * 3 - (dev_time % 1000) / 100, snr=6.0 - (t.device % 5) * 2.5,
                              base_id=f"bs-{t.plan.district}", bridge_id="ppk-bridge", freq_khz=921400, sf=9, rx_time=rx)
                ups.append(uplink(rx, topics.bridge_up("ppk-bridge"), fr, meta))
                if int.from_bytes(fr[4:7], "big") % 4 == 0:  # a second base station hears it too
                    ups.append(uplink(rx + 0.4, topics.bridge_up("kpu-bridge"), fr,
                                      RxMeta(rssi=-118.0, snr=-9.0, base_id="bs-kpu", bridge_id="kpu-bridge",
                                             freq_khz=921400, sf=9, rx_time=rx)))
            else:
                ups.append(uplink(rx, topics.tracker_up(device_hex(t.device)), fr, None))
    rejected = _bad_uplinks(trackers, pipeline, ups, start)
    ups.sort(key=lambda u: u.received_at)

    writer = V1Writer(influx_url, DATABASE, create_database=True)
    drainer = Drainer(db_path, writer, batch_size=2000)
    next_health = start
    for u in ups:
        while u.received_at >= next_health:
            _health(conn, pipeline, next_health)
            drainer.drain_all()
            next_health += 3 * 3600
        if u.frame == b"{not a frame":
            pipeline.reject_unreadable(u, "bridge JSON without a frame")
        else:
            pipeline.process(u)
    tick_at = end + 1800
    pipeline.tick(tick_at)
    _health(conn, pipeline, tick_at)
    drainer.drain_all()
    drainer.stop()
    return Run(db_path, conn, pipeline, trackers, start, tick_at, tick_at, rejected, districts)


def _encode(t: Tracker, dev_time: float, body: protocol.Body) -> bytes:
    t.counter += 1
    keys = protocol.DeviceKeys.from_device_key(protocol.derive_device_key(SECRET, t.device, 0))
    return protocol.encode(keys, t.device, t.counter, int(dev_time), body)


def _pos(t: Tracker, dev_time: float, lat: float, lon: float, speed: float) -> None:
    flags = t.flags | F.FIX | (F.LOW_BATT if t.battery < 3450 else 0)
    t.bodies.append((dev_time, dev_time + 3, protocol.Position(lat, lon, flags, 0.9, int(speed))))


def _seal(t: Tracker, dev_time: float, event: int, lat: float, lon: float, flags: int) -> None:
    seq = sum(1 for b in t.bodies if isinstance(b[2], protocol.Seal)) % 256
    t.bodies.append((dev_time, dev_time + 5, protocol.Seal(event, seq, flags, lat, lon)))


def _status(t: Tracker, dev_time: float, queue: int) -> None:
    t.battery -= 4.0
    body = protocol.Status(int(t.battery), "1.0", queue, protocol.ResetCause.DEEPSLEEP, t.flags,
                           int((dev_time % 86400) // 60))
    t.bodies.append((dev_time, dev_time + 4, body))


def _ll(place: Place) -> tuple[float, float]:
    assert isinstance(place.shape, Circle), place.code
    return place.shape.lat, place.shape.lon


def _route(leg: Leg, places: dict[str, Place]) -> list[tuple[float, float]]:
    """From one custody point to the next along the leg's first corridor (if it has one)."""
    a, b = _ll(places[leg.from_code]), _ll(places[leg.to_code])
    pts: list[tuple[float, float]] = []
    if leg.corridors:
        shape = places[leg.corridors[0]].shape
        assert isinstance(shape, Corridor)
        pts = [(lat, lon) for lon, lat in shape.line]
        if _distance_km(a, pts[-1]) < _distance_km(a, pts[0]):
            pts.reverse()
    return [a, *pts, b]


def _travel(t: Tracker, places: dict[str, Place], i: int, end: float) -> None:
    """Positions along each outbound leg (its corridor, 40 km/h), parked fixes in between."""
    legs = [lg for lg in t.plan.legs if lg.name in OUTBOUND]
    here = _ll(places[legs[0].from_code])
    now = legs[0].window.start - 1800 + i * 120
    _seal(t, now, protocol.SealEvent.ARMED, here[0], here[1], F.FIX)
    last_status = now - STATUS_S
    for k, leg in enumerate(legs):
        depart = max(now, leg.window.start + i * 300)
        while now < depart:
            _pos(t, now, here[0], here[1], 0)
            now += STAY_S
            if now - last_status >= STATUS_S:
                _status(t, now, 0)
                last_status = now
        route = _route(leg, places)
        for p, q in zip(route, route[1:]):
            hours = _distance_km(p, q) / 40.0
            steps = max(1, int(hours * 3600 // STEP_S))
            start = now
            for s in range(1, steps + 1):
                f = s / steps
                now = start + f * hours * 3600
                _pos(t, now, p[0] + (q[0] - p[0]) * f, p[1] + (q[1] - p[1]) * f, 40)
        here = route[-1]
        nxt = legs[k + 1].window.start if k + 1 < len(legs) else end
        while now < nxt:
            now += STAY_S
            _pos(t, now, here[0], here[1], 0)
            if now - last_status >= STATUS_S:
                _status(t, now, 0)
                last_status = now


def _bad_uplinks(trackers: list[Tracker], pipeline: Pipeline, ups: list[Uplink], start: float) -> dict[str, int]:
    """Frames the gateway must reject, and how many of each (the expected `rejected` points)."""
    t = trackers[0]
    dev_time, rx, good = t.frames[5]
    forged = bytearray(good)
    forged[-1] ^= 0x55
    keys = protocol.DeviceKeys.from_device_key(protocol.derive_device_key(SECRET, t.device, 0))
    replay = protocol.encode(keys, t.device, int.from_bytes(good[4:7], "big"), int(dev_time),
                             protocol.Position(1.0, 117.0, F.FIX, 0.9, 0))
    stranger_keys = protocol.DeviceKeys.from_device_key(protocol.derive_device_key(SECRET, 0x0FFF01, 0))
    stranger = protocol.encode(stranger_keys, 0x0FFF01, 1, int(dev_time), protocol.Position(1.0, 117.0, F.FIX, 0.9, 0))
    bad = [
        (rx + 60, topics.tracker_up(device_hex(t.device)), bytes(forged), "bad_mac"),
        (rx + 61, topics.tracker_up(device_hex(t.device)), bytes(forged[:-2]) + b"\x00\x01", "bad_mac"),
        (rx + 3600, topics.tracker_up(device_hex(t.device)), replay, "replay"),
        (rx + 70, topics.tracker_up("0fff01"), stranger, "unknown_device"),
        (rx + 80, topics.tracker_up(device_hex(trackers[1].device)), good, "wrong_topic"),
        (rx + 90, topics.bridge_up("ppk-bridge"), b"{not a frame", "malformed"),
    ]
    counts: dict[str, int] = {}
    for at, topic, frame, reason in bad:
        ups.append(uplink(at, topic, frame, None))
        counts[reason] = counts.get(reason, 0) + 1
    return counts


def _health(conn: sqlite3.Connection, pipeline: Pipeline, at: float) -> None:
    """The `gateway` point segel.gateway.Gateway writes every health interval."""
    c = pipeline.counts
    rejected = sum(v for k, v in c.items() if k.startswith("rejected:"))
    line = schema.point("gateway", {"instance": "gw-test"}, {
        "accepted": c.get("accepted", 0), "rejected": rejected, "duplicates": c.get("duplicate", 0),
        "outbox_depth": outbox.depth(conn), "lag_s": outbox.lag_s(conn)}, int(at * 1000) * 1_000_000)
    conn.execute("BEGIN IMMEDIATE")
    outbox.enqueue(conn, [line])
    conn.execute("COMMIT")
