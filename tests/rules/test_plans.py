"""Calendar parsing (local time, errors naming the table) and plan generation at Kutai Timur scale."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from segel.custody.plan import make_plans
from segel.custody.plan import CalendarError, parse_calendar
from segel.places.io import parse_csv, parse_geojson

from tests.rules.world import CALENDAR, places, wita

KUTIM = Path(__file__).resolve().parents[2] / "scenarios" / "kutai-timur"


def test_local_time_is_wita_and_overrides_win():
    text = CALENDAR + """
[ppk."K1".ppk_to_pps]
depart = 2024-11-24T07:00:00
arrive_by = 2024-11-24T21:00:00
[box."BOX-9".ppk_to_pps]
depart = 2024-11-25T01:00:00+07:00
arrive_by = 2024-11-25T03:00:00+07:00
"""
    cal = parse_calendar(text)
    plans = make_plans({p.code: p for p in places()}, {"BOX-1": "T1", "BOX-9": "T1"}, cal)
    leg = {lg.name: lg for lg in plans["BOX-1"].legs}
    assert leg["warehouse_to_ppk"].window.end == wita("2024-11-23T23:00:00")  # 15:00 UTC
    assert leg["ppk_to_pps"].window.start == wita("2024-11-24T07:00:00")  # the PPK's staging
    assert {lg.name: lg for lg in plans["BOX-9"].legs}["ppk_to_pps"].window.start == wita("2024-11-25T02:00:00")
    assert leg["warehouse_to_ppk"].corridors == ("R-WK",)
    assert [(s.place, s.window.start) for s in plans["BOX-1"].seal] == [
        ("K1", wita("2024-11-28T08:00:00")), ("T1", wita("2024-11-27T06:00:00"))]


@pytest.mark.parametrize("text,msg", [
    ('[legs.warehose_to_ppk]\ndepart = 2024-11-23T06:00:00\narrive_by = 2024-11-23T23:00:00\n',
     "c.toml: legs.warehose_to_ppk: unknown leg"),
    ('[legs.ppk_to_pps]\ndepart = 2024-11-23T06:00:00\n', "c.toml: legs.ppk_to_pps: arrive_by is missing"),
    ('[legs.ppk_to_pps]\ndepart = 2024-11-23T06:00:00\narrive_by = 2024-11-22T06:00:00\n',
     "c.toml: legs.ppk_to_pps: arrive_by is before depart"),
    ('timezone = "Mars"\n', "timezone 'Mars': use WIB, WITA, WIT or an offset"),
    ('[rules]\nstop_minuts = 3\n', "c.toml: rules.stop_minuts: unknown rule setting"),
    ('[seal.kpps]\nopen = 2024-11-27T06:00:00\nclose = 2024-11-27T09:00:00\n', "c.toml: seal.kpps: seal place must be one of"),
])
def test_calendar_errors_name_the_table(text, msg):
    with pytest.raises(CalendarError, match=msg.replace("(", r"\(").replace(")", r"\)")):
        parse_calendar(text, "c.toml")


def test_kutai_timur_plans_for_every_box():
    if not (KUTIM / "calendar.toml").exists():
        pytest.skip("scenario data not present")
    ps, _ = parse_csv((KUTIM / "places.csv").read_text(), "places.csv")
    cs, _ = parse_geojson((KUTIM / "corridors.geojson").read_text(), "corridors.geojson")
    allp = {p.code: p for p in ps + cs}
    boxes = {}
    for line in (KUTIM / "boxes.csv").read_text().splitlines()[1:]:
        cols = line.split(",")
        boxes[cols[0]] = cols[1]
    cal = parse_calendar((KUTIM / "calendar.toml").read_text())
    t0 = time.perf_counter()
    plans = make_plans(allp, boxes, cal)
    assert time.perf_counter() - t0 < 5
    assert len(plans) == 1402
    # Sangatta Utara is distributed on H-1 (26 Nov), Busang on H-4 (23 Nov), in WITA
    su = next(p for b, p in plans.items() if b.startswith("64.08.04."))
    bu = next(p for b, p in plans.items() if b.startswith("64.08.06."))
    assert su.legs[0].window.start == wita("2024-11-26T06:00:00")
    assert bu.legs[0].window.start == wita("2024-11-23T06:00:00")
    assert all(p.legs[0].corridors for p in plans.values())  # every PPK has its road from the warehouse


def test_build_judge_loads_kutai_timur_in_bulk(tmp_path):
    """The demo's path: 861 places + corridors, 1,402 boxes paired with fresh trackers, plans."""
    if not (KUTIM / "calendar.toml").exists():
        pytest.skip("scenario data not present")
    from segel import store
    from segel.custody import build_judge

    conn = store.connect(tmp_path / "g.db")
    t0 = time.perf_counter()
    judge = build_judge(conn, places=[KUTIM / "places.csv", KUTIM / "corridors.geojson"], boxes=KUTIM / "boxes.csv",
                        calendar=KUTIM / "calendar.toml", assign=True)
    took = time.perf_counter() - t0
    assert len(judge.plans) == 1402 and took < 20
    assert conn.execute("SELECT COUNT(*) FROM boxes WHERE device_id IS NOT NULL").fetchone()[0] == 1402
    cal = parse_calendar((KUTIM / "calendar.toml").read_text())
    assert judge.settings["report_interval_s"] == cal.rules.get("report_interval_s", 300)  # the calendar's [rules]


def test_seal_windows_staged_per_ppk_and_per_box():
    text = CALENDAR + """
[ppk."K1".seal.ppk]
open = 2024-11-28T10:00:00
close = 2024-12-04T23:00:00
[box."BOX-2".seal.tps]
open = 2024-11-27T09:00:00
close = 2024-11-27T20:00:00
"""
    plans = make_plans({p.code: p for p in places()}, {"BOX-1": "T1", "BOX-2": "T1"}, parse_calendar(text))
    s1 = {s.place: s.window for s in plans["BOX-1"].seal}
    s2 = {s.place: s.window for s in plans["BOX-2"].seal}
    assert s1["K1"].start == wita("2024-11-28T10:00:00") and s1["T1"].start == wita("2024-11-27T06:00:00")
    assert s2["T1"].start == wita("2024-11-27T09:00:00") and s2["K1"].start == wita("2024-11-28T10:00:00")
