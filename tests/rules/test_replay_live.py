"""Replay gives what the live gateway gave: a Kutai Timur rehearsal (the fleet simulator, the
real gateway and the custody judge on a broker) is recorded, then `segel replay` runs the
recording offline; the two alert sets are the same, alert for alert."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from segel.recording.replay import replay
from segel.registry import load_fleet_secret

pytestmark = pytest.mark.slow
KUTIM = Path(__file__).resolve().parents[2] / "scenarios" / "kutai-timur"


def test_replay_of_a_rehearsal_reproduces_its_alerts(tmp_path):
    if not (KUTIM / "scenario.toml").exists():
        pytest.skip("scenario data not present")
    segel = Path(sys.executable).parent / "segel"
    work = tmp_path / "sim"
    r = subprocess.run([str(segel), "simulate", str(KUTIM), "--boxes", "8", "--workdir", str(work), "--json"],
                       capture_output=True, text=True, timeout=600)
    summary = json.loads(r.stdout)
    assert summary["ok"], r.stderr[-2000:]
    db = sqlite3.connect(work / "segel.db")
    live = set(db.execute("SELECT kind, box, place, device_time, late FROM alerts").fetchall())
    db.close()
    assert {k for k, *_ in live} >= {"arrived", "seal_unauthorised", "forged_frame", "wrong_tps"}
    from segel.sim import scenario as scn_mod

    interval = float(scn_mod.load(KUTIM).settings.report_interval_s)  # what the rehearsal's judge was given
    alerts = list(replay(work / "recordings", load_fleet_secret(work / "fleet.key"),
                         places=[KUTIM / "places.csv", KUTIM / "corridors.geojson"], boxes=work / "boxes.csv",
                         calendar=KUTIM / "calendar.toml", settings={"report_interval_s": interval}, tick_every=600))
    again: set[tuple] = set()
    withdrawn = {a["id"] for a in alerts if a["event"] == "withdrawn"}
    for a in alerts:
        if a["event"] == "raised":
            again.add((a["kind"], a["box"], a["place"], a["device_ts"], int(a["late"])))
    assert again == live, (sorted(again ^ live)[:5], withdrawn)
