"""The rules, as one pure step function over a small per-device state (JSON-able).

Enrich first, detect second: a position is first looked up in the place index (which places'
shapes and halos hold it); the step then compares that with the state and moves small state
machines (a visit per place: pending-in -> in -> pending-out; a stop; an off-corridor excursion;
the tamper and battery latches). It yields Findings: alert-worthy ones and custody events
(enter, exit, seal events). The judge runs it per device in counter order, so the result depends
only on which frames exist, never on the order they arrived in.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from segel.custody.plan import Plan
from segel.places import geometry
from segel.places.index import PlaceIndex
from segel.places.model import CORRIDOR, TPS
from segel.protocol import Applied, Flag, Position, Seal, SealEvent, Status

# Custody events: recorded (ledger, InfluxDB "custody"), never alerts.
ENTER, EXIT, SEAL_EVENT = "enter", "exit", "seal_event"


@dataclass(frozen=True)
class Finding:
    kind: str
    place: str | None
    t: float  # device time of the event the finding is about
    key: str  # stable identity: the same event always gives the same key
    detail: dict = field(default_factory=dict, compare=False)
    lat: float | None = None
    lon: float | None = None


def _copy(state: dict) -> dict:
    """A copy of the state deep enough for step() (faster than copy.deepcopy)."""
    st = dict(state)
    st["places"] = {k: dict(v) for k, v in state["places"].items()}
    for k in ("stop", "off"):
        if state[k] is not None:
            st[k] = dict(state[k])
    if state["pos"] is not None:
        st["pos"] = list(state["pos"])
    return st


def initial_state() -> dict:
    return {"places": {}, "stop": None, "off": None, "tamper": False, "lowbatt": False, "pos": None, "t": None}


def record(rec_counter: int, t: float, rx: float, frame_body: object) -> dict:
    """The compact form of an accepted frame that the judge keeps and replays."""
    b = frame_body
    if isinstance(b, Position):
        return {"c": rec_counter, "t": t, "rx": rx, "k": "pos", "lat": b.lat, "lon": b.lon, "fix": b.fix,
                "hdop": b.hdop, "flags": b.flags}
    if isinstance(b, Seal):
        return {"c": rec_counter, "t": t, "rx": rx, "k": "seal", "ev": b.event, "seq": b.seq, "flags": b.flags,
                "lat": b.lat, "lon": b.lon}
    if isinstance(b, Status):
        return {"c": rec_counter, "t": t, "rx": rx, "k": "status", "batt": b.battery_mv, "flags": b.flags}
    if isinstance(b, Applied):  # a device command confirmed: what the tracker runs now (ledger)
        return {"c": rec_counter, "t": t, "rx": rx, "k": "applied", "down": b.down_counter, "interval_s": b.report_interval_s,
                "fix_timeout_s": b.fix_timeout_s, "mode": b.mode, "sf": b.sf, "result": b.result, "flags": 0}
    return {"c": rec_counter, "t": t, "rx": rx, "k": "other", "flags": 0}


def _key(kind: str, place: str | None, t: float, extra: object = "") -> str:
    """A finding's identity: everything that says what happened (kind, place, device time). A
    finding judged again with another place is another finding (the old one is withdrawn)."""
    return f"{kind}|{place or ''}|{t:.0f}|{extra}"


class Rules:
    def __init__(self, index: PlaceIndex, settings: dict[str, float]) -> None:
        self.index = index
        self.s = settings

    def step(self, state: dict, fr: dict, plan: Plan | None) -> tuple[dict, list[Finding]]:
        st = _copy(state)
        out: list[Finding] = []
        t = float(fr["t"])
        kind = fr["k"]
        flags = int(fr.get("flags", 0))
        # Only what the frame itself says decides whether a fix is used (fix flag, HDOP): the pipeline's
        # impossible_jump mark depends on which frame arrived before, and judging must not.
        if kind == "pos" and fr["fix"] and fr["hdop"] <= self.s["max_hdop"]:
            self._position(st, fr, t, plan, out)
        elif kind == "seal":
            self._seal(st, fr, t, plan, out)
        if flags & Flag.TAMPER and not st["tamper"]:
            st["tamper"] = True
            here = self._here(st)
            out.append(Finding("tamper_latched", here, t, _key("tamper_latched", here, t),
                               {"message": "tamper flag set with no seal event before it (lost or not yet received)"}))
        batt = fr.get("batt")
        low = bool(flags & Flag.LOW_BATT) or (batt is not None and batt < self.s["low_battery_mv"])
        if low and not st["lowbatt"]:
            st["lowbatt"] = True
            out.append(Finding("low_battery", None, t, _key("low_battery", None, t), {"battery_mv": batt}))
        elif batt is not None and batt >= self.s["low_battery_mv"] + 100 and not flags & Flag.LOW_BATT:
            st["lowbatt"] = False  # recharged or replaced: a later drop alerts again
        st["t"] = t
        return st, out

    def _here(self, st: dict) -> str | None:
        inside = sorted(c for c, v in st["places"].items() if v["ph"] != "pin")
        return inside[0] if inside else None

    def _position(self, st: dict, fr: dict, t: float, plan: Plan | None, out: list[Finding]) -> None:
        lat, lon = float(fr["lat"]), float(fr["lon"])
        st["pos"] = [lat, lon]
        lk = self.index.lookup(lat, lon)
        places = st["places"]
        # Visits with hysteresis (enter on the shape, leave only beyond shape + margin) and dwell.
        for code in list(places):
            v = places[code]
            p = self.index.get(code)
            dwell = p.dwell_s if p else 0.0
            if code in lk.halo:
                if v["ph"] == "pin" and code in lk.core and t - v["since"] >= dwell:
                    v["ph"] = "in"
                    self._entered(code, v["since"], plan, out, lat, lon)
                elif v["ph"] == "pout":
                    v["ph"] = "in"
                continue
            if v["ph"] == "pin":
                del places[code]
            elif v["ph"] == "in":
                places[code] = {"ph": "pout", "since": t, "enter": v["enter"]}
                if dwell == 0:
                    self._left(code, v["enter"], t, out, lat, lon)
                    del places[code]
            elif t - v["since"] >= dwell:
                self._left(code, v["enter"], v["since"], out, lat, lon)
                del places[code]
        for code in sorted(lk.core):
            p = self.index.get(code)
            if code in places or p is None or p.kind == CORRIDOR:
                continue
            places[code] = {"ph": "pin", "since": t, "enter": t}
            if p.dwell_s == 0:
                places[code]["ph"] = "in"
                self._entered(code, t, plan, out, lat, lon)
        at_place = any(c for c in lk.halo if (p := self.index.get(c)) is not None and p.kind != CORRIDOR)
        # A stop: every fix within stop_radius_m of where it began, outside any place.
        stop = st["stop"]
        if at_place:
            st["stop"] = None
        elif stop is None or geometry.distance_m(stop["lat"], stop["lon"], lat, lon) > self.s["stop_radius_m"]:
            st["stop"] = {"lat": lat, "lon": lon, "since": t, "alerted": False}
        elif not stop["alerted"] and t - stop["since"] >= self.s["stop_minutes"] * 60:
            stop["alerted"] = True
            out.append(Finding("long_stop", None, stop["since"], _key("long_stop", None, stop["since"]),
                               {"minutes": round((t - stop["since"]) / 60)}, stop["lat"], stop["lon"]))
        # Off corridor: outside every place and every corridor of the plan, for corridor_dwell_s.
        corridors = plan.corridors if plan else frozenset()
        if not corridors or at_place or lk.halo & corridors:
            st["off"] = None
        elif st["off"] is None:
            st["off"] = {"since": t, "lat": lat, "lon": lon, "alerted": False}
        elif not st["off"]["alerted"] and t - st["off"]["since"] >= self.s["corridor_dwell_s"]:
            off = st["off"]
            off["alerted"] = True
            out.append(Finding("off_corridor", None, off["since"], _key("off_corridor", None, off["since"]),
                               {"corridors": sorted(corridors)}, off["lat"], off["lon"]))

    def _entered(self, code: str, since: float, plan: Plan | None, out: list[Finding], lat: float, lon: float) -> None:
        p = self.index.get(code)
        out.append(Finding(ENTER, code, since, _key(ENTER, code, since), {"place_kind": p.kind if p else None}, lat, lon))
        if plan and code in plan.custody_points:
            out.append(Finding("arrived", code, since, _key("arrived", code, since), {"place_kind": p.kind if p else None}, lat, lon))
        elif p is not None and p.kind == TPS and plan is not None and code != plan.tps:
            out.append(Finding("wrong_tps", code, since, _key("wrong_tps", code, since), {"own_tps": plan.tps}, lat, lon))

    def _left(self, code: str, enter: float, t: float, out: list[Finding], lat: float, lon: float) -> None:
        p = self.index.get(code)
        out.append(Finding(EXIT, code, t, _key(EXIT, code, t), {"entered": enter, "place_kind": p.kind if p else None}, lat, lon))

    def _seal(self, st: dict, fr: dict, t: float, plan: Plan | None, out: list[Finding]) -> None:
        ev, seq = int(fr["ev"]), int(fr["seq"])
        lat, lon = float(fr["lat"]), float(fr["lon"])
        if lat == 0.0 and lon == 0.0:  # no fix with the event: use where the box was last seen
            where = frozenset(c for c, v in st["places"].items() if v["ph"] != "pin")
            lat, lon = st["pos"] if st["pos"] else (None, None)  # type: ignore[assignment]
        else:
            where = self.index.lookup(lat, lon).halo
        name = SealEvent(ev).name.lower() if ev in SealEvent._value2member_map_ else f"unknown_{ev}"
        here = sorted(c for c in where if (p := self.index.get(c)) is not None and p.kind != CORRIDOR)
        place = here[0] if here else None
        key_extra = f"{ev}:{seq}"
        # an unexplained seal wake is an opening the tracker could not see the edges of (the loop
        # or lid opened and closed again in deep sleep, docs/firmware.md): judged like one
        if ev in (SealEvent.LOOP_OPEN, SealEvent.LID_OPEN, SealEvent.WAKE_UNEXPLAINED):
            permit = next((pm for pm in (plan.seal if plan else ()) if pm.place in where and pm.window.holds(t)), None)
            st["tamper"] = True
            if permit:
                out.append(Finding("seal_authorised", permit.place, t, _key("seal_authorised", permit.place, t, key_extra),
                                   {"event": name, "seq": seq, "why": permit.why}, lat, lon))
            else:
                out.append(Finding("seal_unauthorised", place, t, _key("seal_unauthorised", place, t, key_extra),
                                   {"event": name, "seq": seq}, lat, lon))
        elif ev == SealEvent.CASE_OPEN:
            st["tamper"] = True
            out.append(Finding("case_opened", place, t, _key("case_opened", place, t, key_extra), {"event": name, "seq": seq}, lat, lon))
        elif ev == SealEvent.POWER_RESTORED:
            out.append(Finding("power_lost", place, t, _key("power_lost", place, t, key_extra),
                               {"event": name, "seq": seq, "message": "tracker lost power while armed (removed or battery pulled?)"}, lat, lon))
        else:
            if ev in (SealEvent.REARMED, SealEvent.ARMED):
                st["tamper"] = False
            out.append(Finding(SEAL_EVENT, place, t, _key(SEAL_EVENT, place, t, key_extra), {"event": name, "seq": seq}, lat, lon))
        if ev in (SealEvent.LOOP_OPEN, SealEvent.LID_OPEN, SealEvent.CASE_OPEN, SealEvent.WAKE_UNEXPLAINED) \
                and fr["flags"] & Flag.TAMPER:
            st["tamper"] = True
