"""What docs/custody.md and docs/alerts.md say about the rules, checked against the code, one claim a
test: when an alert is late, the long-stop boundary, the lifecycle's less obvious paths (an info
alert withdrawn, a behind_schedule resolved by late frames), silent alerts without device time,
`late` after an earlier occurrence arrives late, the halo counting as the place, and the arrival a
tracker switched on inside the warehouse records."""

from __future__ import annotations

from segel.custody import alerts as al
from segel.protocol import SealEvent

from tests.rules.world import K, S, T1, W, World, offset, wita

DEV = 0x000101


def test_late_is_measured_from_the_frame_that_showed_it(tmp_path):
    """A stop that began 40 minutes before the fix that completed it, received at once: not late.
    (Measured from the stop's own device time it would be; every live long_stop would be late.)"""
    w = World.make(tmp_path)
    here = offset(K, 0, 5000)  # on the road, outside any place
    t0 = wita("2024-11-23T12:00:00")
    for i in range(9):
        w.send(w.pos_frame(DEV, t0 + 300 * i, here), t0 + 300 * i + 5)
    (stop,) = [a for a in w.alerts if a["kind"] == "long_stop"]
    assert stop["device_ts"] == t0 and stop["raised_ts"] - stop["device_ts"] > 600 and stop["late"] is False


def test_a_long_stop_is_raised_at_exactly_stop_minutes(tmp_path):
    w = World.make(tmp_path)  # stop_minutes = 30
    here = offset(K, 0, 5000)
    t0 = wita("2024-11-23T12:00:00")
    w.send(w.pos_frame(DEV, t0, here), t0 + 5)
    w.send(w.pos_frame(DEV, t0 + 1799, here), t0 + 1804)
    assert not [a for a in w.alerts if a["kind"] == "long_stop"]
    w.send(w.pos_frame(DEV, t0 + 1800, here), t0 + 1805)
    assert [a["kind"] for a in w.alerts if a["kind"] == "long_stop"] == ["long_stop"]


def test_an_info_alert_can_be_withdrawn(tmp_path):
    """An arrival (info, born resolved) judged from live fixes is withdrawn when buffered fixes show
    the box never stayed: resolved -> withdrawn."""
    w = World.make(tmp_path)
    t0 = wita("2024-11-25T15:00:00")
    w.send(w.pos_frame(DEV, t0, S, counter=1), t0 + 5)
    w.send(w.pos_frame(DEV, t0 + 600, S, counter=3), t0 + 605)
    (arrived,) = [a for a in w.alerts if a["kind"] == "arrived"]
    assert arrived["state"] == "resolved"
    far = offset(S, 0, 3000)  # the buffered fix between them: it had left
    w.send(w.pos_frame(DEV, t0 + 300, far, counter=2), t0 + 900)
    assert al.get(w.conn, arrived["id"])["state"] == "withdrawn"


def test_behind_schedule_disproved_by_late_frames_ends_resolved(tmp_path):
    w = World.make(tmp_path)
    t0 = wita("2024-11-23T20:00:00")  # warehouse_to_ppk closes 23:00
    w.send(w.pos_frame(DEV, t0 - 7200, offset(K, 180, 9000), counter=1), t0 - 7195)  # on the road at 18:00
    w.tick(wita("2024-11-23T23:10:00"))
    (late,) = [a for a in w.alerts if a["kind"] == "behind_schedule"]
    for i in range(3):  # the frames of its arrival at 20:00 come after the window closed
        w.send(w.pos_frame(DEV, t0 + 300 * i, K, counter=2 + i), wita("2024-11-23T23:20:00") + i)
    w.tick(wita("2024-11-23T23:30:00"))
    row = al.get(w.conn, late["id"])
    assert (row["state"], row["resolved_by"], row["resolve_note"]) == ("resolved", "system", "arrived")


def test_silent_has_no_device_time(tmp_path):
    w = World.make(tmp_path)
    t0 = wita("2024-11-23T12:00:00")
    w.send(w.pos_frame(DEV, t0, offset(K, 0, 5000)), t0 + 5)
    w.tick(t0 + 5 + 3 * 300 + 1)
    (silent,) = [a for a in w.alerts if a["kind"] == "silent"]
    assert silent["device_time"] is None and silent["device_ts"] is None and silent["detail"]["last_heard"]


def test_an_earlier_occurrence_arriving_late_makes_the_alert_late(tmp_path):
    w = World.make(tmp_path)
    t0 = wita("2024-11-24T22:00:00")
    w.send(w.seal_frame(DEV, t0 + 600, SealEvent.LOOP_OPEN, K, seq=2, counter=2), t0 + 605)
    (live,) = [a for a in w.alerts if a["kind"] == "seal_unauthorised"]
    assert live["late"] is False and live["device_ts"] == t0 + 600
    w.send(w.seal_frame(DEV, t0, SealEvent.LOOP_OPEN, K, seq=1, counter=1), t0 + 3 * 3600)
    row = al.get(w.conn, live["id"])
    assert (row["late"], row["device_time"], row["last_device_time"], row["occurrences"]) == (1, t0, t0 + 600, 2)


def test_the_halo_counts_as_the_place(tmp_path):
    """Beyond the circle but inside its margin: still at the place (no exit, no long stop), and a
    seal opened there in the TPS's window is authorised."""
    w = World.make(tmp_path)
    t0 = wita("2024-11-27T06:00:00")
    for i in range(3):
        w.send(w.pos_frame(DEV, t0 + 300 * i, T1), t0 + 300 * i + 5)
    halo = offset(T1, 90, 60 + 20)  # T1: radius 60 m, margin 30 m
    for i in range(3, 12):
        w.send(w.pos_frame(DEV, t0 + 300 * i, halo), t0 + 300 * i + 5)
    w.send(w.seal_frame(DEV, t0 + 3700, SealEvent.LOOP_OPEN, halo, seq=1), t0 + 3705)
    kinds = [k for k, _, _ in w.findings()]
    assert "exit" not in kinds and "long_stop" not in kinds
    assert [a["kind"] for a in w.alerts if a["kind"].startswith("seal")] == ["seal_authorised"]


def test_switching_on_inside_the_warehouse_records_an_arrival_from_the_second_fix(tmp_path):
    """A tracker switched on at the warehouse: its first fix there starts a visit, a second fix
    dwell_s (120 s) later confirms it and records `arrived` at the warehouse, timed at the first."""
    w = World.make(tmp_path)
    t0 = wita("2024-11-23T05:00:00")
    w.send(w.pos_frame(DEV, t0, W), t0 + 5)
    assert not [a for a in w.alerts if a["kind"] == "arrived"]
    w.send(w.pos_frame(DEV, t0 + 300, W), t0 + 305)
    (arr,) = [a for a in w.alerts if a["kind"] == "arrived"]
    assert (arr["place"], arr["device_ts"], arr["state"]) == ("KPU-X", t0, "resolved")
    # one fix at the warehouse and then the road (the rehearsal: switched on 1.5 h before leaving,
    # reporting every 2 h) records none
    w2 = World.make(tmp_path / "b" if (tmp_path / "b").mkdir() is None else tmp_path, boxes={"BOX-2": (0x000102, "T1")})
    w2.send(w2.pos_frame(0x000102, t0, W), t0 + 5)
    w2.send(w2.pos_frame(0x000102, t0 + 7200, offset(W, 0, 3000)), t0 + 7205)
    assert not [a for a in w2.alerts if a["kind"] == "arrived"]
