"""What each box does, in time: its custody plan turned into a route, seal edges and switch-offs.

A box follows its plan (segel.custody.plan): each leg departs inside the leg's window (convoys
staggered by district, village and TPS), runs along the plan's corridor at the speed of the
mode (road, village road, sea), and stays at each custody point. On election day the KPPS opens
the box at its TPS to show it empty and again for the count; the day after, the PPK opens it for
the recapitulation; each time a technician re-arms the seal once it is closed again. Scripted
incidents bend this: a detour, a cut seal, a wrong TPS, a pulled battery, a stop in a dead zone.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import random
from dataclasses import dataclass, field

from segel.custody.plan import Leg
from segel.places.model import Circle, Corridor
from segel.sim.scenario import Box, Incident, Scenario, Settings

M_PER_DEG = 111_320.0

# Ground-truth phases of a box, for the simulator's own view (the gateway's view is the judge's).
WAREHOUSE, TRANSIT, PPK, PPS, TPS, RETURNING, BACK = "warehouse", "transit", "ppk", "pps", "tps", "returning", "back"


def dist_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    dy = (a[0] - b[0]) * M_PER_DEG
    dx = (a[1] - b[1]) * M_PER_DEG * math.cos(math.radians((a[0] + b[0]) / 2))
    return math.hypot(dx, dy)


def offset(p: tuple[float, float], bearing_deg: float, d_m: float) -> tuple[float, float]:
    b = math.radians(bearing_deg)
    return (p[0] + d_m * math.cos(b) / M_PER_DEG, p[1] + d_m * math.sin(b) / (M_PER_DEG * math.cos(math.radians(p[0]))))


def _rng(*parts: object) -> random.Random:
    return random.Random(int.from_bytes(hashlib.sha256("|".join(map(str, parts)).encode()).digest()[:8], "big"))


@dataclass
class Itinerary:
    box: Box
    district: str
    route: list[tuple[float, float, float]]  # (unix, lat, lon), time-ordered
    seal: list[tuple[float, str, bool]] = field(default_factory=list)  # (unix, input, is_open)
    rearm: list[float] = field(default_factory=list)  # technician re-arms at these times
    phases: list[tuple[float, str, str]] = field(default_factory=list)  # (from unix, phase, place)
    dropouts: list[tuple[float, float]] = field(default_factory=list)
    power_on: float = 0.0
    end: float = 0.0
    power_cut: float | None = None
    no_coverage: list[tuple[float, float, float]] = field(default_factory=list)  # circles (lat, lon, r_m)
    stops: list[tuple[float, float]] = field(default_factory=list)

    def phase_at(self, t: float) -> tuple[str, str]:
        cur = (WAREHOUSE, "")
        for t0, ph, place in self.phases:
            if t0 > t:
                break
            cur = (ph, place)
        return cur

    def position(self, t: float) -> tuple[float, float]:
        r = self.route
        if t <= r[0][0]:
            return r[0][1], r[0][2]
        for (t0, a0, o0), (t1, a1, o1) in zip(r, r[1:]):
            if t0 <= t <= t1:
                f = (t - t0) / (t1 - t0) if t1 > t0 else 1.0
                return a0 + f * (a1 - a0), o0 + f * (o1 - o0)
        return r[-1][1], r[-1][2]

    def covered(self, t: float) -> bool:
        if not self.no_coverage:
            return True
        p = self.position(t)
        return all(dist_m(p, (la, lo)) > r for la, lo, r in self.no_coverage)


def _nearest_on_path(path: list[tuple[float, float, str]], p: tuple[float, float]) -> tuple[int, tuple[float, float]]:
    """(index of the segment's start, the point of the path nearest p), in a local flat frame."""
    best = (math.inf, 0, (path[0][0], path[0][1]))
    for i in range(len(path) - 1):
        a, b = (path[i][0], path[i][1]), (path[i + 1][0], path[i + 1][1])
        cx = math.cos(math.radians(p[0]))
        ax, ay, bx, by = a[1] * cx, a[0], b[1] * cx, b[0]
        px, py = p[1] * cx, p[0]
        dx, dy = bx - ax, by - ay
        f = 0.0 if dx == dy == 0 else max(0.0, min(1.0, ((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy)))
        q = (a[0] + f * (b[0] - a[0]), a[1] + f * (b[1] - a[1]))
        d = dist_m(q, p)
        if d < best[0]:
            best = (d, i, q)
    return best[1], best[2]


class Builder:
    """Builds the itinerary of every box of a scenario."""

    def __init__(self, scn: Scenario) -> None:
        self.scn = scn
        self.s: Settings = scn.settings
        self.by_box: dict[str, list[Incident]] = {}
        for inc in scn.incidents:
            self.by_box.setdefault(inc.box, []).append(inc)
        # incidents that touch a whole convoy (dead zone): every box of the incident box's district
        self.convoy: dict[str, list[Incident]] = {}
        for inc in scn.incidents:
            if inc.params.get("convoy"):
                b = next(b for b in scn.boxes if b.box == inc.box)
                self.convoy.setdefault(scn.district_of(b), []).append(inc)

    def center(self, code: str) -> tuple[float, float]:
        sh = self.scn.places[code].shape
        if isinstance(sh, Circle):
            return sh.lat, sh.lon
        if isinstance(sh, Corridor):
            return sh.line[0][1], sh.line[0][0]
        lon, lat = sh.ring[0]
        return lat, lon

    def _path(self, leg: Leg, frm: tuple[float, float], to: tuple[float, float]) -> list[tuple[float, float, str]]:
        """(lat, lon, mode of the segment ending here) from frm to to along the leg's corridor."""
        for code in leg.corridors:
            sh = self.scn.places[code].shape
            if not isinstance(sh, Corridor):
                continue
            pts = [(lat, lon) for lon, lat in sh.line]
            modes = self.scn.modes.get(code) or ["road"] * (len(pts) - 1)
            if dist_m(pts[0], frm) > dist_m(pts[-1], frm):
                pts, modes = pts[::-1], modes[::-1]
            local = len(pts) == 2
            out = [(frm[0], frm[1], "road")]
            for p, m in zip(pts[1:], modes):
                out.append((p[0], p[1], "local" if local and m == "road" else m))
            out.append((to[0], to[1], out[-1][2]))
            return out
        return [(frm[0], frm[1], "local"), (to[0], to[1], "local")]  # no corridor: straight (and off it)

    def _speed(self, mode: str) -> float:
        kmh = {"sea": self.s.sea_kmh, "local": self.s.local_kmh}.get(mode, self.s.road_kmh)
        return kmh / 3.6

    def _drive(self, it: Itinerary, t: float, path: list[tuple[float, float, str]]) -> float:
        for (a0, o0, _m), (a1, o1, m) in zip(path, path[1:]):
            t += dist_m((a0, o0), (a1, o1)) / self._speed(m)
            it.route.append((t, a1, o1))
        return t

    def _stay(self, it: Itinerary, t0: float, t1: float) -> None:
        if t1 > t0:
            _, la, lo = it.route[-1]
            it.route.append((t1, la, lo))

    def build(self, box: Box) -> Itinerary:
        scn, s = self.scn, self.s
        plan = scn.plan(box)
        district = plan.district or "?"
        incs = self.by_box.get(box.box, []) + [i for i in self.convoy.get(district, []) if i.box != box.box]
        legs = list(plan.legs)
        if not legs:
            raise ValueError(f"box {box.box}: its plan has no legs (calendar without [legs])")
        first = legs[0]
        t = first.window.start + self._stagger(box, district, first)
        start = self.center(first.from_code)
        it = Itinerary(box, district, [(t - s.power_on_before_s, start[0], start[1])])
        it.power_on = t - s.power_on_before_s
        it.rearm.append(it.power_on + 60)  # armed at packing
        it.phases.append((it.power_on, WAREHOUSE, first.from_code))
        arrived = it.power_on - s.stay_s  # it has been in the warehouse all along: no stay to wait out
        tz = scn.tz
        eday = scn.calendar.election_day or dt.datetime.fromtimestamp(first.window.start, tz).date()
        count_close = scn.local(eday, s.count_close)
        for leg in legs:
            depart = max(leg.window.start + self._stagger(box, district, leg), arrived + s.stay_s)
            if leg.name == "tps_to_pps":
                depart = max(depart, count_close + 1800)
            self._stay(it, arrived, depart)
            to = self.center(leg.to_code)
            outbound = leg.name in ("warehouse_to_ppk", "ppk_to_pps", "pps_to_tps")
            it.phases.append((depart, TRANSIT if outbound else RETURNING, leg.to_code))
            path = self._path(leg, (it.route[-1][1], it.route[-1][2]), to)
            t = self._incidents_on_leg(it, incs, leg, depart, path)
            arrived = t
            kind = scn.places[leg.to_code].kind
            it.phases.append((arrived, BACK if kind == "warehouse" else kind, leg.to_code))
            if kind == "tps":
                self._tps_day(it, eday)
            if kind == "ppk" and not outbound:
                recap_day = eday + dt.timedelta(days=1)
                self._opening(it, scn.local(recap_day, s.recap_open), scn.local(recap_day, s.recap_close))
        it.end = arrived + s.end_s
        self._stay(it, arrived, it.end)
        for inc in incs:
            self._point_incident(it, inc)
        it.seal.sort()
        self._dropouts(it)
        return it

    def _stagger(self, box: Box, district: str, leg: Leg) -> float:
        s = self.s.stagger_s
        if leg.name in ("warehouse_to_ppk", "ppk_to_warehouse"):  # one convoy per district
            return _rng(district, leg.name).uniform(0, s) + _rng(box.box, leg.name).uniform(0, 120)
        if leg.name in ("ppk_to_pps", "pps_to_ppk"):  # one car per village
            return _rng(leg.to_code if leg.name == "ppk_to_pps" else leg.from_code, leg.name).uniform(0, s)
        return _rng(box.tps, leg.name).uniform(0, s)  # one trip per TPS (both boxes together)

    def _opening(self, it: Itinerary, t_open: float, t_close: float) -> None:
        # not every KPPS or PPK opens its boxes at the same second: each box's opening starts up
        # to opening_spread_s after the scheduled time and lasts as scheduled
        off = _rng(it.box.box, "opening", t_open).uniform(0, self.s.opening_spread_s)
        it.seal += [(t_open + off, "loop", True), (t_close + off, "loop", False)]
        it.rearm.append(t_close + off + self.s.rearm_after_s)

    def _tps_day(self, it: Itinerary, eday: dt.date) -> None:
        s, scn = self.s, self.scn
        self._opening(it, scn.local(eday, s.show_empty), scn.local(eday, s.show_empty_close))
        self._opening(it, scn.local(eday, s.count_open), scn.local(eday, s.count_close))

    # ---- incidents --------------------------------------------------------------------------

    def _incidents_on_leg(self, it: Itinerary, incs: list[Incident], leg: Leg, depart: float,
                          path: list[tuple[float, float, str]]) -> float:
        for inc in incs:
            p = inc.params
            if inc.kind == "detour" and p.get("leg", "warehouse_to_ppk") == leg.name:
                mid = len(path) // 2 or 1
                t = self._drive(it, depart, path[: mid + 1])
                here = (it.route[-1][1], it.route[-1][2])
                a, b = path[mid - 1], path[min(mid + 1, len(path) - 1)]
                bearing = math.degrees(math.atan2((b[1] - a[1]) * math.cos(math.radians(a[0])), b[0] - a[0])) + 90
                side = offset(here, bearing, float(p.get("detour_km", 6)) * 1000)
                t = self._drive(it, t, [(here[0], here[1], "road"), (side[0], side[1], "local")])
                stay = float(p.get("stay_s", 2.5 * self.s.report_interval_s))
                self._stay(it, t, t + stay)
                it.stops.append((t, t + stay))
                t = self._drive(it, t + stay, [(side[0], side[1], "local"), (here[0], here[1], "local")])
                return self._drive(it, t, path[mid:])
            if inc.kind == "dead_zone" and p.get("leg", "warehouse_to_ppk") == leg.name:
                zc = (float(p["zone_center"][0]), float(p["zone_center"][1]))
                it.no_coverage.append((zc[0], zc[1], float(p["zone_radius_m"])))
                # the convoy waits inside the zone (a river crossing) at the point of its road nearest the centre
                k, stop = _nearest_on_path(path, zc)
                t = self._drive(it, depart, path[: k + 1] + [(stop[0], stop[1], path[k + 1][2])])
                stay = float(p.get("stop_s", 2.2 * self.s.report_interval_s))
                self._stay(it, t, t + stay)
                it.stops.append((t, t + stay))
                return self._drive(it, t + stay, [(stop[0], stop[1], "road")] + path[k + 1:])
            if inc.kind == "wrong_tps" and leg.name == "pps_to_tps":
                wrong = self.center(p["deliver_to"])
                t = self._drive(it, depart, [path[0], (wrong[0], wrong[1], "local")])
                stay = float(p.get("stay_s", 3 * self.s.report_interval_s))
                it.phases.append((t, "wrong_tps", p["deliver_to"]))
                self._stay(it, t, t + stay)
                own = path[-1]
                return self._drive(it, t + stay, [(wrong[0], wrong[1], "local"), own])
        return self._drive(it, depart, path)

    def _point_incident(self, it: Itinerary, inc: Incident) -> None:
        if inc.box != it.box.box:
            return
        if inc.kind == "seal_cut" and inc.at is not None:
            it.seal += [(inc.at, "loop", True), (inc.at + float(inc.params.get("close_after_s", 600)), "loop", False)]
        elif inc.kind == "silent" and inc.at is not None:
            it.power_cut = inc.at

    def _dropouts(self, it: Itinerary) -> None:
        r = _rng(it.box.box, "gnss")
        days = (it.end - it.power_on) / 86400
        for _ in range(int(days * self.s.gnss_dropouts_per_day)):
            t0 = r.uniform(it.power_on, it.end)
            it.dropouts.append((t0, t0 + r.uniform(300, 1200)))
