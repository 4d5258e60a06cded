"""Alert lifecycle, re-notification, InfluxDB points and the custody ledger."""

from __future__ import annotations

import pytest
from segel.custody import alerts as al
from segel.custody import ledger
from segel.protocol import SealEvent

from tests.rules.world import T1, K, World, wita

DEV = 0x000101


def cut_twice(w: World) -> None:
    t0 = wita("2024-11-24T22:00:00")
    w.send(w.seal_frame(DEV, t0, SealEvent.LOOP_OPEN, K, seq=1), t0 + 5)
    w.send(w.seal_frame(DEV, t0 + 600, SealEvent.LOOP_OPEN, K, seq=2), t0 + 605)


def test_one_open_alert_per_box_and_kind(tmp_path):
    w = World.make(tmp_path)
    cut_twice(w)
    assert [a["event"] for a in w.alerts] == ["raised", "repeated"]
    (row,) = al.listing(w.conn, kind="seal_unauthorised")
    assert row["occurrences"] == 2 and row["state"] == "open"
    assert w.alerts[0]["id"] == w.alerts[1]["id"]


def test_open_acknowledged_resolved(tmp_path):
    w = World.make(tmp_path)
    cut_twice(w)
    aid = w.alerts[0]["id"]
    now = wita("2024-11-24T22:30:00")
    a = al.acknowledge(w.conn, aid, "Sari (command post)", "police on the way", now)
    assert (a["state"], a["acknowledged_by"], a["ack_note"]) == ("acknowledged", "Sari (command post)", "police on the way")
    assert a["acknowledged_at"] == "2024-11-24T14:30:00Z"
    with pytest.raises(al.AlertError, match="only an open alert can be acknowledged"):
        al.acknowledge(w.conn, aid, "Sari", None, now)
    # still the one open alert of its kind: a third cut is counted on it
    t = wita("2024-11-24T23:00:00")
    w.send(w.seal_frame(DEV, t, SealEvent.LOOP_OPEN, K, seq=3), t + 5)
    assert al.get(w.conn, aid)["occurrences"] == 3
    r = al.resolve(w.conn, aid, "Sari", "seal replaced, box re-sealed with witnesses", now + 3600)
    assert r["state"] == "resolved" and r["resolved_by"] == "Sari"
    with pytest.raises(al.AlertError, match="already resolved"):
        al.resolve(w.conn, aid, "Sari", None, now)
    with pytest.raises(al.AlertError, match="no alert 'AL-nope'"):
        al.acknowledge(w.conn, "AL-nope", "x", None, now)
    t = wita("2024-11-25T01:00:00")
    w.send(w.seal_frame(DEV, t, SealEvent.LOOP_OPEN, K, seq=4), t + 5)
    assert w.alerts[-1]["event"] == "raised" and w.alerts[-1]["id"] != aid
    assert [h[1] for h in al.history(w.conn, aid)] == ["raised", "repeated", "acknowledged", "repeated", "resolved"]


def test_unacknowledged_critical_alerts_are_sent_again(tmp_path):
    w = World.make(tmp_path, settings={"renotify_s": 900, "report_interval_s": 86400})
    t0 = wita("2024-11-24T22:00:00")
    w.send(w.seal_frame(DEV, t0, SealEvent.LOOP_OPEN, K), t0 + 5)
    w.send(w.seal_frame(0x000101, t0 + 60, SealEvent.CASE_OPEN, K, seq=2), t0 + 65)
    case_id = w.alerts[-1]["id"]
    al.acknowledge(w.conn, case_id, "Budi", None, t0 + 100)

    def renotified(now: float) -> list[tuple[str, str, int]]:
        return [(a["event"], a["kind"], a["notify_count"]) for a in w.tick(now) if a["event"] == "renotify"]
    assert renotified(t0 + 800) == []
    assert renotified(t0 + 910) == [("renotify", "seal_unauthorised", 2)]  # not the acknowledged case_opened
    assert renotified(t0 + 1000) == []
    assert renotified(t0 + 1900) == [("renotify", "seal_unauthorised", 3)]


def test_alert_and_custody_points_go_to_the_outbox(tmp_path):
    w = World.make(tmp_path)
    t0 = wita("2024-11-26T14:00:00")
    for i in range(3):
        w.send(w.pos_frame(DEV, t0 + 300 * i, T1), t0 + 300 * i + 5)
    w.send(w.seal_frame(DEV, t0 + 1000, SealEvent.LOOP_OPEN, T1), t0 + 1005)
    lines = [r[0] for r in w.conn.execute("SELECT line FROM outbox")]
    alert_lines = [ln for ln in lines if ln.startswith("alert,")]
    assert any("kind=seal_unauthorised" in ln and "severity=critical" in ln and "state=open" in ln for ln in alert_lines)
    assert any(ln.startswith("custody,") and "event=enter" in ln and 'place="T1"' in ln for ln in lines)
    assert any(ln.startswith("box_state,") and "state=at_place" in ln for ln in lines)


def test_ledger_is_a_verifiable_hash_chain(tmp_path):
    w = World.make(tmp_path)
    cut_twice(w)
    v = ledger.verify(w.conn, "BOX-1")
    assert v.ok and v.entries >= 4
    entries = ledger.export(w.conn, "BOX-1")
    assert entries[0]["prev"] == ledger.GENESIS and entries[1]["prev"] == entries[0]["hash"]
    assert entries[0]["event"] == "paired"  # who put which tracker on the box comes first
    first_frame = next(e["seq"] for e in entries if e["event"] == "frame")
    w.conn.execute("UPDATE custody_ledger SET body = replace(body, '\"seq\":1', '\"seq\":9') WHERE box='BOX-1' AND seq=?",
                   (first_frame,))
    bad = ledger.verify(w.conn, "BOX-1")
    assert not bad.ok and bad.first_bad == first_frame and "altered" in bad.reason
    w2 = World.make(tmp_path / "x" if (tmp_path / "x").mkdir() is None else tmp_path)
    cut_twice(w2)
    w2.conn.execute("DELETE FROM custody_ledger WHERE box='BOX-1' AND seq=1")
    gone = ledger.verify(w2.conn, "BOX-1")
    assert not gone.ok and gone.first_bad == 1 and "missing" in gone.reason


def test_reimaged_tracker_starts_afresh(tmp_path):
    """After a new key epoch the tracker counts from 1 again; its frames are judged, not ignored."""
    from segel import protocol
    from segel.registry import Registry

    from tests.rules.world import SECRET

    w = World.make(tmp_path)
    t0 = wita("2024-11-24T22:00:00")
    w.send(w.pos_frame(DEV, t0, K, counter=1), t0 + 5)
    w.send(w.pos_frame(DEV, t0 + 300, K, counter=2), t0 + 305)
    Registry(w.conn).bump_epoch(DEV)
    keys = protocol.DeviceKeys.from_device_key(protocol.derive_device_key(SECRET, DEV, 1))
    f = protocol.encode(keys, DEV, 1, t0 + 900, protocol.Seal(int(SealEvent.LOOP_OPEN), 1, 0x0B, K[0], K[1]))
    w.send(f, t0 + 905)
    assert [a["kind"] for a in w.alerts if a["event"] == "raised"] == ["arrived", "seal_unauthorised"]
