"""One box's history gathered from the database: track, visits, legs against the plan, seal events,
receipts, alerts, tracker health, ledger head and checkpoint. Reports and exports render it.

The ledger is the source: it holds every accepted frame and every finding, and a finding later
withdrawn (disproved by frames that arrived late) is left out, as the judge left it out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from segel.custody import alerts as al
from segel.custody import checkpoints, ledger, receipts
from segel.custody.plan import OUTBOUND, Leg, Plan
from segel.report.context import Custody

SEAL_KINDS = ("seal_unauthorised", "seal_authorised", "case_opened", "power_lost", "tamper_latched", "seal_event")


@dataclass(frozen=True)
class Fix:
    t: float  # device time
    rx: float  # received
    lat: float
    lon: float
    hdop: float
    fix: bool
    counter: int


@dataclass(frozen=True)
class Visit:
    place: str
    enter: float
    exit: float | None


@dataclass(frozen=True)
class LegResult:
    leg: Leg
    departed: float | None
    arrived: float | None

    @property
    def status(self) -> str:
        """on_time | late | not_arrived | pending (window still open when the story was told)"""
        if self.arrived is None:
            return "not_arrived"
        return "on_time" if self.arrived <= self.leg.window.end else "late"


@dataclass(frozen=True)
class SealRecord:
    t: float
    event: str  # loop_open, armed, ...
    kind: str  # the finding: seal_unauthorised, seal_authorised, seal_event, ...
    place: str | None
    late: bool
    why: str | None = None


@dataclass
class Health:
    frames: int = 0
    positions: int = 0
    fixes: int = 0
    first_rx: float | None = None
    last_rx: float | None = None
    late_frames: int = 0  # received more than late_after_s after their device time
    longest_gap_s: float = 0.0
    longest_gap_at: float | None = None
    battery_first: int | None = None
    battery_last: int | None = None
    battery_min: int | None = None
    security: int = 0  # rejected frames under this tracker's id (forged, replayed)


@dataclass
class BoxStory:
    box: str
    tps: str | None
    device: int | None
    district: str | None
    plan: Plan | None
    track: list[Fix] = field(default_factory=list)
    visits: list[Visit] = field(default_factory=list)
    legs: list[LegResult] = field(default_factory=list)
    seals: list[SealRecord] = field(default_factory=list)
    receipts: list[dict] = field(default_factory=list)
    alerts: list[dict] = field(default_factory=list)
    pairings: list[tuple[float, str, dict]] = field(default_factory=list)  # (at, paired|unpaired, body)
    health: Health = field(default_factory=Health)
    entries: int = 0
    head: str = ledger.GENESIS
    checkpoint: dict | None = None
    public_key: str | None = None

    @property
    def delivered(self) -> bool:
        return any(v.place == self.tps for v in self.visits)


class UnknownBox(ValueError):
    pass


def box_story(c: Custody, box: str, late_after_s: float = 600.0) -> BoxStory:
    if box not in c.boxes and not c.conn.execute("SELECT 1 FROM custody_ledger WHERE box = ? LIMIT 1", (box,)).fetchone():
        near = sorted(b for b in c.boxes if box.lower() in b.lower())[:5]
        raise UnknownBox(f"no box {box!r} in this database" + (f" (did you mean {', '.join(near)}?)" if near else ""))
    tps, device = c.boxes.get(box, (None, None))
    plan = c.plan(box)
    s = BoxStory(box, tps, device, c.district_of(box), plan)
    rows = c.conn.execute("SELECT event, body, at_ms, device_ms FROM custody_ledger WHERE box = ? ORDER BY seq",
                          (box,)).fetchall()
    withdrawn = {json.loads(b).get("key") for e, b, _, _ in rows if e == "withdrawn"}
    enters: list[tuple[float, str]] = []
    exits: list[tuple[float, str]] = []
    h = s.health
    prev_t = None
    for event, body_text, at_ms, dev_ms in rows:
        body = json.loads(body_text)
        t_dev = dev_ms / 1000 if dev_ms is not None else at_ms / 1000
        if event == "frame":
            _frame(s, h, body, late_after_s)
            t = float(body["t"])
            if prev_t is not None and t - prev_t > h.longest_gap_s:
                h.longest_gap_s, h.longest_gap_at = t - prev_t, prev_t
            prev_t = max(prev_t or t, t)
        elif event in ("paired", "unpaired"):
            s.pairings.append((at_ms / 1000, event, body))
        elif event == "security":
            h.security += 1
        elif body.get("key") in withdrawn:
            continue
        elif event == "enter":
            enters.append((t_dev, body["place"]))
        elif event == "exit":
            exits.append((t_dev, body["place"]))
        elif event in SEAL_KINDS:
            s.seals.append(SealRecord(t_dev, str(body.get("event", event)), event, body.get("place"),
                                      bool(body.get("late")), body.get("why")))
    s.track.sort(key=lambda f: f.t)
    s.seals.sort(key=lambda r: r.t)
    s.visits = _visits(enters, exits)
    if plan is not None:
        s.legs = legs_against_plan(plan, s.visits)
    s.receipts = receipts.of_box(c.conn, box)
    s.alerts = [dict(r, history=al.history(c.conn, r["id"])) for r in al.listing(c.conn, box=box, limit=10_000)
                if r["kind"] != "arrived"]
    s.alerts.sort(key=lambda r: (r["device_time"] or r["raised_at"], r["id"]))
    s.entries, s.head = ledger.head(c.conn, box)
    s.checkpoint = checkpoints.latest(c.conn, box)
    kid = s.checkpoint.get("key") if s.checkpoint else None
    keys = checkpoints.public_keys(c.conn)
    s.public_key = keys.get(kid) if kid else (c.key.public_hex if c.key else None)
    return s


def _frame(s: BoxStory, h: Health, b: dict, late_after_s: float) -> None:
    h.frames += 1
    t, rx = float(b["t"]), float(b["rx"])
    h.first_rx = rx if h.first_rx is None else min(h.first_rx, rx)
    h.last_rx = rx if h.last_rx is None else max(h.last_rx, rx)
    if rx - t > late_after_s:
        h.late_frames += 1
    if b["k"] == "pos":
        h.positions += 1
        if b.get("fix"):
            h.fixes += 1
            s.track.append(Fix(t, rx, float(b["lat"]), float(b["lon"]), float(b.get("hdop", 0)), True, int(b["c"])))
    elif b["k"] == "status" and b.get("batt") is not None:
        mv = int(b["batt"])
        h.battery_first = mv if h.battery_first is None else h.battery_first
        h.battery_last = mv
        h.battery_min = mv if h.battery_min is None else min(h.battery_min, mv)


def _visits(enters: list[tuple[float, str]], exits: list[tuple[float, str]]) -> list[Visit]:
    out = []
    pending: dict[str, list[float]] = {}
    events = sorted([(t, 0, p) for t, p in enters] + [(t, 1, p) for t, p in exits])
    for t, kind, p in events:
        if kind == 0:
            pending.setdefault(p, []).append(t)
        elif pending.get(p):
            out.append(Visit(p, pending[p].pop(0), t))
    out += [Visit(p, t, None) for p, ts in pending.items() for t in ts]
    return sorted(out, key=lambda v: v.enter)


def legs_against_plan(plan: Plan, visits: list[Visit]) -> list[LegResult]:
    """Each leg: when the box left its start and reached its end. Outbound legs take the first
    arrival at the destination; return legs only arrivals after the box was at its TPS."""
    at_tps = [v.enter for v in visits if v.place == plan.tps]
    first_tps = min(at_tps) if at_tps else None
    out = []
    for leg in plan.legs:
        since = float("-inf") if leg.name in OUTBOUND else (first_tps if first_tps is not None else leg.window.start)
        arrive = next((v.enter for v in visits if v.place == leg.to_code and v.enter >= since), None)
        dep = None
        for v in visits:
            if v.place == leg.from_code and v.exit is not None and v.exit >= since and (arrive is None or v.exit <= arrive):
                dep = v.exit
        out.append(LegResult(leg, dep, arrive))
    return out

