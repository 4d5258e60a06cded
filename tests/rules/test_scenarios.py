"""The scenario table: a trace (real frames through the real pipeline) and a plan -> the exact alerts.

Each scenario returns its trace as (receive time, frame bytes) pairs, or ("tick", time) for the
timer; EXPECTED lists every alert raised, as (kind, place, late), in the order raised, and the
alerts withdrawn by late data."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from segel.protocol import Flag, Seal, SealEvent

from tests.rules.world import T1, T2, K, S, W, World, offset, wita

DEV = 0x000101
Trace = list[tuple[object, object]]


def along(a: tuple[float, float], b: tuple[float, float], n: int) -> list[tuple[float, float]]:
    return [(a[0] + (b[0] - a[0]) * i / n, a[1] + (b[1] - a[1]) * i / n) for i in range(n + 1)]


def trip(w: World, t0: int, pts: list[tuple[float, float]], step: int = 300, lag: int = 5) -> Trace:
    return [(t0 + i * step + lag, w.pos_frame(DEV, t0 + i * step, p)) for i, p in enumerate(pts)]


def fence_jitter(w: World) -> Trace:
    t0 = wita("2024-11-26T14:00:00")
    rng = random.Random(4)
    tr = trip(w, t0, [T1, T1])
    # Two hours at the edge of the 60 m TPS fence (margin 30 m): 50 m, 70 m, 85 m from the centre.
    for i in range(120):
        t = t0 + 600 + 60 * i
        tr.append((t + 5, w.pos_frame(DEV, t, offset(T1, rng.uniform(0, 360), (50, 70, 85)[i % 3]))))
    return tr


def seal_cut_unauthorised(w: World) -> Trace:
    t0 = wita("2024-11-24T22:00:00")
    tr = trip(w, t0, [K, K])
    t = wita("2024-11-24T22:30:00")
    return tr + [(t + 4, w.seal_frame(DEV, t, SealEvent.LOOP_OPEN, K))]


def authorised_opening(w: World) -> Trace:
    t0 = wita("2024-11-27T12:50:00")
    tr = trip(w, t0, [T1, T1])
    t = wita("2024-11-27T13:05:00")
    return tr + [(t + 4, w.seal_frame(DEV, t, SealEvent.LOOP_OPEN, T1))]


def unexplained_seal_wake(w: World) -> Trace:
    """A seal pin woke the tracker in the warehouse at night and every input read closed again
    (MicroPython before 1.29 cannot say which pin): an opening nobody authorised."""
    t0 = wita("2024-11-24T22:00:00")
    tr = trip(w, t0, [K, K])
    t = wita("2024-11-24T22:30:00")
    return tr + [(t + 4, w.frame(DEV, t, Seal(int(SealEvent.WAKE_UNEXPLAINED), 2, Flag.FIX | Flag.TAMPER, K[0], K[1])))]


def unexplained_seal_wake_at_the_tps(w: World) -> Trace:
    t0 = wita("2024-11-27T12:50:00")
    tr = trip(w, t0, [T1, T1])
    t = wita("2024-11-27T13:05:00")
    return tr + [(t + 4, w.frame(DEV, t, Seal(int(SealEvent.WAKE_UNEXPLAINED), 2, Flag.FIX | Flag.TAMPER, T1[0], T1[1])))]


def wrong_tps(w: World) -> Trace:
    t0 = wita("2024-11-26T14:00:00")
    return trip(w, t0, [S] + along(S, T2, 3) + [T2, T2])


def corridor_exit(w: World) -> Trace:
    t0 = wita("2024-11-23T07:00:00")
    road = along(W, K, 12)
    side = offset(road[5], 90, 2000)  # 2 km off the road, 15 minutes
    pts = [W, W] + road[:6] + [side, side, side, side] + road[6:] + [K]
    return trip(w, t0, pts)


def long_stop_in_forest(w: World) -> Trace:
    t0 = wita("2024-11-23T07:00:00")
    road = along(W, K, 12)
    forest = offset(road[6], 0, 15)
    pts = [W, W] + road[:6] + [offset(forest, 45 * i, 20) for i in range(10)] + road[7:] + [K]
    return trip(w, t0, pts)


def late_seal_after_dead_zone(w: World) -> Trace:
    t0 = wita("2024-11-24T01:30:00")
    road = along(W, K, 12)
    tr = trip(w, t0, road[:4])
    cut = wita("2024-11-24T02:00:00")
    # Recorded at 02:00 in a dead zone, with the positions after it; all uploaded at 05:00.
    rx = wita("2024-11-24T05:00:00")
    tr.append((rx, w.seal_frame(DEV, cut, SealEvent.LOOP_OPEN, road[4])))
    tr += [(rx + 1 + i, w.pos_frame(DEV, cut + 300 * (i + 1), p, flags=Flag.TAMPER)) for i, p in enumerate(road[5:8])]
    return tr


def out_of_order(w: World) -> Trace:
    tr = corridor_exit(w)
    # The box's buffer is uploaded in a scrambled order after the fact (several base stations,
    # a dead zone): same frames, receive times shuffled.
    rng = random.Random(11)
    frames = [f for _, f in tr]
    rng.shuffle(frames)
    rx0 = wita("2024-11-23T12:00:00")
    return [(rx0 + i, f) for i, f in enumerate(frames)]


def tamper_before_its_seal_event(w: World) -> Trace:
    t0 = wita("2024-11-24T22:00:00")
    tr = trip(w, t0, [K, K])
    cut = wita("2024-11-24T22:30:00")
    seal = w.seal_frame(DEV, cut, SealEvent.LOOP_OPEN, K)  # counter 3, but heard only later
    tr += [(cut + 300 * i + 5, w.pos_frame(DEV, cut + 300 * i, K, flags=Flag.TAMPER)) for i in (1, 2)]
    return tr + [(cut + 3600, seal)]


def silent_tracker(w: World) -> Trace:
    t0 = wita("2024-11-25T08:00:00")
    tr = trip(w, t0, [K] + along(K, S, 3) + [S])
    last_rx = t0 + 5 * 300 + 5
    return tr + [("tick", last_rx + 3 * 300 - 1), ("tick", last_rx + 3 * 300 + 1), ("tick", last_rx + 4000)]


def forged_frame(w: World) -> Trace:
    t0 = wita("2024-11-26T03:00:00")
    tr = trip(w, t0, [K, K])
    good = w.pos_frame(DEV, t0 + 900, K)
    forged = bytearray(good)
    forged[12] ^= 0x40  # altered position bytes: the MAC no longer verifies
    return tr + [(t0 + 905, bytes(forged)), (t0 + 906, good)]


def behind_schedule(w: World) -> Trace:
    t0 = wita("2024-11-23T07:00:00")
    tr = trip(w, t0, [W, W])
    return tr + [("tick", wita("2024-11-23T23:01:00"))] + trip(w, wita("2024-11-24T01:00:00"), [K, K]) \
        + [("tick", wita("2024-11-24T01:10:00"))]


def low_battery_and_power_loss(w: World) -> Trace:
    t0 = wita("2024-11-25T08:00:00")
    tr = trip(w, t0, [K, K])
    tr.append((t0 + 700, w.status_frame(DEV, t0 + 650, 3300)))
    tr.append((t0 + 800, w.status_frame(DEV, t0 + 750, 3290)))  # still low: no second alert
    tr.append((t0 + 900, w.seal_frame(DEV, t0 + 850, SealEvent.POWER_RESTORED, K)))
    return tr


@dataclass(frozen=True)
class Case:
    build: Callable[[World], Trace]
    raised: list[tuple[str, str | None, bool]]
    withdrawn: list[str] = ()  # type: ignore[assignment]
    resolved: list[str] = ()  # type: ignore[assignment]


EXPECTED = {
    "fence_jitter": Case(fence_jitter, [("arrived", "T1", False)]),
    "seal_cut_unauthorised": Case(seal_cut_unauthorised, [("arrived", "K1", False), ("seal_unauthorised", "K1", False)]),
    "unexplained_seal_wake": Case(unexplained_seal_wake, [("arrived", "K1", False), ("seal_unauthorised", "K1", False)]),
    "authorised_opening": Case(authorised_opening, [("arrived", "T1", False), ("seal_authorised", "T1", False)]),
    "unexplained_seal_wake_at_the_tps": Case(unexplained_seal_wake_at_the_tps,
                                             [("arrived", "T1", False), ("seal_authorised", "T1", False)]),
    # T2's street is not on the plan: the drive there is off corridor too.
    "wrong_tps": Case(wrong_tps, [("arrived", "S1", False), ("off_corridor", None, False), ("wrong_tps", "T2", False)]),
    "corridor_exit": Case(corridor_exit, [("arrived", "KPU-X", False), ("off_corridor", None, False),
                                          ("arrived", "K1", False)]),
    "long_stop_in_forest": Case(long_stop_in_forest, [("arrived", "KPU-X", False), ("long_stop", None, False),
                                                      ("arrived", "K1", False)]),
    "late_seal_after_dead_zone": Case(late_seal_after_dead_zone, [("seal_unauthorised", None, True)]),
    "out_of_order": Case(out_of_order, [("arrived", "K1", True), ("arrived", "KPU-X", True), ("off_corridor", None, True)]),
    "tamper_before_its_seal_event": Case(tamper_before_its_seal_event, [
        ("arrived", "K1", False), ("tamper_latched", "K1", False), ("seal_unauthorised", "K1", True)],
        withdrawn=["tamper_latched"]),
    "silent_tracker": Case(silent_tracker, [("arrived", "K1", False), ("arrived", "S1", False), ("silent", None, False)]),
    "forged_frame": Case(forged_frame, [("arrived", "K1", False), ("forged_frame", None, False)]),
    # Left the warehouse, then nothing until after the leg closed: silent and behind schedule, both
    # resolved by the system once the box is heard at its PPK.
    "behind_schedule": Case(behind_schedule, [("arrived", "KPU-X", False), ("silent", None, False),
                                              ("behind_schedule", "K1", False), ("arrived", "K1", False)],
                            resolved=["silent", "behind_schedule"]),
    "low_battery_and_power_loss": Case(low_battery_and_power_loss, [
        ("arrived", "K1", False), ("low_battery", None, False), ("power_lost", "K1", False)]),
}


def run(w: World, trace: Trace) -> None:
    for rx, item in trace:
        if rx == "tick":
            w.tick(float(item))  # type: ignore[arg-type]
        else:
            w.send(item, float(rx))  # type: ignore[arg-type]


@pytest.mark.parametrize("name", list(EXPECTED))
def test_scenario(name, tmp_path):
    case = EXPECTED[name]
    w = World.make(tmp_path)
    run(w, case.build(w))
    got = [(a["kind"], a["place"], a["late"]) for a in w.alerts if a["event"] == "raised"]
    if name == "out_of_order":
        # Scrambled, a finding made on partial data may be raised and then withdrawn when the gap
        # fills; what stands at the end is exactly what the in-order trace gives.
        withdrawn = {a["id"] for a in w.alerts if a["event"] == "withdrawn"}
        got = sorted((a["kind"], a["place"], a["late"]) for a in w.alerts if a["event"] == "raised" and a["id"] not in withdrawn)
        assert got == sorted(case.raised, key=lambda x: (x[0], str(x[1])))
        return
    assert got == case.raised
    assert [a["kind"] for a in w.alerts if a["event"] == "withdrawn"] == list(case.withdrawn)
    assert [a["kind"] for a in w.alerts if a["event"] == "resolved"] == list(case.resolved)


def test_fence_jitter_never_leaves(tmp_path):
    w = World.make(tmp_path)
    run(w, fence_jitter(w))
    assert [f[:2] for f in w.findings(("enter", "exit"))] == [("enter", "T1")]


def test_late_seal_alert_carries_device_time_and_raised_time(tmp_path):
    w = World.make(tmp_path)
    run(w, late_seal_after_dead_zone(w))
    (a,) = [a for a in w.alerts if a["kind"] == "seal_unauthorised"]
    assert a["device_time"] == "2024-11-23T18:00:00Z"  # 02:00 WITA
    assert a["raised_at"] == "2024-11-23T21:00:00Z"  # 05:00 WITA, when it was received
    assert a["severity"] == "critical" and a["late"] is True and a["state"] == "open"
    assert not [x for x in w.alerts if x["kind"] == "tamper_latched"]  # the seal event explains the flag


def test_out_of_order_gives_the_in_order_findings(tmp_path):
    a = World.make(tmp_path / "a" if (tmp_path / "a").mkdir() is None else tmp_path)
    run(a, corridor_exit(a))
    b = World.make(tmp_path / "b" if (tmp_path / "b").mkdir() is None else tmp_path)
    run(b, out_of_order(b))
    assert a.findings() == b.findings()


def test_buffered_points_uploaded_after_live_ones_do_not_flap(tmp_path):
    """The dead-zone case Traccar gets wrong: the live frames at the PPK arrive first, the
    buffered road frames (older counters) after them. No enter/exit is made or withdrawn twice."""
    w = World.make(tmp_path)
    t0 = wita("2024-11-23T07:00:00")
    tr = trip(w, t0, [W, W] + along(W, K, 12) + [K, K, K])
    live, buffered = tr[-4:], tr[:-4]
    run(w, [(rx + 7200, f) for rx, f in live] + [(t0 + 9000 + i, f) for i, (_rx, f) in enumerate(buffered)])
    assert [f[:2] for f in w.findings(("enter", "exit"))] == [("enter", "KPU-X"), ("exit", "KPU-X"), ("enter", "K1")]
    assert w.raised("withdrawn") == []
    assert sorted(w.raised()) == [("arrived", "K1"), ("arrived", "KPU-X")]


def test_silent_is_resolved_when_heard_again(tmp_path):
    w = World.make(tmp_path)
    tr = silent_tracker(w)
    run(w, tr)
    assert [a["kind"] for a in w.alerts if a["event"] == "resolved"] == []
    w.send(w.pos_frame(DEV, wita("2024-11-25T10:00:00"), S), wita("2024-11-25T10:00:05"))
    res = [a for a in w.alerts if a["event"] == "resolved"]
    assert [(a["kind"], a["resolved_by"]) for a in res] == [("silent", "system")]


def test_replayed_frame_is_a_security_alert_on_the_box(tmp_path):
    w = World.make(tmp_path)
    t0 = wita("2024-11-26T03:00:00")
    first = w.pos_frame(DEV, t0, K, counter=5)
    again = w.pos_frame(DEV, t0 + 1, K, counter=5)  # same counter, other bytes
    w.send(first, t0 + 5)
    w.send(again, t0 + 6)
    (a,) = [a for a in w.alerts if a["kind"] == "replayed_frame"]
    assert a["box"] == "BOX-1" and a["severity"] == "critical"


def test_return_leg_done_early_is_not_behind_schedule(tmp_path):
    """Counting ended early and the box went back to its PPS before the return window opened:
    that arrival counts for the return; the outbound visit to the PPS never does."""
    import textwrap

    w = World.make(tmp_path)
    cal = textwrap.dedent("""
        [legs.tps_to_pps]
        depart = 2024-11-27T19:00:00
        arrive_by = 2024-11-28T03:00:00
    """)
    from segel.custody.plan import make_plans
    from segel.custody.plan import parse_calendar

    from tests.rules.world import CALENDAR

    w.judge.plans.update(make_plans(w.judge.index.places, {"BOX-1": "T1"}, parse_calendar(CALENDAR + cal)))
    run(w, trip(w, wita("2024-11-25T08:00:00"), [S, S]))                    # outbound at the PPS
    run(w, trip(w, wita("2024-11-26T14:00:00"), [T1, T1]))                  # at its TPS
    run(w, trip(w, wita("2024-11-27T17:00:00"), [S, S]))                    # back early
    w.tick(wita("2024-11-28T04:00:00"))
    late_legs = [a["detail"]["leg"] for a in w.alerts if a["kind"] == "behind_schedule"]
    assert "tps_to_pps" not in late_legs
    w2 = World.make(tmp_path / "b" if (tmp_path / "b").mkdir() is None else tmp_path)
    w2.judge.plans.update(make_plans(w2.judge.index.places, {"BOX-1": "T1"}, parse_calendar(CALENDAR + cal)))
    run(w2, trip(w2, wita("2024-11-25T08:00:00"), [S, S]))
    run(w2, trip(w2, wita("2024-11-26T14:00:00"), [T1, T1]))                # stays at the TPS
    w2.tick(wita("2024-11-28T04:00:00"))
    assert "tps_to_pps" in [a["detail"]["leg"] for a in w2.alerts if a["kind"] == "behind_schedule"]


def test_late_fixes_retime_an_exit_and_say_so(tmp_path):
    """Live fixes after a dead zone show the box already on the road; the buffered ones, uploaded
    later, show it left the warehouse earlier: the exit is re-timed, never doubled."""
    w = World.make(tmp_path)
    t0 = wita("2024-11-23T07:00:00")
    tr = trip(w, t0, [W, W] + along(W, K, 12)[2:8])
    head, buffered, live = tr[:2], tr[2:5], tr[5:]
    run(w, head + live + [(t0 + 9000 + i, f) for i, (_rx, f) in enumerate(buffered)])
    exits = [f for f in w.findings(("exit",))]
    assert exits == [("exit", "KPU-X", float(t0 + 600))]  # the first fix beyond the halo, from the buffer
    lines = [r[0] for r in w.conn.execute("SELECT line FROM outbox WHERE line LIKE 'custody,%'")]
    assert sum("event=exit" in ln for ln in lines) == 2 and sum("event=withdrawn_exit" in ln for ln in lines) == 1
    assert w.raised("withdrawn") == []  # custody events are not alerts


def test_no_silent_alert_once_custody_is_complete(tmp_path):
    """Back at the warehouse after the count, trackers are switched off: that is not news."""
    from segel.custody.plan import make_plans
    from segel.custody.plan import parse_calendar

    from tests.rules.world import CALENDAR

    back = """
[legs.tps_to_pps]
depart = 2024-11-27T19:00:00
arrive_by = 2024-11-28T03:00:00
[legs.pps_to_ppk]
depart = 2024-11-28T06:00:00
arrive_by = 2024-11-28T15:00:00
[legs.ppk_to_warehouse]
depart = 2024-11-29T06:00:00
arrive_by = 2024-11-29T22:00:00
"""
    def world(sub: str, end_at: tuple[float, float]) -> World:
        (tmp_path / sub).mkdir()
        w = World.make(tmp_path / sub)
        w.judge.plans.update(make_plans(w.judge.index.places, {"BOX-1": "T1"}, parse_calendar(CALENDAR + back)))
        run(w, trip(w, wita("2024-11-26T14:00:00"), [T1, T1]))
        run(w, trip(w, wita("2024-11-29T12:00:00"), [end_at, end_at]))
        w.tick(wita("2024-11-29T23:00:00"))
        return w
    assert [a["kind"] for a in world("done", W).alerts if a["kind"] in ("silent", "behind_schedule")] == []
    assert "silent" in [a["kind"] for a in world("not-done", K).alerts]
