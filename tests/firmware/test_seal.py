"""The seal: debounce, brief opens kept, latched tamper only a technician clears, append-only log."""

from __future__ import annotations

from pathlib import Path

from segelfw import protocol as P
from segelfw.seal import DEBOUNCE_MS, Seal
from segelfw.state import RtcState
from simhw import SimClock, SimRtcMemory, SimSeal

T0 = 1_800_000_000


def rig(tmp: Path):
    clock = SimClock(T0)
    inputs = SimSeal(clock, ("loop", "lid"))
    rtc = SimRtcMemory()
    seal = Seal(str(tmp / "seal.log"), inputs.names, RtcState(rtc))
    return clock, inputs, rtc, seal


def poll(clock, inputs, seal):
    ev = seal.poll(inputs, clock.time(), clock.ticks_ms())
    if not seal.settled():
        clock.advance(DEBOUNCE_MS + 5)
        ev += seal.poll(inputs, clock.time(), clock.ticks_ms())
    return [(e[0], e[2], e[3]) for e in ev]  # (event, flags, time)


def test_first_boot_takes_levels_as_they_are(tmp_path: Path) -> None:
    clock, inputs, _, seal = rig(tmp_path)
    assert poll(clock, inputs, seal) == []
    assert not seal.armed and seal.flags() == 0


def test_bounce_is_filtered_but_a_brief_open_is_kept(tmp_path: Path) -> None:
    clock, inputs, _, seal = rig(tmp_path)
    poll(clock, inputs, seal)
    assert seal.rearm(T0, inputs.levels()) is None  # the crew arms the seal
    inputs.bounce(T0 + 10, "lid", True, chatter=6, spacing_ms=3)  # lid opens, switch chatters
    inputs.bounce(T0 + 12, "lid", False, chatter=4, spacing_ms=2)  # ... and closes 2 s later
    inputs.schedule(T0 + 20.000, "loop", True)
    inputs.schedule(T0 + 20.010, "loop", False)  # 10 ms glitch: bounce, not an event
    clock.advance(60_000)
    ev = poll(clock, inputs, seal)
    assert [(e, t) for e, _, t in ev] == [(P.E_LID_OPEN, T0 + 10), (P.E_LID_CLOSED, T0 + 12)]
    assert ev[0][1] & P.F_LID_OPEN and ev[0][1] & P.F_TAMPER
    assert not ev[1][1] & P.F_LID_OPEN and ev[1][1] & P.F_TAMPER  # closed again, tamper stays


def test_tamper_latches_until_a_technician_rearms(tmp_path: Path) -> None:
    clock, inputs, rtc, seal = rig(tmp_path)
    poll(clock, inputs, seal)
    seal.rearm(T0, inputs.levels())
    inputs.schedule(T0 + 5, "loop", True)
    clock.advance(6_000)
    assert [e for e, _, _ in poll(clock, inputs, seal)] == [P.E_LOOP_OPEN]
    assert seal.rearm(clock.time(), inputs.levels()) == "cannot arm: loop is open; close it first"
    inputs.schedule(T0 + 7, "loop", False)
    clock.advance(2_000)
    poll(clock, inputs, seal)
    assert seal.tamper  # closing the loop does not clear it
    # a reboot, a power cut: still latched (state comes back from RTC memory or the flash log)
    seal2 = Seal(str(tmp_path / "seal.log"), inputs.names, RtcState(rtc))
    assert seal2.tamper
    rtc.power_cut()
    seal3 = Seal(str(tmp_path / "seal.log"), inputs.names, RtcState(rtc))
    assert seal3.tamper and seal3.armed and seal3.seq == seal.seq
    assert seal3.rearm(clock.time(), inputs.levels()) is None
    assert not seal3.tamper and seal3.new_events[-1][0] == P.E_REARMED
    assert seal3.rearm(clock.time(), inputs.levels()) == "already armed, no tamper to clear"


def test_edge_missed_during_boot_is_reconciled(tmp_path: Path) -> None:
    clock, inputs, _, seal = rig(tmp_path)
    poll(clock, inputs, seal)
    inputs._level["loop"] = True  # changed with no latched edge (e.g. while the chip booted)
    assert [e for e, _, _ in poll(clock, inputs, seal)] == [P.E_LOOP_OPEN]


def test_log_is_append_only_and_survives_a_torn_write(tmp_path: Path) -> None:
    clock, inputs, rtc, seal = rig(tmp_path)
    poll(clock, inputs, seal)
    seal.rearm(T0, inputs.levels())
    for i in range(4):
        inputs.schedule(T0 + 10 + 2 * i, "lid", i % 2 == 0)
    clock.advance(30_000)
    poll(clock, inputs, seal)
    log = seal.log()
    assert [e for _, e, _, _ in log] == [P.E_ARMED, P.E_LID_OPEN, P.E_LID_CLOSED, P.E_LID_OPEN, P.E_LID_CLOSED]
    assert [s for s, _, _, _ in log] == [1, 2, 3, 4, 5]
    p = tmp_path / "seal.log"
    data = p.read_bytes()
    p.write_bytes(data[:-5])  # power cut in the middle of the last append
    rtc.power_cut()
    seal2 = Seal(str(p), inputs.names, RtcState(rtc))
    assert [s for s, _, _, _ in seal2.log()] == [1, 2, 3, 4]
    assert seal2.seq == 4 and seal2.is_open("lid")  # state as of the last complete record
    inputs.schedule(T0 + 40, "loop", True)
    clock.advance(15_000)
    poll(clock, inputs, seal2)
    assert [s for s, _, _, _ in seal2.log()] == [1, 2, 3, 4, 5, 6]


def test_power_restored_event_only_when_armed(tmp_path: Path) -> None:
    clock, inputs, _, seal = rig(tmp_path)
    poll(clock, inputs, seal)
    seal.power_restored(T0)
    assert seal.new_events == []
    seal.rearm(T0, inputs.levels())
    seal.power_restored(T0 + 1)
    assert seal.new_events[-1][0] == P.E_POWER_RESTORED
