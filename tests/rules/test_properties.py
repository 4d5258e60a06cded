"""Property tests (hypothesis): hysteresis never flaps; arrival order never changes the alerts."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from segel import store
from segel.custody.judge import CustodyJudge
from segel.custody.plan import make_plans
from segel.custody.plan import DEFAULT_RULES, parse_calendar
from segel.custody.rules import ENTER, EXIT, Rules, initial_state
from segel.messages import Accepted
from segel.places import Circle, Place, PlaceIndex
from segel.protocol import (
    Flag,
    Frame,
    FrameType,
    Header,
    Position,
    Seal,
    SealEvent,
    Status,
)

from tests.rules.world import CALENDAR, T1, T2, K, S, W, offset, places, wita

CENTRE = (0.66, 117.55)
FENCE = Place("F", "tps", "fence", Circle(*CENTRE, 60.0), margin_m=30.0, dwell_s=120.0)
RULES = Rules(PlaceIndex([FENCE]), dict(DEFAULT_RULES))


def fix(t: float, p: tuple[float, float]) -> dict:
    return {"c": 0, "t": t, "rx": t, "k": "pos", "lat": p[0], "lon": p[1], "fix": True, "hdop": 1.0, "flags": Flag.FIX}


def walk(steps: list[tuple[int, float, float]], start: float = 1.7e9) -> list[str]:
    state, kinds, t = initial_state(), [], start
    for dt, az, d in steps:
        t += dt
        state, found = RULES.step(state, fix(t, offset(CENTRE, az, d)), None)
        kinds += [f.kind for f in found if f.kind in (ENTER, EXIT)]
    return kinds


step_at = st.tuples(st.integers(1, 900), st.floats(0, 360))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 900), st.floats(0, 360), st.floats(0.0, 89.0)), min_size=1, max_size=80))
def test_jitter_inside_the_halo_never_exits(steps):
    """Any fixes that stay within shape + margin: at most one enter, never an exit."""
    kinds = walk(steps)
    assert kinds.count(EXIT) == 0 and kinds.count(ENTER) <= 1


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 900), st.floats(0, 360), st.floats(60.5, 5000.0)), min_size=1, max_size=60))
def test_never_inside_the_shape_never_enters(steps):
    assert walk(steps) == []


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 900), st.floats(0, 360), st.floats(0.0, 59.0)), min_size=1, max_size=20),
       st.lists(st.tuples(st.integers(1, 900), st.floats(0, 360), st.floats(91.0, 3000.0)), min_size=1, max_size=20),
       st.lists(st.tuples(st.integers(1, 900), st.floats(0, 360), st.floats(0.0, 89.0)), max_size=20))
def test_a_visit_is_one_enter_and_one_exit(inside, outside, jitter):
    """In the shape for at least the dwell, then beyond the halo for at least the dwell: exactly
    enter, exit — whatever jitter (inside the halo) comes between."""
    inside = inside + [(121, 0.0, 0.0)]
    outside = outside + [(121, 0.0, 4000.0)]
    assert walk(inside + jitter + outside) == [ENTER, EXIT]


# ---- order independence -------------------------------------------------------------------------

INDEX = PlaceIndex(places())
CAL = parse_calendar(CALENDAR)
PLANS = make_plans(INDEX.places, {"BOX-1": "T1"}, CAL)
ROAD = [(W[0] + (K[0] - W[0]) * i / 8, W[1]) for i in range(9)]
SPOTS = [W, K, S, T1, T2, offset(T1, 90, 75), offset(K, 0, 160), offset(ROAD[3], 90, 2000), *ROAD]
DEV = 0x000101


def frame_for(counter: int, t: int, item: tuple) -> Frame:
    if item[0] == "status":
        return Frame(Header(1, int(FrameType.STATUS), DEV, counter, t), Status(item[1], "1.0", 0, 4, Flag.FIX, 10))
    if item[0] == "pos":
        body: object = Position(SPOTS[item[1]][0], SPOTS[item[1]][1], Flag.FIX | item[2], 1.0, 10)
        ftype = FrameType.POSITION
    else:
        p = SPOTS[item[1]]
        body = Seal(int(item[2]), counter & 0xFF, Flag.FIX | Flag.TAMPER, p[0], p[1])
        ftype = FrameType.SEAL
    return Frame(Header(1, int(ftype), DEV, counter, t), body)  # type: ignore[arg-type]


item_st = st.one_of(
    st.tuples(st.just("pos"), st.integers(0, len(SPOTS) - 1), st.sampled_from([0, 0, 0, Flag.TAMPER])),
    st.tuples(st.just("seal"), st.integers(0, len(SPOTS) - 1),
              st.sampled_from([SealEvent.LOOP_OPEN, SealEvent.REARMED, SealEvent.CASE_OPEN, SealEvent.POWER_RESTORED])),
    st.tuples(st.just("status"), st.sampled_from([3300, 3500, 3700, 4100])),
)


def judge_all(recs: list[Accepted]) -> tuple[set, set]:
    conn = store.connect(":memory:")
    judge = CustodyJudge(conn, INDEX, PLANS, {"stop_minutes": 20, "corridor_dwell_s": 180})
    alerts: list[dict] = []
    for r in recs:
        conn.execute("BEGIN")
        alerts += judge.on_accepted(r, conn)
        conn.execute("COMMIT")
    findings = set(conn.execute("SELECT kind, place, t FROM judge_findings").fetchall())
    standing = set(conn.execute("SELECT kind, place, device_time, occurrences, state FROM alerts "
                                "WHERE state != 'withdrawn'").fetchall())
    # What was published, net of withdrawals, agrees with what is stored.
    live: set[str] = set()
    for a in alerts:
        if a["event"] == "raised":
            live.add(a["id"])
        elif a["event"] == "withdrawn":
            live.discard(a["id"])
    stored = {r[0] for r in conn.execute("SELECT id FROM alerts WHERE state != 'withdrawn'")}
    assert live == stored
    conn.close()
    return findings, standing


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(30, 900), item_st), min_size=2, max_size=30), st.randoms(use_true_random=False))
def test_same_frames_in_any_order_give_the_same_alerts(trace, rnd):
    t = wita("2024-11-23T06:30:00")
    recs = []
    for counter, (dt, item) in enumerate(trace, start=1):
        t += dt
        recs.append(Accepted(DEV, counter, t, float(t + 5), frame_for(counter, t, item), None, "BOX-1"))
    in_order = judge_all(recs)
    shuffled = list(recs)
    rnd.shuffle(shuffled)
    assert judge_all(shuffled) == in_order
