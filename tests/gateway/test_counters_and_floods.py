"""Counters that cannot run out in anger, and floods that cannot bury the operator (issue 12):
the real pipeline with the real custody judge, real frames and MACs.

- a tracker whose downlink counter is preset near its 24-bit end gets a warning alert; at the end
  only its acks stop (with an alert), its frames are still stored and the other trackers' acks go on;
- replaying an overheard frame again and again spends at most the re-ack budget;
- bad MACs are counted per tracker and per bridge, logged once per window, and crossing the
  threshold raises `bad_mac_flood` once."""

from __future__ import annotations

import logging
from pathlib import Path

from segel import protocol, store
from segel.custody import alerts as al
from segel.custody.judge import build_judge
from segel.edge import topics
from segel.edge.payloads import uplink
from segel.ingest.pipeline import Pipeline
from segel.messages import RxMeta

from tests.gateway.fleet import make_fleet


def pipeline(tmp_path: Path, **guard_kw) -> tuple[Pipeline, object]:
    f = make_fleet(tmp_path)
    judge = build_judge(f.conn)
    if not guard_kw:
        return Pipeline(f.conn, f.keyring, judges=[judge]), f
    from segel.ingest.guard import Guard

    return Pipeline(f.conn, f.keyring, judges=[judge], guard=Guard(**guard_kw)), f


def preset_down_counter(conn, dev: int, value: int) -> None:
    st = store.load_state(conn, dev)
    st.down_counter = value
    store.save_state(conn, st)


def open_alerts(conn, kind: str) -> list[dict]:
    return [a for a in al.listing(conn, kind=kind) if a["state"] in (al.OPEN, al.ACKNOWLEDGED)]


def test_a_downlink_counter_near_its_end_raises_a_warning(tmp_path: Path) -> None:
    from segel.ingest.acks import DOWN_WARN

    p, f = pipeline(tmp_path)
    p.process(uplink(1000.0, topics.tracker_up("000101"), f.frame(0x101, counter=1)))
    preset_down_counter(f.conn, 0x101, DOWN_WARN - 1)
    p = Pipeline(f.conn, f.keyring, judges=p.judges)  # (a fresh pipeline reads the preset state)
    r = p.process(uplink(1010.0, topics.tracker_up("000101"), f.frame(0x101, counter=2)))
    assert r.accepted and len(r.downlinks) == 1
    assert protocol.verify_and_decode(f.keys(0x101), r.downlinks[0].frame).header.counter == DOWN_WARN
    [warn] = open_alerts(f.conn, "downlink_counters_low")
    assert warn["device"] == "000101" and warn["severity"] == "warning"
    assert any(a["kind"] == "downlink_counters_low" for a in r.alerts)


def test_at_the_counters_end_only_that_trackers_acks_stop(tmp_path: Path) -> None:
    p, f = pipeline(tmp_path)
    p.process(uplink(1000.0, topics.tracker_up("000101"), f.frame(0x101, counter=1)))
    preset_down_counter(f.conn, 0x101, protocol.COUNTER_MAX - 1)
    p = Pipeline(f.conn, f.keyring, judges=p.judges)
    # the last usable counter still acks; the next frame is stored but not acknowledged
    last = p.process(uplink(1020.0, topics.tracker_up("000101"), f.frame(0x101, counter=3)))
    assert protocol.verify_and_decode(f.keys(0x101), last.downlinks[0].frame).header.counter == protocol.COUNTER_MAX
    res = p.process_batch([uplink(1030.0, topics.tracker_up("000101"), f.frame(0x101, counter=4)),
                           uplink(1030.5, topics.tracker_up("000102"), f.frame(0x102, counter=1))])
    assert [r.outcome for r in res] == ["accepted", "accepted"]
    assert res[0].downlinks == [] and len(res[1].downlinks) == 1  # only 000101's acks stop
    [stopped] = open_alerts(f.conn, "acks_stopped")
    assert stopped["device"] == "000101" and stopped["severity"] == "high"
    assert store.load_state(f.conn, 0x101).down_counter == protocol.COUNTER_MAX  # never beyond
    # and nothing stalls: more frames, one more occurrence on the same alert
    p.process(uplink(1040.0, topics.tracker_up("000101"), f.frame(0x101, counter=5)))
    assert open_alerts(f.conn, "acks_stopped")[0]["occurrences"] == 2


def test_replaying_an_overheard_frame_spends_only_the_reack_budget(tmp_path: Path) -> None:
    p, f = pipeline(tmp_path, reack_burst=8, reack_refill_s=60.0)
    fr = f.frame(0x101, counter=1)
    p.process(uplink(1000.0, topics.tracker_up("000101"), fr))
    before = store.load_state(f.conn, 0x101).down_counter
    reacks = 0
    for i in range(1000):  # one replay every 10 s for almost three hours
        r = p.process(uplink(1010.0 + 10 * i, topics.tracker_up("000101"), fr))
        assert r.duplicate
        reacks += len(r.downlinks)
    spent = store.load_state(f.conn, 0x101).down_counter - before
    # 8 at once, then 8 a minute: 10,000 s -> 8 + 1,333
    assert spent == reacks and 8 <= spent <= 8 + 10_000 * 8 / 60 + 1
    assert p.guard.reacks_refused == 1000 - spent
    # a tracker that really missed its ack still gets one at its next resend
    assert p.process(uplink(99_000.0, topics.tracker_up("000101"), fr)).downlinks


def test_bad_macs_are_counted_logged_once_per_window_and_alerted(tmp_path: Path, caplog) -> None:
    now = [0.0]
    p, f = pipeline(tmp_path, window_s=600.0, alert_after=20, clock=lambda: now[0])
    good = f.frame(0x101, counter=1)
    meta = RxMeta(rssi=-90.0, snr=5.0, base_id="b00001", bridge_id="ppk-1")
    with caplog.at_level(logging.WARNING, logger="segel.ingest.pipeline"):
        for i in range(50):
            forged = good[:-1] + bytes([good[-1] ^ (1 + i % 255)])
            r = p.process(uplink(1000.0 + i, topics.bridge_up("ppk-1"), forged, meta))
            assert r.outcome == "rejected:bad_mac"
            now[0] += 1.0
        logged = caplog.text.count("rejected bad_mac for")
        assert logged == 2  # the tracker's window and the bridge's, each logged once
        now[0] += 600.0  # the window ends: the rest is summed up in one line
        forged = good[:-1] + bytes([good[-1] ^ 0xFF])
        p.process(uplink(2000.0, topics.bridge_up("ppk-1"), forged, meta))
    assert "50 frames with a bad MAC for device 000101 in 10 min" in caplog.text
    assert "50 frames with a bad MAC for bridge ppk-1 in 10 min" in caplog.text
    floods = open_alerts(f.conn, "bad_mac_flood")
    assert sorted(a["box"] or a["device"] or "" for a in floods) == ["", "000101"]
    bridge_alert = [a for a in floods if a["device"] is None][0]
    assert al.get(f.conn, bridge_alert["id"])["subject"] == "bridge:ppk-1"
    assert p.counts["rejected:bad_mac"] == 51
    assert f.conn.execute("SELECT COUNT(*) FROM security_log WHERE reason = 'bad_mac'").fetchone()[0] == 51
