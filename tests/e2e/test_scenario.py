"""The Kutai Timur scenario data and the itineraries built from it (fast, no servers)."""

from __future__ import annotations

import collections
import importlib.util
import sys
from pathlib import Path

import pytest
from segel.custody.plan import LEGS
from segel.sim import scenario as scn_mod
from segel.sim.itinerary import Builder, dist_m

ROOT = Path(__file__).resolve().parents[2]
KUTIM = ROOT / "scenarios" / "kutai-timur"


@pytest.fixture(scope="module")
def scn() -> scn_mod.Scenario:
    return scn_mod.load(KUTIM)


def test_generator_reproduces_the_committed_files() -> None:
    spec = importlib.util.spec_from_file_location("make_kutim", ROOT / "tools" / "make_kutim.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules["make_kutim"] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    for name, text in mod.render().items():
        assert (KUTIM / name).read_text(encoding="utf-8") == text, f"{name} is stale: python tools/make_kutim.py"


def test_the_district_as_it_was(scn: scn_mod.Scenario) -> None:
    kinds = collections.Counter(p.kind for p in scn.places.values())
    assert kinds["warehouse"] == 1 and kinds["ppk"] == 18 and kinds["pps"] == 141 and kinds["tps"] == 701
    assert len(scn.boxes) == 1402
    assert collections.Counter(b.contest for b in scn.boxes) == {"governor": 701, "regent": 701}
    tps_by_district = collections.Counter(p.parent[:8] for p in scn.places.values() if p.kind == "tps")
    # Sangatta Utara holds about 30.1 % of the voters (2019 DPS shares), Busang 1.5 %
    assert 205 <= tps_by_district["64.08.04"] <= 215
    assert 9 <= tps_by_district["64.08.06"] <= 12
    # every village has at least one TPS, and no two TPS overlap
    assert all(any(c.startswith(v) for c in scn.places if scn.places[c].kind == "tps")
               for v, p in scn.places.items() if p.kind == "pps")


def test_staged_calendar_farthest_first(scn: scn_mod.Scenario) -> None:
    cal = scn.calendar
    day = {code: w["warehouse_to_ppk"].start for code, w in cal.by_ppk.items()}
    assert day["64.08.11"] < day["64.08.02"] < day["64.08.14"] < day["64.08.04"]  # Sandaran H-4 ... Sangatta Utara H-1
    assert cal.election_day is not None and str(cal.election_day) == "2024-11-27"
    assert cal.tz.utcoffset(None).total_seconds() == 8 * 3600  # type: ignore[union-attr]


def test_itineraries_follow_the_plans(scn: scn_mod.Scenario) -> None:
    b = Builder(scn)
    for box in scn.boxes[::37]:
        it = b.build(box)
        plan = scn.plan(box)
        assert [leg.name for leg in plan.legs] == list(LEGS)
        times = [t for t, _, _ in it.route]
        assert times == sorted(times)
        # at its TPS on election day while the seal is opened there, and back home at the end
        tps = scn.places[box.tps].shape
        opened = [t for t, _n, is_open in it.seal if is_open]
        assert opened, box.box
        for t in opened[:2]:
            assert dist_m(it.position(t), (tps.lat, tps.lon)) < 50, box.box  # type: ignore[union-attr]
        for leg in plan.legs:  # each leg's destination reached before its window closes
            dest = scn.places[leg.to_code].shape
            arrived = [t for t, la, lo in it.route if dist_m((la, lo), (dest.lat, dest.lon)) < 5]  # type: ignore[union-attr]
            assert arrived and min(t for t in arrived if t >= leg.window.start - 86400 * 7) <= leg.window.end


def test_incidents_name_real_alert_kinds(scn: scn_mod.Scenario) -> None:
    kinds = {i.kind for i in scn.incidents}
    assert kinds == set(scn_mod.INCIDENT_KINDS)
    from segel.custody.alerts import KINDS

    assert all(i.alert in KINDS for i in scn.incidents)


def test_the_timetable_leaves_every_arrival_time_for_its_two_fixes(scn: scn_mod.Scenario) -> None:
    """An arrival is recorded on the second fix inside a place. Every box that no incident delays
    stays at each custody point at least two report intervals (two wakes inside it), and gets there
    at least two intervals before the leg's window closes (both fixes in time, whatever the phase
    of its wakes). So the behind_schedule alerts of a full run do not come from the timetable: they
    come from incidents and from GNSS dropouts at one of a stay's wakes (docs/demo.md)."""
    ri = scn.settings.report_interval_s
    b = Builder(scn)
    delayed = {i.box for i in scn.incidents if i.kind in ("wrong_tps", "detour", "dead_zone", "silent")}
    delayed |= {box.box for box in scn.boxes if scn.district_of(box) == "64.08.06"}  # the dead-zone convoy
    checked = 0
    for box in scn.boxes:
        if box.box in delayed:
            continue
        it = b.build(box)
        stays = [(t, place, nxt[0]) for (t, ph, place), nxt in zip(it.phases, it.phases[1:] + [(it.end, "", "")])
                 if ph not in ("transit", "returning", "warehouse")]
        for leg in scn.plan(box).legs:
            t, _place, until = min((s for s in stays if s[1] == leg.to_code and s[0] >= leg.window.start),
                                   key=lambda s: s[0])
            assert until - t >= 2 * ri, (box.box, leg.name)
            assert t + 2 * ri <= leg.window.end, (box.box, leg.name)
            checked += 1
    assert checked >= 6 * (len(scn.boxes) - 60)
