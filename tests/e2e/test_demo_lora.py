"""`segel simulate --uplink lora` end to end, scaled down: every tracker's wake cycle sends through
the firmware's LoRa link on a simulated radio, over the lorasim channel (collisions, fading,
range), to base stations running the firmware's base-station role behind ptys, each read by a
real `segel bridge` publishing to the embedded broker; the real gateway and custody judge answer
through the bridges. Nothing is mocked but the radio chip.

Checks what the LoRa path must deliver: every scripted incident raised its alert, no unscripted
critical alert, every stored frame came through a bridge topic with its receive metadata, frames
heard by two base stations were stored once (with both receptions counted), and the air really
did lose frames that the trackers then re-sent."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from segel.cli import main

ROOT = Path(__file__).resolve().parents[2]
KUTIM = ROOT / "scenarios" / "kutai-timur"
BOXES = 18

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]


def test_simulate_over_lora_base_stations_and_bridges(tmp_path: Path) -> None:
    work = tmp_path / "sim"
    res = CliRunner().invoke(main, ["simulate", str(KUTIM), "--uplink", "lora", "--boxes", str(BOXES), "--json",
                                    "--workdir", str(work)])
    assert res.exit_code == 0, res.output[-3000:]
    s = json.loads(res.stdout[res.stdout.index("{"):])
    assert s["ok"] is True and s["boxes"] == BOXES
    incidents = {i["id"]: i for i in s["incidents"]}
    assert len(incidents) == 7 and all(i["raised"] for i in incidents.values()), incidents
    assert incidents["dead-zone"]["late"] is True
    assert s["unscripted_critical"] == []
    assert s["delivered_to_tps"] == BOXES - 1

    r = s["radio"]
    assert r["uplink"] == "lora" and r["sf"] == 10 and r["base_stations"] == sum(r["sites"].values())
    assert r["sites"]["warehouse"] == 1 and r["sites"]["ppk"] == 18
    # the air did its job: most frames heard, some lost (fading, range), the dead zone heard nothing,
    # and the trackers' acks came back into their receive windows
    assert 0.6 < r["delivery_ratio"] < 1.0
    assert r["faded"] + r["too_weak"] + r["collided"] > 0 and r["dead_zone"] > 0
    assert r["heard_by_two_or_more"] > 0
    assert r["acks_delivered"] > 0.8 * r["heard"]
    assert s["frames_unheard"] > 0  # re-sent later from the flash queue

    g = s["gateway"]
    db = sqlite3.connect(work / "segel.db")
    # stored once each, every one through a bridge topic with the base station's rx metadata
    rows = db.execute("SELECT device_id, counter, rssi, snr, base_id, bridge_id, receptions FROM seen").fetchall()
    assert len(rows) == g["accepted"] == len({(d, c) for d, c, *_ in rows})
    assert all(bridge and base and rssi is not None and snr is not None for _, _, rssi, snr, base, bridge, _ in rows)
    bridges = set(r["per_bridge"])
    assert {b for *_, b, _ in rows} <= bridges and {b for *_, b, _ in rows} >= {"warehouse-kpu-6408"}
    # copies heard by two base stations reached the gateway more than once and were stored once
    # (the gateway's `received` also counts the bridges' status messages)
    assert g["accepted"] + g["duplicates"] + sum(g["rejected"].values()) <= g["received"]
    assert g["accepted"] < sum(n for *_, n in rows) <= g["accepted"] + g["duplicates"]
    assert g["duplicates"] >= r["heard_by_two_or_more"] > 0
    assert sum(1 for *_, n in rows if n >= 2) > 0
    # the InfluxDB lines in the outbox: rx points tagged with base station and bridge, more than
    # one for some frames (each copy is one point)
    rx = [ln for (ln,) in db.execute("SELECT line FROM outbox WHERE line LIKE 'rx,%'")]
    assert len(rx) > len(rows)
    assert all(",base=b0" in ln and ",bridge=" in ln and "rssi=" in ln for ln in rx)
    # bridge health became base_station points
    assert db.execute("SELECT count(*) FROM outbox WHERE line LIKE 'base_station,%'").fetchone()[0] >= len(bridges)
    # the attacker's frames went over the air too, and were rejected
    assert set(g["rejected"]) == {"bad_mac"}
