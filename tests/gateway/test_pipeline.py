from __future__ import annotations

import json
import os
import time
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st
from segel import protocol, store
from segel.edge import topics
from segel.edge.payloads import downlink_message, uplink
from segel.influx import outbox
from segel.messages import Accepted, Rejected, RxMeta, Uplink
from segel.ingest.pipeline import Pipeline, ProcessResult
from segel.ingest.sanity import Sanity
from segel.protocol import RejectReason

from tests.gateway.fleet import make_fleet


def up(frame: bytes, dev: int = 0x101, meta: RxMeta | None = None, at: float | None = None,
       topic: str | None = None) -> Uplink:
    if topic is None:
        topic = topics.bridge_up("b1") if meta else topics.tracker_up(frame[1:4].hex())
    return uplink(time.time() if at is None else at, topic, frame, meta)


def outbox_lines(conn) -> list[str]:
    return [r[0] for r in conn.execute("SELECT line FROM outbox ORDER BY id")]


def sent(r: ProcessResult) -> list[tuple[str, bytes]]:
    """The (topic, payload) messages the edge publishes for a result's acks."""
    return [downlink_message(d) for d in r.downlinks]


def test_accepts_decodes_acks_and_queues_lines(tmp_path: Path) -> None:
    f = make_fleet(tmp_path)
    p = Pipeline(f.conn, f.keyring)
    fr = f.frame(0x101, protocol.Position(-1.25, 117.5, protocol.Flag.FIX, 1.2, 12), counter=7, dev_time=1_800_000_000)
    r = p.process(up(fr))
    assert r.accepted is not None and r.rejected is None and not r.duplicate
    assert r.accepted.counter == 7 and abs(r.accepted.frame.body.lat + 1.25) < 1e-5
    [line] = outbox_lines(f.conn)
    assert line.startswith("position,device=000101 ") and "counter=7i" in line and 'quality="ok"' in line
    assert line.endswith(f" {1_800_000_000 * 10**9 + 7 * 10**6}")
    [(topic, payload)] = sent(r)
    assert topic == "segel/down/000101"
    ack = protocol.verify_and_decode(f.keys(0x101), payload)
    assert ack.body == protocol.Ack((7,)) and ack.header.counter == 1
    # the downlink counter is persisted and keeps rising
    r2 = p.process(up(f.frame(0x101)))
    assert protocol.verify_and_decode(f.keys(0x101), sent(r2)[0][1]).header.counter == 2
    assert sent(Pipeline(f.conn, f.keyring).process(up(f.frame(0x101))))
    assert store.load_state(f.conn, 0x101).down_counter == 3


def test_bridge_duplicate_keeps_best_meta_and_writes_once(tmp_path: Path) -> None:
    f = make_fleet(tmp_path)
    p = Pipeline(f.conn, f.keyring)
    fr = f.frame(0x102)
    now = time.time()
    weak = RxMeta(rssi=-120.0, snr=-10.0, base_id="bs-a", bridge_id="b1")
    strong = RxMeta(rssi=-80.0, snr=8.0, base_id="bs-b", bridge_id="b2")
    r1 = p.process(up(fr, 0x102, weak, at=now, topic=topics.bridge_up("b1")))
    r2 = p.process(up(fr, 0x102, strong, at=now + 0.3, topic=topics.bridge_up("b2")))
    assert r1.accepted and r2.duplicate and r2.accepted is None and r2.rejected is None
    assert sent(r2) == []  # heard twice at once: one ack is enough
    d = json.loads(sent(r1)[0][1])
    assert sent(r1)[0][0] == "segel/bridge/b1/down" and d["device"] == "000102" and d["tx_at"] is None
    assert protocol.verify_and_decode(f.keys(0x102), bytes.fromhex(d["frame"])).body == protocol.Ack((1,))
    row = f.conn.execute("SELECT rssi, base_id, receptions FROM seen WHERE device_id=?", (0x102,)).fetchone()
    assert row == (-80.0, "bs-b", 2)
    lines = outbox_lines(f.conn)
    assert sum(ln.startswith("position,") for ln in lines) == 1
    assert sum(ln.startswith("rx,") for ln in lines) == 2
    # re-sent much later (our ack was lost): acked again, still stored once
    r3 = p.process(up(fr, 0x102, weak, at=now + 60, topic=topics.bridge_up("b1")))
    assert r3.duplicate and sent(r3) and sent(r3)[0][0] == "segel/bridge/b1/down"
    assert p.counts["accepted"] == 1 and p.counts["duplicate"] == 2


def test_late_unseen_counters_accepted_old_ones_replay(tmp_path: Path) -> None:
    f = make_fleet(tmp_path)
    p = Pipeline(f.conn, f.keyring, window=100)
    early = f.frame(0x101, counter=50)
    stale = f.frame(0x101, counter=5)
    assert p.process(up(f.frame(0x101, counter=120))).accepted
    assert p.process(up(early)).accepted  # store-and-forward: late but inside the window, unseen
    r = p.process(up(stale))
    assert r.rejected and r.rejected.reason == RejectReason.REPLAY and "older than the replay window" in r.rejected.detail
    assert p.process(up(early)).duplicate


def test_same_counter_other_bytes_is_a_replay(tmp_path: Path) -> None:
    f = make_fleet(tmp_path)
    p = Pipeline(f.conn, f.keyring)
    assert p.process(up(f.frame(0x101, counter=9, dev_time=1_800_000_000))).accepted
    r = p.process(up(f.frame(0x101, counter=9, dev_time=1_800_000_060)))
    assert r.rejected and r.rejected.reason == RejectReason.REPLAY


def test_bad_input_each_counted_logged_with_bytes_and_not_stored(tmp_path: Path) -> None:
    f = make_fleet(tmp_path, devices=[0x101])
    p = Pipeline(f.conn, f.keyring)
    good = f.frame(0x101)
    forged = good[:-1] + bytes([good[-1] ^ 1])
    other_key = protocol.DeviceKeys.from_device_key(protocol.derive_device_key(b"x" * 32, 0x101, 0))
    cases = {
        RejectReason.BAD_MAC: [forged, protocol.encode(other_key, 0x101, 99, 0, protocol.Position(1, 1, 1, 1, 1))],
        RejectReason.TRUNCATED: [good[:10], good[:-2], b""],
        RejectReason.UNKNOWN_DEVICE: [protocol.encode(other_key, 0x999, 1, 0, protocol.Position(1, 1, 1, 1, 1))],
        RejectReason.BAD_VERSION: [bytes([0x21]) + good[1:]],
        RejectReason.BAD_TYPE: [bytes([0x1F]) + good[1:], protocol.encode(f.keys(0x101), 0x101, 3, 0, protocol.Ack((1,)))],
        RejectReason.BAD_LENGTH: [good + b"\x00"],
    }
    rnd = os.urandom(24)
    for reason, frames in cases.items():
        for fr in frames:
            t = topics.tracker_up(fr[1:4].hex()) if len(fr) >= 4 else topics.tracker_up("000101")
            r = p.process(uplink(time.time(), t, fr))
            assert r.rejected is not None and r.rejected.reason == reason, (reason, fr.hex(), r.rejected)
    r = p.process(uplink(time.time(), topics.tracker_up("000101"), rnd))
    assert r.rejected is not None
    wrong = p.process(uplink(time.time(), topics.tracker_up("000102"), good))
    assert wrong.rejected and wrong.rejected.reason == "wrong_topic"
    assert not any(ln.startswith(("position", "seal", "status")) for ln in outbox_lines(f.conn))
    log = f.conn.execute("SELECT reason, frame FROM security_log").fetchall()
    assert len(log) == sum(map(len, cases.values())) + 2
    assert (RejectReason.BAD_MAC, forged) in [(a, bytes(b)) for a, b in log]
    st = store.stats(f.conn)
    assert st["rejected:truncated"] == 3 and st["rejected:bad_mac"] == 2
    # and the good frame still goes through after all that
    assert p.process(up(good)).accepted


def test_sanity_marks_but_keeps(tmp_path: Path) -> None:
    f = make_fleet(tmp_path)
    p = Pipeline(f.conn, f.keyring)
    t0 = 1_800_000_000
    P = protocol.Position
    r1 = p.process(up(f.frame(0x101, P(0.5, 117.5, 1, 0.9, 0), dev_time=t0)))
    r2 = p.process(up(f.frame(0x101, P(0, 0, 0, 25.5, 0), dev_time=t0 + 60)))
    r3 = p.process(up(f.frame(0x101, P(0.5, 117.5, 1, 9.0, 0), dev_time=t0 + 120)))
    r4 = p.process(up(f.frame(0x101, P(1.5, 117.5, 1, 0.9, 0), dev_time=t0 + 180)))  # 111 km in 1 minute
    r5 = p.process(up(f.frame(0x101, P(0.52, 117.5, 1, 0.9, 30), dev_time=t0 + 300)))
    assert [r.accepted.quality for r in (r1, r2, r3, r4, r5)] == [
        frozenset(), {"no_fix"}, {"poor_hdop"}, {"impossible_jump"}, frozenset()]
    assert sum(ln.startswith("position,") for ln in outbox_lines(f.conn)) == 5
    s = store.load_state(f.conn, 0x101)
    assert s.last_fix_time == t0 + 300 and abs(s.last_lat - 0.52) < 1e-4


class RecordingJudge:
    def __init__(self, fail: bool = False) -> None:
        self.seen: list[object] = []
        self.fail = fail

    def on_accepted(self, rec: Accepted, db) -> list[dict]:
        db.execute("CREATE TABLE IF NOT EXISTS judged(counter INTEGER)")
        db.execute("INSERT INTO judged VALUES (?)", (rec.counter,))
        outbox.enqueue(db, [f"alert,kind=test alert_id=\"{rec.counter}\" 1"])
        if self.fail:
            raise RuntimeError("judge bug")
        self.seen.append(rec)
        return [{"kind": "test", "counter": rec.counter}]

    def on_rejected(self, rec: Rejected, db) -> list[dict]:
        self.seen.append(rec)
        return [{"kind": "rejected", "reason": rec.reason}]

    def on_tick(self, now: float, db) -> list[dict]:
        return [{"kind": "tick", "now": now}]


def test_judges_run_in_the_transaction_and_a_failing_one_is_contained(tmp_path: Path) -> None:
    f = make_fleet(tmp_path)
    ok, bad = RecordingJudge(), RecordingJudge(fail=True)
    p = Pipeline(f.conn, f.keyring, judges=[bad, ok])
    r = p.process(up(f.frame(0x101, counter=4)))
    assert r.accepted and r.alerts == [{"kind": "test", "counter": 4}]
    assert f.conn.execute("SELECT counter FROM judged").fetchall() == [(4,)]  # bad judge's insert rolled back
    r = p.process(up(b"\x11\x00"))
    assert {"kind": "rejected", "reason": "truncated"} in r.alerts
    assert p.tick(5.0) == [{"kind": "tick", "now": 5.0}] * 2


def test_batch_in_callers_transaction_rolls_back_together(tmp_path: Path) -> None:
    f = make_fleet(tmp_path)
    p = Pipeline(f.conn, f.keyring)
    f.conn.execute("BEGIN IMMEDIATE")
    for _ in range(5):
        assert p.process(up(f.frame(0x103))).accepted
    f.conn.execute("ROLLBACK")  # e.g. the gateway died before the commit: nothing half-stored
    assert outbox.depth(f.conn) == 0 and f.conn.execute("SELECT COUNT(*) FROM seen").fetchone()[0] == 0


def test_new_key_epoch_resets_counters(tmp_path: Path) -> None:
    f = make_fleet(tmp_path)
    p = Pipeline(f.conn, f.keyring)
    assert p.process(up(f.frame(0x101, counter=500))).accepted
    f.registry.bump_epoch(0x101)
    f.keyring._cache.clear()
    assert p.process(up(f.frame(0x101, counter=1))).accepted


def test_golden_vectors_decode_through_the_pipeline(tmp_path: Path) -> None:
    data = json.loads((Path(__file__).parents[1] / "protocol" / "vectors.json").read_text())
    import sqlite3 as _s  # noqa: F401

    from segel.registry import KeyRing, Registry
    conn = store.connect(tmp_path / "v.db")
    reg = Registry(conn)
    p = Pipeline(conn, KeyRing(bytes.fromhex(data["fleet_secret"]), reg))
    n = 0
    for v in data["vectors"]:
        if v["type"] in ("ack", "config"):
            continue
        if reg.get(v["device_id"]) is None:
            reg.add_device(v["device_id"], key_epoch=v["key_epoch"])
        elif reg.get(v["device_id"]).key_epoch != v["key_epoch"]:
            continue
        r = p.process(uplink(time.time(), topics.tracker_up(f"{v['device_id']:06x}"), bytes.fromhex(v["frame_hex"])))
        assert r.accepted is not None, (v["name"], r.rejected)
        got = {k: (list(x) if isinstance(x, tuple) else x) for k, x in r.accepted.frame.body.__dict__.items()}
        assert got == v["decoded"]
        n += 1
    assert n >= 20


def test_a_bug_on_one_uplink_loses_only_that_uplink(tmp_path: Path) -> None:
    f = make_fleet(tmp_path)

    class Picky:
        def marks(self, pos, event_time, last):
            if abs(pos.lat - 0.5) < 1e-3:  # the second frame below triggers a "bug"
                raise ZeroDivisionError("boom")
            return frozenset()

    judge = RecordingJudge()
    p = Pipeline(f.conn, f.keyring, judges=[judge], sanity=Picky())
    P = protocol.Position
    frames = [f.frame(0x101, P(1.0, 117.0, 1, 0.9, 0)), f.frame(0x101, P(0.5, 117.0, 1, 0.9, 0)),
              f.frame(0x102, P(2.0, 117.0, 1, 0.9, 0))]
    res = p.process_batch([up(fr) for fr in frames])
    assert [r.outcome for r in res] == ["accepted", "rejected:internal_error", "accepted"]
    assert "ZeroDivisionError" in res[1].rejected.detail
    assert f.conn.execute("SELECT COUNT(*) FROM seen").fetchone()[0] == 2
    assert sorted(r[0] for r in f.conn.execute("SELECT counter FROM judged")) == [1, 1]
    assert bytes(f.conn.execute("SELECT frame FROM security_log").fetchone()[0]) == frames[1]
    assert p.counts == {"accepted": 2, "rejected:internal_error": 1}
    # the frame was not marked seen, so once the bug is fixed a re-send is accepted
    p.sanity = Sanity()
    assert p.process(up(frames[1])).accepted


def test_ack_goes_to_the_bridge_that_heard_the_tracker_best(tmp_path: Path) -> None:
    f = make_fleet(tmp_path)
    p = Pipeline(f.conn, f.keyring)
    fr1, fr2 = f.frame(0x101), f.frame(0x101)
    now = time.time()
    weak = RxMeta(rssi=-120.0, snr=-12.0, base_id="bs-a", bridge_id="far")
    strong = RxMeta(rssi=-85.0, snr=6.0, base_id="bs-b", bridge_id="near")
    res = p.process_batch([up(fr1, meta=weak, at=now, topic=topics.bridge_up("far")),
                           up(fr1, meta=strong, at=now + 0.1, topic=topics.bridge_up("near")),
                           up(fr2, meta=weak, at=now + 0.2, topic=topics.bridge_up("far"))])
    assert [r.outcome for r in res] == ["accepted", "duplicate", "accepted"]
    downs = [d for r in res for d in sent(r)]
    assert len(downs) == 1 and downs[0][0] == "segel/bridge/near/down"
    ack = protocol.verify_and_decode(f.keys(0x101), bytes.fromhex(json.loads(downs[0][1])["frame"]))
    assert ack.body == protocol.Ack((1, 2))  # both frames in one ACK


def test_a_flood_of_garbage_is_counted_but_logged_sparingly(tmp_path: Path, caplog) -> None:
    import logging

    f = make_fleet(tmp_path)
    p = Pipeline(f.conn, f.keyring)
    with caplog.at_level(logging.WARNING, logger="segel.ingest.pipeline"):
        p.process_batch([uplink(time.time(), "segel/up/000101", b"\x11\x00") for _ in range(200)])
    assert p.counts["rejected:truncated"] == 200
    assert caplog.text.count("rejected truncated") == Pipeline.LOG_REJECTS_PER_MINUTE
    assert store.prune_security_log(f.conn, keep=50) == 150
    assert f.conn.execute("SELECT COUNT(*) FROM security_log").fetchone()[0] == 50


def test_duplicates_and_replays_inside_one_batch(tmp_path: Path) -> None:
    f = make_fleet(tmp_path)
    p = Pipeline(f.conn, f.keyring)
    a = f.frame(0x101, counter=5, dev_time=1_800_000_000)
    b = f.frame(0x101, counter=5, dev_time=1_800_000_009)  # same counter, other bytes
    res = p.process_batch([up(a), up(a), up(b), up(f.frame(0x101, counter=6))])
    assert [r.outcome for r in res] == ["accepted", "duplicate", "rejected:replay", "accepted"]
    assert f.conn.execute("SELECT counter, receptions FROM seen ORDER BY counter").fetchall() == [(5, 2), (6, 1)]
    assert p.process(up(a)).duplicate  # and in the next batch, from the database
    assert f.conn.execute("SELECT receptions FROM seen WHERE counter=5").fetchone() == (3,)


@given(lat=st.floats(-90, 90), lon=st.floats(-180, 180), flags=st.integers(0, 255), hdop=st.integers(0, 255),
       speed=st.integers(0, 255), counter=st.integers(0, 2**24 - 1),
       late=st.one_of(st.none(), st.floats(allow_infinity=False)), box=st.sampled_from([None, "64.08.01.2001-001-GUB"]),
       quality=st.frozensets(st.sampled_from(["no_fix", "poor_hdop", "jump", 'odd"\\'])), ts=st.integers(0, 2**62))
def test_the_direct_position_line_is_what_the_schema_writes(lat: float, lon: float, flags: int, hdop: int, speed: int,
                                                           counter: int, late: float | None, box: str | None,
                                                           quality: frozenset[str], ts: int) -> None:
    """The hot path writes WiFi position lines without schema.point; byte for byte the same line."""
    from segel.influx import schema
    from segel.influx.lines import position_wifi as position_line

    body = protocol.Position(lat, lon, flags, hdop / 10, speed)
    want = schema.point("position", {"device": "00a1b2", "box": box}, {
        "lat": body.lat, "lon": body.lon, "hdop": body.hdop, "speed_kmh": body.speed_kmh, "fix": body.fix,
        "flags": body.flags, "counter": counter, "late_s": late, "quality": ",".join(sorted(quality)) or "ok",
        "rssi": None, "snr": None}, ts)
    assert position_line("00a1b2", box, body, counter, late, quality, ts) == want
