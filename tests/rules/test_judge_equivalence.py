"""The faster custody judge (issue 17) raises exactly what the judge before it raised.

The oracle is a frozen copy of the previous judge (tests/rules/oracle_judge.py: every frame's
state in SQLite, timers that visit every device). Both judge the same frames, in any arrival
order, with timer ticks between them; findings, alerts and the published alert events must be
the same. The new judge's shortcuts are pushed on purpose: traces long enough to cross its state
checkpoints, late frames far behind, transactions rolled back under it (its memory must notice),
a tail memory of one device for two devices, and frames judged twice.
"""

from __future__ import annotations

import random
import sqlite3
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from segel import store
from segel.custody import judge as judge_mod
from segel.custody.judge import CustodyJudge
from segel.messages import Accepted

from tests.rules.oracle_judge import OracleJudge
from tests.rules.test_properties import INDEX, PLANS, frame_for, item_st
from tests.rules.world import wita

SETTINGS = {"stop_minutes": 20, "corridor_dwell_s": 180, "report_interval_s": 600}
DEVICES = (0x000101, 0x000102)


def _recs(trace: list[tuple[int, int, tuple]]) -> list[Accepted]:
    """(device index, seconds since the previous frame, item) -> Accepted frames, counters per device."""
    t = wita("2024-11-23T06:30:00")
    counters = {d: 0 for d in DEVICES}
    out = []
    for who, dt, item in trace:
        dev = DEVICES[who]
        counters[dev] += 1
        t += dt
        fr = frame_for(counters[dev], t, item)
        fr = type(fr)(type(fr.header)(fr.header.version, fr.header.type, dev, counters[dev], t), fr.body)
        # a little receive delay, more for some: late frames are judged LATE by both
        rx = float(t + 5 + (900 if dt % 7 == 0 else 0))
        out.append(Accepted(dev, counters[dev], t, rx, fr, None, "BOX-1" if who == 0 else None))
    return out


def _snapshot(conn: sqlite3.Connection) -> tuple:
    findings = sorted(conn.execute("SELECT device, key, counter, kind, place, t, alert_id FROM judge_findings").fetchall())
    alerts = sorted(conn.execute("SELECT id, kind, subject, place, state, device_time, last_device_time, late, occurrences, "
                                 "detail FROM alerts").fetchall())
    history = Counter(conn.execute("SELECT alert_id, event, note FROM alert_history").fetchall())
    return findings, alerts, history


def _run(judge_cls: type, steps: list[tuple], rollback: bool = False) -> tuple:
    """steps: ("frame", rec, flags) and ("tick", now). flags: "rolled back" (judged in a transaction
    that is rolled back; the frame comes again later, as its own step) and "twice"."""
    conn = store.connect(":memory:")
    j = judge_cls(conn, INDEX, PLANS, dict(SETTINGS))
    events: Counter = Counter()
    for step in steps:
        conn.execute("BEGIN")
        if step[0] == "tick":
            got = j.on_tick(step[1], conn)
            while getattr(getattr(j, "timers", None), "pending", False):  # bounded work per tick: the rest
                got += j.on_tick(step[1], conn)
        elif "rolled back" in step[2]:
            if rollback:
                j.on_accepted(step[1], conn)
                conn.execute("ROLLBACK")
            else:
                conn.execute("COMMIT")
            continue
        else:
            got = j.on_accepted(step[1], conn)
            if "twice" in step[2]:
                assert j.on_accepted(step[1], conn) == []
        conn.execute("COMMIT")
        for a in got:
            events[(a["id"], a["event"])] += 1
    snap = _snapshot(conn)
    conn.close()
    return snap, events


def _compare(recs: list[Accepted], rnd: random.Random, rolled: float = 0.0, twice: float = 0.0) -> None:
    """Deliver `recs` in this order with timer ticks between them (on a clock that only moves
    forward, plus one long after the end) to both judges."""
    steps: list[tuple] = []
    clock = min(r.received_at for r in recs)
    redeliver = []
    for r in recs:
        clock = max(clock, r.received_at)
        flags = set()
        if rnd.random() < rolled:
            flags.add("rolled back")
            redeliver.append(r)
        elif rnd.random() < twice:
            flags.add("twice")
        steps.append(("frame", r, flags))
        if rnd.random() < 0.2:
            clock += rnd.choice([60, 1800, 7200])
            steps.append(("tick", clock))
    steps += [("frame", r, set()) for r in redeliver]
    steps.append(("tick", clock + 10 * 86400))
    new = _run(CustodyJudge, steps, rollback=True)
    old = _run(OracleJudge, steps)
    assert new[0] == old[0]
    assert new[1] == old[1]


trace_st = st.lists(st.tuples(st.integers(0, 1), st.integers(30, 900), item_st), min_size=2, max_size=70)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trace_st, st.randoms(use_true_random=False))
def test_same_alerts_as_before_in_any_order(trace, rnd):
    recs = _recs(trace)
    rnd.shuffle(recs)
    _compare(recs, rnd)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trace_st, st.randoms(use_true_random=False), st.integers(1, 40))
def test_same_alerts_as_before_with_late_backlogs(trace, rnd, gap):
    """Mostly in order (the fast path), with runs of frames held back and delivered late (a dead
    zone's backlog): late frames far behind the newest are judged from a stored checkpoint."""
    recs = _recs(trace)
    held = recs[len(recs) // 3: len(recs) // 3 + gap]
    rest = [r for r in recs if r not in held]
    cut = rnd.randint(len(rest) // 2, len(rest))
    _compare(rest[:cut] + held + rest[cut:], rnd)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trace_st, st.randoms(use_true_random=False))
def test_rolled_back_batches_and_frames_judged_twice(trace, rnd):
    recs = _recs(trace)
    if rnd.random() < 0.5:
        rnd.shuffle(recs)
    _compare(recs, rnd, rolled=0.2, twice=0.1)


@pytest.fixture
def tiny_tail(monkeypatch):
    monkeypatch.setattr(judge_mod, "TAIL_DEVICES", 1)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(trace_st, st.randoms(use_true_random=False))
def test_a_tail_memory_too_small_for_the_fleet(tiny_tail, trace, rnd):
    """Two devices, memory for one: every switch rebuilds the state from the last checkpoint."""
    _compare(_recs(trace), rnd)


@pytest.fixture
def tiny_ticks(monkeypatch):
    from segel.custody import timers

    for name in ("SILENT_PER_TICK", "QUEUE_PER_TICK", "JUDGE_PER_TICK", "CHUNK"):
        monkeypatch.setattr(timers, name, 1)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(trace_st, st.randoms(use_true_random=False))
def test_timers_with_work_spread_over_ticks(tiny_ticks, trace, rnd):
    """One device's worth of work per tick: the gateway ticks again while `pending`; the result is
    what one unbounded tick gives."""
    recs = _recs(trace)
    rnd.shuffle(recs)
    _compare(recs, rnd)


def test_many_frames_forget_old_ones_keeping_the_state():
    """Over 256 counters the judge drops frames beyond the replay window; a late frame after that
    is still judged from the right state (the oldest frame kept carries it)."""
    rnd = random.Random(7)
    items = [("pos", rnd.randrange(0, 17), 0) for _ in range(700)]
    trace = [(0, rnd.randint(30, 900), it) for it in items]
    recs = _recs(trace)
    held = recs[600:620]
    order = [r for r in recs if r not in held] + held
    conn_new, conn_old = store.connect(":memory:"), store.connect(":memory:")
    new = CustodyJudge(conn_new, INDEX, PLANS, dict(SETTINGS), keep_counters=300)
    old = OracleJudge(conn_old, INDEX, PLANS, dict(SETTINGS), keep_counters=300)
    for r in order:
        for conn, j in ((conn_new, new), (conn_old, old)):
            conn.execute("BEGIN")
            j.on_accepted(r, conn)
            conn.execute("COMMIT")
    assert _snapshot(conn_new)[:2] == _snapshot(conn_old)[:2]
    kept = conn_new.execute("SELECT MIN(counter), COUNT(*), COUNT(state) FROM judge_frames").fetchone()
    assert kept[0] > 1 and kept[1] < 700
    first_state = conn_new.execute("SELECT state FROM judge_frames WHERE counter = ?", (kept[0],)).fetchone()[0]
    assert first_state is not None  # the oldest kept frame carries the state
    assert kept[2] < kept[1] / 4  # states only at checkpoints (and the oldest frame)


def test_a_late_box_caught_up_resolves_its_behind_schedule_alert():
    """The schedule judges a box again when its arrivals change, not only when a window closes."""
    at_w = [(0, 600, ("pos", 0, 0)) for _ in range(4)]  # at the warehouse until after 23:00
    at_k = [(0, 600, ("pos", 1, 0)) for _ in range(4)]  # at the PPK the next morning
    recs = _recs(at_w)
    late = _recs(at_w + at_k)[4:]
    shift = wita("2024-11-24T08:00:00") - late[0].event_time
    late = [Accepted(r.device_id, r.counter, r.event_time + shift, r.received_at + shift,
                     type(r.frame)(type(r.frame.header)(1, r.frame.header.type, r.device_id, r.counter,
                                                        r.event_time + shift), r.frame.body), None, r.box_id)
            for r in late]
    steps = ([("frame", r, set()) for r in recs] + [("tick", wita("2024-11-23T23:30:00"))]
             + [("frame", r, set()) for r in late] + [("tick", wita("2024-11-24T09:30:00"))])
    new, old = _run(CustodyJudge, steps), _run(OracleJudge, steps)
    assert new == old
    states = {(a[1], a[4]) for a in new[0][1]}
    assert ("behind_schedule", "resolved") in states, states
