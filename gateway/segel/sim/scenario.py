"""A scenario on disk: places, corridors, boxes, calendar, incidents and simulation settings.

A scenario folder holds the same files an election office imports (docs/places.md,
docs/custody.md) plus `incidents.toml` and `scenario.toml` for the simulator (docs/scenario.md):

    places.csv  corridors.geojson  boxes.csv  calendar.toml  incidents.toml  scenario.toml
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

from segel.custody.plan import Calendar, Plan, corridor_map, load_calendar, make_plan
from segel.places import io as places_io
from segel.places.model import Place

# Alert kinds an incident may name (segel.custody.alerts.KINDS; checked when loading).
INCIDENT_KINDS = ("detour", "seal_cut", "authorised_opening", "wrong_tps", "silent", "dead_zone", "forged_frame")


class ScenarioError(ValueError):
    pass


@dataclass(frozen=True)
class Settings:
    """How the virtual fleet behaves ([simulation] in scenario.toml). Times are local (calendar tz)."""

    report_interval_s: int = 7200  # the trackers' configured report interval (docs/demo.md)
    status_interval_s: int = 6 * 3600
    power_on_before_s: int = 5400  # trackers are switched on and armed this long before departure
    road_kmh: float = 40.0  # average convoy speed on the road axes
    local_kmh: float = 25.0  # village roads
    sea_kmh: float = 15.0  # navy boat
    stagger_s: int = 3600  # departures of one leg spread over this long after the window opens
    min_stay_s: int | None = None  # at each custody point at least this long; None: 2.5 report intervals
    show_empty: str = "06:45"  # KPPS opens the box before voting to show it empty ...
    show_empty_close: str = "06:55"
    count_open: str = "13:05"  # ... and for the count
    count_close: str = "19:00"
    recap_open: str = "16:00"  # recapitulation at the PPK, the day after the election
    recap_close: str = "18:00"
    rearm_after_s: int = 300  # the technician re-arms the seal this long after it is closed again
    opening_spread_s: int = 600  # each box's opening starts up to this long after the scheduled time
    gnss_dropouts_per_day: float = 2.0  # short no-fix spells (forest, buildings)
    battery_mv: int = 4100  # a fresh cell
    battery_mv_per_day: float = 45.0  # drain at the report interval above
    end_after_s: int | None = None  # trackers stay on this long after the last box is back; None: 2.5 intervals


    @property
    def end_s(self) -> float:
        return float(self.end_after_s if self.end_after_s is not None else 2.5 * self.report_interval_s)

    @property
    def stay_s(self) -> float:
        return float(self.min_stay_s if self.min_stay_s is not None else 2.5 * self.report_interval_s)


@dataclass(frozen=True)
class Box:
    box: str
    tps: str
    contest: str | None


@dataclass(frozen=True)
class Incident:
    id: str
    kind: str
    alert: str
    box: str
    what: str
    at: float | None = None  # unix seconds
    params: dict = field(default_factory=dict)


@dataclass
class Scenario:
    root: Path
    name: str
    places: dict[str, Place]
    where: dict[str, str]
    modes: dict[str, list[str]]  # corridor code -> mode of each segment (road, sea)
    calendar: Calendar
    boxes: list[Box]
    incidents: list[Incident]
    settings: Settings
    plans: dict[str, Plan] = field(default_factory=dict)

    @property
    def tz(self) -> dt.tzinfo:
        return self.calendar.tz

    def plan(self, box: Box) -> Plan:
        p = self.plans.get(box.box)
        if p is None:
            cmap = self.__dict__.setdefault("_cmap", corridor_map(self.places))
            p = self.plans[box.box] = make_plan(box.box, box.tps, self.places, self.calendar, cmap)
        return p

    def district_of(self, box: Box) -> str:
        return self.plan(box).district or "?"

    def local(self, day: dt.date, hhmm: str) -> float:
        h, m = (int(x) for x in hhmm.split(":"))
        return dt.datetime(day.year, day.month, day.day, h, m, tzinfo=self.tz).timestamp()

    def files(self) -> dict[str, Path]:
        return {k: self.root / v for k, v in (("places", "places.csv"), ("corridors", "corridors.geojson"),
                                             ("boxes", "boxes.csv"), ("calendar", "calendar.toml"))}


def _when(v: object, tz: dt.tzinfo, where: str) -> float:
    if isinstance(v, str):
        v = dt.datetime.fromisoformat(v)
    if isinstance(v, dt.datetime):
        return (v if v.tzinfo else v.replace(tzinfo=tz)).timestamp()
    raise ScenarioError(f"{where}: {v!r} is not a date-time")


def load_incidents(path: Path, tz: dt.tzinfo, boxes: set[str]) -> list[Incident]:
    from segel.custody.alerts import KINDS

    if not path.exists():
        return []
    doc = tomllib.loads(path.read_text(encoding="utf-8"))
    out = []
    for i, d in enumerate(doc.get("incident", [])):
        where = f"{path.name}: incident {i + 1}"
        d = dict(d)
        try:
            iid, kind, alert, box, what = (d.pop(k) for k in ("id", "kind", "alert", "box", "what"))
        except KeyError as e:
            raise ScenarioError(f"{where}: {e.args[0]} is missing") from None
        if kind not in INCIDENT_KINDS:
            raise ScenarioError(f"{where}: kind {kind!r} is not one of {', '.join(INCIDENT_KINDS)}")
        if alert not in KINDS:
            raise ScenarioError(f"{where}: alert {alert!r} is not an alert kind ({', '.join(KINDS)})")
        if box not in boxes:
            raise ScenarioError(f"{where}: box {box!r} is not in boxes.csv")
        at = _when(d.pop("at"), tz, f"{where}: at") if "at" in d else None
        d.pop("district", None)
        out.append(Incident(iid, kind, alert, box, what, at, d))
    return out


def load_settings(path: Path) -> tuple[str, Settings]:
    if not path.exists():
        return path.parent.name, Settings()
    doc = tomllib.loads(path.read_text(encoding="utf-8"))
    sim = dict(doc.get("simulation", {}))
    known = {f.name for f in fields(Settings)}
    bad = set(sim) - known
    if bad:
        raise ScenarioError(f"{path.name}: [simulation] unknown key(s) {', '.join(sorted(bad))}; known: {', '.join(sorted(known))}")
    return str(doc.get("name", path.parent.name)), Settings(**sim)


def load(root: str | Path) -> Scenario:
    """Read and check a scenario folder; raises ScenarioError or the importers' errors."""
    root = Path(root)
    if not (root / "places.csv").exists():
        raise ScenarioError(f"{root}: not a scenario folder (no places.csv)")
    places_list, where = places_io.parse_file(root / "places.csv")
    modes: dict[str, list[str]] = {}
    cor = root / "corridors.geojson"
    if cor.exists():
        more, w2 = places_io.parse_file(cor)
        places_list += more
        where.update(w2)
        for feat in json.loads(cor.read_text(encoding="utf-8"))["features"]:
            pr = feat.get("properties") or {}
            if pr.get("modes"):
                modes[pr["code"]] = list(pr["modes"])
    places = {p.code: p for p in places_list}
    calendar = load_calendar(root / "calendar.toml")
    with open(root / "boxes.csv", newline="", encoding="utf-8-sig") as fh:
        boxes = [Box(r["box"], r["tps"], r.get("contest") or None) for r in csv.DictReader(fh)]
    for b in boxes:
        if b.tps not in places:
            raise ScenarioError(f"boxes.csv: box {b.box}: TPS {b.tps} is not in the places")
    name, settings = load_settings(root / "scenario.toml")
    incidents = load_incidents(root / "incidents.toml", calendar.tz, {b.box for b in boxes})
    return Scenario(root, name, places, where, modes, calendar, boxes, incidents, settings)


def boxes_csv_with_devices(scn: Scenario, boxes: list[Box], devices: dict[str, int]) -> str:
    """The boxes file an office imports (box, device, tps, contest) for the chosen boxes."""
    lines = ["box,device,tps,contest"]
    for b in boxes:
        lines.append(f"{b.box},{devices[b.box]:06x},{b.tps},{b.contest or ''}")
    return "\n".join(lines) + "\n"
