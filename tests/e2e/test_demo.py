"""`segel demo` end to end, scaled down: embedded amqtt broker, the real gateway and custody judge,
virtual trackers running the firmware's wake cycle on simulated hardware in a child process.

Checks what a user would notice: every scripted incident raised its alert (found in the gateway's
own database), no critical alert appeared that no incident explains, boxes reached their TPS
and came back, and the attacker's frames were rejected. A second run proves the check can fail.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from segel.cli import main
from segel.sim.demo import DemoOptions, run_demo

ROOT = Path(__file__).resolve().parents[2]
KUTIM = ROOT / "scenarios" / "kutai-timur"
BOXES = 18

pytestmark = pytest.mark.slow


def test_demo_scaled_down_raises_every_scripted_alert(tmp_path: Path) -> None:
    keep = tmp_path / "rehearsal"
    res = CliRunner().invoke(main, ["demo", "--boxes", str(BOXES), "--json", "--no-live", "--keep", str(keep)])
    assert res.exit_code == 0, res.output[-3000:]
    s = json.loads(res.stdout[res.stdout.index("{"):])
    assert s["boxes"] == BOXES and s["ok"] is True
    incidents = {i["id"]: i for i in s["incidents"]}
    assert set(incidents) == {"detour", "unauthorised-seal-cut", "authorised-opening", "wrong-tps",
                              "silent-tracker", "dead-zone", "forged-frame"}
    assert all(i["raised"] for i in incidents.values()), incidents
    assert incidents["dead-zone"]["late"] is True  # judged from frames uploaded after the dead zone
    assert s["unscripted_critical"] == []
    # the operator's console ran beside it, with a one-time account for this run
    assert re.search(r"Console: http://127\.0\.0\.1:\d+/  \(sign in as demo, one-time password [a-z0-9-]{23}\)",
                     res.output), res.output[:2000]
    # the same facts straight from the gateway's database
    db = sqlite3.connect(keep / "segel.db")
    assert db.execute("SELECT role FROM users WHERE username = 'demo'").fetchone() == ("admin",)
    for inc in incidents.values():
        assert inc["alert_ids"]
        for aid in inc["alert_ids"]:
            kind, = db.execute("SELECT kind FROM alerts WHERE id = ?", (aid,)).fetchone()
            assert kind == inc["alert"]
    crit_boxes = {b for (b,) in db.execute("SELECT box FROM alerts WHERE severity = 'critical'")}
    assert crit_boxes == {incidents["unauthorised-seal-cut"]["box"], incidents["forged-frame"]["box"]}
    # a box no incident touches follows its plan: only informational alerts (handovers, TPS openings)
    touched = {i["box"] for i in incidents.values()} | {
        b for (b,) in db.execute("SELECT box_id FROM boxes WHERE box_id LIKE '64.08.06.%'")}  # the Busang convoy
    others = db.execute(
        f"SELECT kind, box FROM alerts WHERE severity != 'info' AND box NOT IN ({','.join('?' * len(touched))})",
        tuple(touched)).fetchall()
    assert others == []
    # every box but the one whose battery was pulled reached its TPS and came back
    assert s["delivered_to_tps"] == BOXES - 1 and s["back_at_warehouse"] == BOXES - 1
    g = s["gateway"]
    assert g["accepted"] == s["frames_sent"] - g["duplicates"]
    assert g["rejected"] == {"bad_mac": 5}  # the attacker's five frames, nothing else
    assert s["frames_unheard"] > 0  # the dead zone swallowed frames that were re-sent later
    assert s["trackers_off"].get("battery pulled") == 1


def test_a_missing_alert_fails_the_rehearsal(tmp_path: Path) -> None:
    scn = tmp_path / "kutim-wrong"
    shutil.copytree(KUTIM, scn)
    text = (scn / "incidents.toml").read_text()
    # keep only the unauthorised seal cut, and claim it must raise a case-opened alert
    blocks = text.split("[[incident]]")
    cut = next(b for b in blocks if 'id = "unauthorised-seal-cut"' in b)
    (scn / "incidents.toml").write_text("[[incident]]" + cut.replace('alert = "seal_unauthorised"',
                                                                    'alert = "case_opened"'))
    out = io.StringIO()
    s = run_demo(DemoOptions(scenario=str(scn), boxes=1, live=False, json_out=True), out=out)
    assert json.loads(out.getvalue())["ok"] is False
    assert not s.ok
    assert [(i.id, i.raised) for i in s.incidents] == [("unauthorised-seal-cut", False)]
    # the cut seal is now an unscripted critical alert
    assert [r["kind"] for r in s.unscripted_critical] == ["seal_unauthorised"]


def test_demo_against_real_mosquitto_and_influxdb(tmp_path: Path, mosquitto, influxdb) -> None:
    from tests.servers import influx_query

    s = run_demo(DemoOptions(boxes=10, broker_url=mosquitto.url, influx_url=f"{influxdb.url}/segel", live=False,
                             json_out=True), out=io.StringIO())
    assert s.ok, s.to_json()

    def count(q: str) -> int:
        series = influx_query(influxdb, q, db="segel")["results"][0].get("series")
        return int(series[0]["values"][0][1]) if series else 0

    # every accepted frame is one point in InfluxDB, and the incidents' alerts are there too
    frames = sum(count(f"SELECT count(counter) FROM {m}") for m in ("position", "seal", "status"))
    assert frames == s.gateway["accepted"]
    for inc in s.incidents:
        assert count(f"SELECT count(alert_id) FROM alert WHERE kind = '{inc.alert}'") >= 1, inc.alert
