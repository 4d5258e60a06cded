"""The regency's capture: what the nation needs lands in national_outbox in the transaction that causes it."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from segel import store
from segel.custody import actions
from segel.custody import alerts as al
from segel.national import capture, model

from tests.national import regency


def _install(conn: sqlite3.Connection) -> None:
    capture.install(conn, position_interval_s=900)


def test_frames_through_the_real_pipeline_become_items_in_order(tmp_path: Path) -> None:
    r = regency.make(tmp_path, boxes=2, install=_install)
    box = sorted(r.trackers)[0]
    r.drive(box, legs=2)
    items = capture.items(r.conn)
    seqs = [i["seq"] for i in items]
    assert seqs == list(range(1, len(seqs) + 1))  # no gaps, commit order
    kinds = {i["kind"] for i in items}
    assert {"box", "custody", "position", "alert"} <= kinds
    # both pairings, with the district the TPS belongs to (TPS -> PPS -> PPK)
    boxes = {i["subject"]: i["body"] for i in items if i["kind"] == "box"}
    assert set(boxes) == set(r.trackers)
    assert all(b["district"] == "64.08.04" and b["device"] for b in boxes.values())
    # the box arrived at its PPK and left the warehouse: custody items for it, in device-time order
    mine = [i["body"] for i in items if i["kind"] == "custody" and i["subject"] == box]
    findings = [(b["finding"], b["place_kind"]) for b in mine]
    assert ("arrived", "ppk") in findings and ("exit", "warehouse") in findings
    # every alert lifecycle row of the regency is an item, and nothing else is
    history = r.conn.execute("SELECT alert_id, event FROM alert_history ORDER BY rowid").fetchall()
    got = [(i["body"]["alert"]["id"], i["body"]["event"]) for i in items if i["kind"] == "alert"]
    assert got == [(a, e) for a, e in history]
    # positions: at most one per 15 minutes of device time, the first one included
    ts = [i["body"]["t"] for i in items if i["kind"] == "position" and i["subject"] == box]
    assert len(ts) >= 5 and all(b - a >= 900 for a, b in zip(ts, ts[1:]))
    sent = r.conn.execute("SELECT COUNT(*) FROM national_marks").fetchone()[0]
    assert sent == 1  # only the driven box has fixes


def test_operator_actions_from_another_connection_are_captured(tmp_path: Path) -> None:
    r = regency.make(tmp_path, boxes=1, install=_install)
    r.conn.execute("BEGIN IMMEDIATE")
    row, _ = al.raise_alert(r.conn, kind="seal_unauthorised", subject="B1", key="k", now=1000.0, device_time=990.0, box="B1")
    r.conn.execute("COMMIT")
    other = store.connect(r.db)  # `segel alerts ack` from a shell
    actions.acknowledge(other, row["id"], "sari", "team on its way", now=1100.0)
    actions.resolve(other, row["id"], "sari", "seal replaced, witness present", now=1200.0)
    alerts = [i["body"] for i in capture.items(r.conn, ["alert"]) if i["subject"] == "B1"]
    assert [a["event"] for a in alerts] == ["raised", "acknowledged", "resolved"]
    assert alerts[1]["by"] == "sari" and alerts[1]["alert"]["state"] == "acknowledged"
    assert alerts[2]["alert"]["resolve_note"] == "seal replaced, witness present"


def test_an_item_rolls_back_with_the_change_that_caused_it(tmp_path: Path) -> None:
    conn = store.connect(tmp_path / "segel.db")
    capture.install(conn)
    before = capture.last_seq(conn)
    conn.execute("BEGIN IMMEDIATE")
    al.raise_alert(conn, kind="case_opened", subject="B9", key="k", now=1.0, device_time=1.0, box="B9")
    assert capture.last_seq(conn) == before + 1
    conn.execute("ROLLBACK")
    assert capture.last_seq(conn) == before and capture.items(conn, ["alert"]) == []
    conn.execute("BEGIN IMMEDIATE")
    al.raise_alert(conn, kind="case_opened", subject="B9", key="k", now=2.0, device_time=2.0, box="B9")
    conn.execute("COMMIT")
    assert [i["seq"] for i in capture.items(conn)] == [before + 1]  # the rolled-back number is not a gap


def test_first_install_queues_what_already_exists_and_a_second_one_does_not(tmp_path: Path) -> None:
    r = regency.make(tmp_path, boxes=2)  # paired and judged before the nation was configured
    r.drive(sorted(r.trackers)[0], legs=1)
    snap = capture.install(r.conn)
    assert snap["box"] == 2 and snap["custody"] > 0 and snap["alert"] > 0
    items = capture.items(r.conn)
    assert [i["body"]["event"] for i in items if i["kind"] == "alert"] == ["snapshot"] * snap["alert"]
    assert capture.install(r.conn) == {}
    assert len(capture.items(r.conn)) == len(items)


def test_a_withdrawn_finding_is_an_item_too(tmp_path: Path) -> None:
    conn = store.connect(tmp_path / "segel.db")
    capture.install(conn)
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO judge_devices(device, box, first_rx, last_rx) VALUES (5, 'B5', 0, 0)")
    conn.execute("INSERT INTO judge_findings(device, key, counter, kind, place, t, raised_at) "
                 "VALUES (5, 'enter|P|100|', 3, 'enter', 'P', 100, 101)")
    conn.execute("DELETE FROM judge_findings WHERE device = 5")
    conn.execute("COMMIT")
    got = [(i["subject"], i["body"]["finding"], i["body"]["withdrawn"]) for i in capture.items(conn, ["custody"])]
    assert got == [("B5", "enter", False), ("B5", "enter", True)]


def test_signed_ledger_checkpoints_and_their_key_are_items(tmp_path: Path) -> None:
    from segel.custody import checkpoints, ledger

    conn = store.connect(tmp_path / "segel.db")
    capture.install(conn)
    key = checkpoints.create_key(tmp_path / "signing.key")
    conn.execute("BEGIN IMMEDIATE")
    ledger.append(conn, "B1", 100.0, 99.0, "frame", {"lat": 0.5})
    ledger.append(conn, "B1", 160.0, 159.0, "frame", {"lat": 0.6})
    checkpoints.make(conn, key, "kutim", 200.0)
    conn.execute("UPDATE ledger_checkpoints SET published_ms = 1")  # publishing later is not a new checkpoint
    conn.execute("COMMIT")
    keys = capture.items(conn, ["signing_key"])
    cps = capture.items(conn, ["checkpoint"])
    assert [k["body"]["key_id"] for k in keys] == [key.key_id] and keys[0]["body"]["public_key"] == key.public_hex
    assert len(cps) == 1 and cps[0]["subject"] == "B1" and cps[0]["body"]["seq"] == 1
    assert keys[0]["seq"] < cps[0]["seq"]  # the key travels before what it signed
    assert checkpoints.checkpoint_ok(key.public_hex, cps[0]["body"])


def test_pending_serialises_items_as_the_message_carries_them(tmp_path: Path) -> None:
    conn = store.connect(tmp_path / "segel.db")
    capture.install(conn)
    conn.execute("BEGIN IMMEDIATE")
    for i in range(5):
        al.raise_alert(conn, kind="low_battery", subject=f"B{i}", key="k", now=float(i), device_time=float(i), box=f"B{i}")
    conn.execute("COMMIT")
    batch = capture.pending(conn, 2, 10)
    assert [s for s, _ in batch] == [3, 4, 5]
    msg = model.decode(model.encode("64.08", "Kutai Timur", 10.0, [t for _, t in batch]))
    assert [i.seq for i in msg.items] == [3, 4, 5] and msg.items[0].body["alert"]["subject"] == "B2"
    assert len(capture.pending(conn, 0, 10, max_bytes=1)) == 1  # at least one item, however large


def test_summary_counts_districts(tmp_path: Path) -> None:
    r = regency.make(tmp_path, boxes=2, install=_install)
    r.drive(sorted(r.trackers)[0], legs=2)
    s = capture.summary(r.conn)
    d = s["64.08.04"]
    assert d["boxes"] == 2 and sum(d["states"].values()) == 2
    assert d["states"].get("unknown") == 1  # the box whose tracker never spoke
    assert capture.enqueue_summary(r.conn, "64.08", "Kutai Timur", 1.0) is True
    assert capture.enqueue_summary(r.conn, "64.08", "Kutai Timur", 2.0) is False  # unchanged: not sent again
    body = capture.items(r.conn, ["summary"])[0]["body"]
    assert body["regency"] == "64.08" and json.dumps(body["districts"]) == json.dumps(s)


@pytest.mark.parametrize("bad", ["6408x", "64", "64.00", "", "6.408"])
def test_regency_codes_are_checked(bad: str) -> None:
    from segel.national import codes

    with pytest.raises(codes.CodeError):
        codes.parse(bad)


@pytest.mark.parametrize("section, key, words", [
    ({"regency": "64.00", "urls": ["mqtt://h:1883"]}, "national.regency", "province code"),
    ({"regency": "Kutai Timur", "urls": ["mqtt://h:1883"]}, "national.regency", "not a regency code"),
    ({"regency": "64.08", "urls": []}, "national.urls", "no national node"),
    ({"regency": "64.08", "urls": ["http://h"]}, "national.urls", "must start with mqtt://"),
])
def test_a_bad_national_section_names_its_key(section: dict, key: str, words: str) -> None:
    from segel.config import ConfigError, NationalSection
    from segel.national import uplink

    with pytest.raises(ConfigError) as e:
        uplink.check(NationalSection(**section), "segel.toml")
    assert e.value.key == key and words in str(e.value) and "segel.toml" in str(e.value)
