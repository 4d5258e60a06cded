"""Custody plans: the election calendar (TOML, local time) and the plans generated from it.

Nobody writes a thousand plans by hand: a box's plan follows from its TPS, the place hierarchy
(TPS -> PPS -> PPK -> warehouse) and one calendar file with the windows of each leg, where the
seal may be opened, staged per district, and overridden per box. Format: docs/custody.md.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import sqlite3
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

from segel.places.model import CORRIDOR, PPK, PPS, TPS, WAREHOUSE, Corridor, Place

OUTBOUND = ("warehouse_to_ppk", "ppk_to_pps", "pps_to_tps")
RETURN = ("tps_to_pps", "pps_to_ppk", "ppk_to_warehouse")
LEGS = OUTBOUND + RETURN
SEAL_PLACES = ("warehouse", "ppk", "pps", "tps")
_LEG_ENDS = {
    "warehouse_to_ppk": (WAREHOUSE, PPK), "ppk_to_pps": (PPK, PPS), "pps_to_tps": (PPS, TPS),
    "tps_to_pps": (TPS, PPS), "pps_to_ppk": (PPS, PPK), "ppk_to_warehouse": (PPK, WAREHOUSE),
}

# Rule settings and their defaults; the calendar's [rules] table and build_judge(settings=) override.
DEFAULT_RULES: dict[str, float] = {
    "report_interval_s": 300,        # the trackers' configured report interval
    "silent_after_intervals": 3,     # silent when no frame for this many intervals
    "stop_minutes": 30,              # stopped outside any place this long or longer: long_stop
    "stop_radius_m": 150,            # "stopped" = every fix within this distance of where the stop began
    "corridor_dwell_s": 180,         # outside every corridor of the plan for this long
    "low_battery_mv": 3450,
    "late_after_s": 600,             # late: learned this long after the device time of the frame that showed it
    "renotify_s": 900,               # re-send unacknowledged critical alerts after this
    "max_hdop": 5.0,                 # fixes worse than this are not used for places
}


class CalendarError(ValueError):
    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")


@dataclass(frozen=True)
class Window:
    start: float  # unix seconds
    end: float

    def holds(self, t: float) -> bool:
        return self.start <= t <= self.end


@dataclass(frozen=True)
class Leg:
    name: str
    from_code: str
    to_code: str
    window: Window  # start = earliest departure, end = arrive by
    corridors: tuple[str, ...] = ()


@dataclass(frozen=True)
class SealPermit:
    place: str
    window: Window
    why: str


@dataclass(frozen=True)
class Plan:
    box: str
    tps: str
    legs: tuple[Leg, ...]
    seal: tuple[SealPermit, ...]
    district: str | None = None

    # computed once per plan (the rules ask for them with every position frame)
    @functools.cached_property
    def custody_points(self) -> frozenset[str]:
        return frozenset(c for leg in self.legs for c in (leg.from_code, leg.to_code))

    @functools.cached_property
    def corridors(self) -> frozenset[str]:
        return frozenset(c for leg in self.legs for c in leg.corridors)

    def describe(self, tz: dt.timezone) -> dict:
        """The plan as people read it (`segel places plan --json`): times local to `tz`."""
        def local(t: float) -> str:
            return dt.datetime.fromtimestamp(t, tz).strftime("%Y-%m-%d %H:%M")

        return {"box": self.box, "tps": self.tps, "district": self.district,
                "legs": [{"leg": lg.name, "from": lg.from_code, "to": lg.to_code, "depart": local(lg.window.start),
                          "arrive_by": local(lg.window.end), "corridors": list(lg.corridors)} for lg in self.legs],
                "seal": [{"place": sp.place, "open": local(sp.window.start), "close": local(sp.window.end),
                          "why": sp.why} for sp in self.seal]}


@dataclass(frozen=True)
class Calendar:
    name: str
    tz: dt.timezone
    election_day: dt.date | None
    legs: dict[str, Window]
    seal: dict[str, Window]
    by_ppk: dict[str, dict[str, Window]] = field(default_factory=dict)
    by_box: dict[str, dict[str, Window]] = field(default_factory=dict)  # leg names and "seal.<kind>"
    rules: dict[str, float] = field(default_factory=dict)


_OFFSET = re.compile(r"^(?:UTC)?([+-])(\d{1,2}):?(\d{2})?$")


def _tz(where: str, text: str) -> dt.timezone:
    t = text.strip().upper()
    if t in ("WITA",):
        return dt.timezone(dt.timedelta(hours=8), "WITA")
    if t == "WIB":
        return dt.timezone(dt.timedelta(hours=7), "WIB")
    if t == "WIT":
        return dt.timezone(dt.timedelta(hours=9), "WIT")
    m = _OFFSET.match(t)
    if not m:
        raise CalendarError(where, f"timezone {text!r}: use WIB, WITA, WIT or an offset like +08:00")
    sign = 1 if m.group(1) == "+" else -1
    return dt.timezone(sign * dt.timedelta(hours=int(m.group(2)), minutes=int(m.group(3) or 0)))


def _when(where: str, v: object, tz: dt.timezone) -> float:
    if isinstance(v, str):
        try:
            v = dt.datetime.fromisoformat(v.strip())
        except ValueError:
            raise CalendarError(where, f"{v!r} is not a date-time (2024-11-27T07:00 local time)") from None
    if isinstance(v, dt.datetime):
        if v.tzinfo is None:
            v = v.replace(tzinfo=tz)
        return v.timestamp()
    raise CalendarError(where, f"{v!r} is not a date-time (2024-11-27T07:00 local time)")


def _window(where: str, t: object, tz: dt.timezone, a: str, b: str) -> Window:
    if not isinstance(t, dict):
        raise CalendarError(where, f"expected a table with {a} and {b}")
    unknown = set(t) - {a, b}
    if unknown:
        raise CalendarError(where, f"unknown key(s) {', '.join(sorted(unknown))}; expected {a} and {b}")
    for k in (a, b):
        if k not in t:
            raise CalendarError(where, f"{k} is missing")
    w = Window(_when(f"{where}.{a}", t[a], tz), _when(f"{where}.{b}", t[b], tz))
    if w.end < w.start:
        raise CalendarError(where, f"{b} is before {a}")
    return w


def _named_windows(where: str, tbl: object, tz: dt.timezone) -> dict[str, Window]:
    if not isinstance(tbl, dict):
        raise CalendarError(where, "expected a table")
    out: dict[str, Window] = {}
    for k, v in tbl.items():
        if k in LEGS:
            out[k] = _window(f"{where}.{k}", v, tz, "depart", "arrive_by")
        elif k == "seal":
            if not isinstance(v, dict):
                raise CalendarError(f"{where}.seal", "expected a table of place kinds")
            for kind, w in v.items():
                if kind not in SEAL_PLACES:
                    raise CalendarError(f"{where}.seal.{kind}", f"seal place must be one of {', '.join(SEAL_PLACES)}")
                out[f"seal.{kind}"] = _window(f"{where}.seal.{kind}", w, tz, "open", "close")
        else:
            raise CalendarError(f"{where}.{k}", f"unknown leg; legs are {', '.join(LEGS)} (and seal)")
    return out


def parse_calendar(text: str, name: str = "<calendar>") -> Calendar:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise CalendarError(name, f"not TOML: {e}") from None
    known = {"name", "timezone", "election_day", "legs", "seal", "ppk", "box", "rules"}
    unknown = set(doc) - known
    if unknown:
        raise CalendarError(name, f"unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}")
    tz = _tz(f"{name}: timezone", str(doc.get("timezone", "WITA")))
    legs_tbl = doc.get("legs", {})
    legs = {k: w for k, w in _named_windows(f"{name}: legs", legs_tbl, tz).items()}
    seal: dict[str, Window] = {}
    for kind, w in (doc.get("seal") or {}).items():
        if kind not in SEAL_PLACES:
            raise CalendarError(f"{name}: seal.{kind}", f"seal place must be one of {', '.join(SEAL_PLACES)}")
        seal[kind] = _window(f"{name}: seal.{kind}", w, tz, "open", "close")
    by_ppk = {code: _named_windows(f"{name}: ppk.{code}", t, tz) for code, t in (doc.get("ppk") or {}).items()}
    by_box = {b: _named_windows(f"{name}: box.{b}", t, tz) for b, t in (doc.get("box") or {}).items()}
    rules = dict(doc.get("rules") or {})
    for k, v in rules.items():
        if k not in DEFAULT_RULES:
            raise CalendarError(f"{name}: rules.{k}", f"unknown rule setting; known: {', '.join(DEFAULT_RULES)}")
        if not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0:
            raise CalendarError(f"{name}: rules.{k}", f"{v!r} must be a number >= 0")
    eday = doc.get("election_day")
    if eday is not None and not isinstance(eday, dt.date):
        raise CalendarError(f"{name}: election_day", f"{eday!r} is not a date (2024-11-27)")
    return Calendar(str(doc.get("name", name)), tz, eday, legs, seal, by_ppk, by_box, {k: float(v) for k, v in rules.items()})


def load_calendar(path: str | Path) -> Calendar:
    p = Path(path)
    return parse_calendar(p.read_text(encoding="utf-8"), p.name)


CALENDAR_TABLE = ("CREATE TABLE IF NOT EXISTS custody_calendar (id INTEGER PRIMARY KEY CHECK (id = 1), "
                  "name TEXT NOT NULL, text TEXT NOT NULL, loaded_at REAL NOT NULL)")


def store_calendar(conn: sqlite3.Connection, path: str | Path) -> Calendar:
    """Load a calendar file and keep its text in the database, so reports and exports made from the
    database alone know the plans and the time zone (the judge's calendar is the last one loaded)."""
    import time

    p = Path(path)
    text = p.read_text(encoding="utf-8")
    cal = parse_calendar(text, p.name)
    conn.execute(CALENDAR_TABLE)
    conn.execute("INSERT INTO custody_calendar(id, name, text, loaded_at) VALUES (1, ?, ?, ?) ON CONFLICT(id) DO "
                 "UPDATE SET name = excluded.name, text = excluded.text, loaded_at = excluded.loaded_at",
                 (p.name, text, time.time()))
    return cal


def stored_calendar(conn: sqlite3.Connection) -> Calendar | None:
    conn.execute(CALENDAR_TABLE)
    row = conn.execute("SELECT name, text FROM custody_calendar WHERE id = 1").fetchone()
    return parse_calendar(row[1], row[0]) if row else None


class PlanError(ValueError):
    pass


def _chain(places: dict[str, Place], tps: str) -> dict[str, str]:
    """{kind: code} for the TPS and its ancestors."""
    t = places.get(tps)
    if t is None:
        raise PlanError(f"TPS {tps!r} is not a known place: import places first")
    if t.kind != TPS:
        raise PlanError(f"{tps!r} is a {t.kind}, not a TPS")
    out = {TPS: tps}
    cur = t
    while cur.parent:
        cur = places[cur.parent]
        out[cur.kind] = cur.code
    for need in (PPS, PPK, WAREHOUSE):
        if need not in out:
            raise PlanError(f"TPS {tps}: no {need} above it in the place hierarchy")
    return out


def corridor_map(places: dict[str, Place]) -> dict[frozenset[str], tuple[str, ...]]:
    """Corridors by the (unordered) pair of places they connect."""
    out: dict[frozenset[str], list[str]] = {}
    for p in places.values():
        if p.kind == CORRIDOR and isinstance(p.shape, Corridor) and p.shape.from_code and p.shape.to_code:
            out.setdefault(frozenset((p.shape.from_code, p.shape.to_code)), []).append(p.code)
    return {k: tuple(sorted(v)) for k, v in out.items()}


def make_plan(box: str, tps: str, places: dict[str, Place], cal: Calendar,
              corridors: dict[frozenset[str], tuple[str, ...]] | None = None) -> Plan:
    """The plan of one box: legs from the calendar, staged by its PPK, overridden for the box."""
    chain = _chain(places, tps)
    corridors = corridor_map(places) if corridors is None else corridors
    windows: dict[str, Window] = dict(cal.legs)
    windows.update({f"seal.{k}": w for k, w in cal.seal.items()})
    windows.update(cal.by_ppk.get(chain[PPK], {}))
    windows.update(cal.by_box.get(box, {}))
    legs = []
    for name in LEGS:
        w = windows.get(name)
        if w is None:
            continue
        a, b = (chain[k] for k in _LEG_ENDS[name])
        legs.append(Leg(name, a, b, w, corridors.get(frozenset((a, b)), ())))
    why = {TPS: "voting and counting at its TPS", PPK: "recapitulation at its PPK",
           PPS: "handover at its PPS", WAREHOUSE: "storage at the warehouse"}
    seal = tuple(SealPermit(chain[k], windows[f"seal.{k}"], why[k]) for k in SEAL_PLACES if f"seal.{k}" in windows)
    return Plan(box, tps, tuple(legs), seal, chain[PPK])


def override(plan: Plan, leg: str | None = None, window: Window | None = None,
             permit: SealPermit | None = None) -> Plan:
    """A per-box change made in code: replace one leg's window, or add a seal permit."""
    legs = tuple(replace(lg, window=window) if lg.name == leg and window else lg for lg in plan.legs)
    seal = plan.seal + ((permit,) if permit else ())
    return replace(plan, legs=legs, seal=seal)
