"""The wake cycle on simulated hardware, acknowledged by the gateway's own protocol code."""

from __future__ import annotations

from pathlib import Path

import pytest
from segel import protocol as gp
from segelfw import airtime, cycle, link
from segelfw import protocol as P
from segelfw.queue import Queue

from tests.firmware.sim import DEV, ROUTE, T0, Gateway, cfg, tracker, wake


def kinds(frames) -> list[str]:
    return [f.type.name.lower() for f in frames]


def test_full_journey_with_a_seal_cut_mid_route(tmp_path: Path) -> None:
    t = tracker(tmp_path)
    gw = Gateway()
    t.radio.responder = gw
    c = cfg()
    Path(t.flash.path("rearm")).write_text("")  # the technician arms the seal at the warehouse
    cut = T0 + 5400 + 17  # the seal wire is cut half-way
    t.seal.schedule(cut, "loop", True)
    wakes = []
    while t.clock.now < T0 + 10800:
        n0 = len(gw.frames)
        wake(t, c)
        wakes.append(gw.frames[n0:])
    first = wakes[0]
    assert kinds(first) == ["seal", "position", "status"]
    assert first[0].body.event == P.E_ARMED
    cut_wake = next(w for w in wakes if any(f.type.name == "SEAL" and f.body.event == P.E_LOOP_OPEN for f in w))
    assert kinds(cut_wake)[:2] == ["seal", "position"], "the seal event goes out first"
    s = cut_wake[0]
    assert s.header.time == cut and s.body.flags & P.F_TAMPER and s.body.flags & P.F_LOOP_OPEN
    assert s.body.flags & P.F_FIX and s.body.lat != 0  # last known fix rides along
    # every other wake: a position, plus the hourly status
    for w in wakes[1:]:
        if w is not cut_wake:
            assert kinds(w) in (["position"], ["position", "status"]), kinds(w)
    assert kinds(cut_wake) == ["seal", "position"]
    after = [f for w in wakes[wakes.index(cut_wake) + 1:] for f in w]
    assert all(f.body.flags & P.F_TAMPER for f in after if f.type.name == "POSITION")
    # every frame once, counters strictly increasing, positions on the route
    ctrs = [f.header.counter for f in gw.frames]
    assert ctrs == sorted(set(ctrs))
    pos = [f for f in gw.frames if f.type.name == "POSITION"]
    assert len(pos) >= 36 and all(f.body.flags & P.F_FIX for f in pos)
    for f in pos:
        la, lo, _ = t.gnss.truth(f.header.time)
        assert abs(f.body.lat - la) * 111_320 < 30 and abs(f.body.lon - lo) * 111_320 < 30
    assert len(Queue(t.flash.path("queue.bin"))) == 0  # everything acknowledged and freed
    statuses = [f for f in gw.frames if f.type.name == "STATUS"]
    assert 3 <= len(statuses) <= 5  # hourly, plus the first boot
    assert statuses[0].body.reset_cause == P.R_POWER_ON
    assert all(f.body.reset_cause == P.R_DEEPSLEEP for f in statuses[1:])
    # GNSS: hot starts, powered only while fixing
    assert t.gnss.on_ms_total / max(1, t.gnss.power_ons) < 6000
    assert t.wdt.longest_gap_ms < t.wdt.timeout_ms


def test_gateway_outage_keeps_frames_until_acknowledged(tmp_path: Path) -> None:
    t = tracker(tmp_path)
    gw = Gateway()
    gw.online = False
    t.radio.responder = gw
    c = cfg()
    for _ in range(6):
        wake(t, c)
    t.seal.schedule(t.clock.now + 30, "lid", True)
    wake(t, c)  # the lid wake
    per_wake = cycle.policy.Policy(c).frames_per_wake()
    assert per_wake == 8
    q = Queue(t.flash.path("queue.bin"))
    assert len(q) >= 8
    gw.online = True
    n0 = len(t.radio.sent)
    wake(t, c)
    first = gp.verify_and_decode(gw.keys, t.radio.sent[n0]["packet"])
    assert first.type.name == "SEAL" and first.body.event == P.E_LID_OPEN  # seal ahead of the backlog
    assert len(t.radio.sent) - n0 <= per_wake
    for _ in range(4):
        wake(t, c)
    assert len(Queue(t.flash.path("queue.bin"))) == 0
    ctrs = [f.header.counter for f in gw.frames]
    assert len(ctrs) == len(set(ctrs))


def test_power_cut_mid_route(tmp_path: Path) -> None:
    t = tracker(tmp_path)
    gw = Gateway()
    t.radio.responder = gw
    c = cfg()
    Path(t.flash.path("rearm")).write_text("")
    for _ in range(3):
        wake(t, c)
    gw.online = False
    wake(t, c)  # one frame left unacknowledged in flash
    t.power_cut(off_s=120)
    gw.online = True
    wake(t, c)
    evs = [f.body.event for f in gw.frames if f.type.name == "SEAL"]
    assert evs == [P.E_ARMED, P.E_POWER_RESTORED]
    ctrs = [f.header.counter for f in gw.frames]
    assert len(ctrs) == len(set(ctrs)), "a counter was reused after the power cut"
    st = [f for f in gw.frames if f.type.name == "STATUS"][-1]
    assert st.body.reset_cause == P.R_POWER_ON and st.body.uptime_min == 0
    assert max(ctrs) >= 64  # resumed after the reserved block


def test_replayed_and_forged_downlinks_are_dropped(tmp_path: Path) -> None:
    t = tracker(tmp_path)
    gw = Gateway()
    t.radio.responder = gw
    c = cfg()
    wake(t, c)
    old_ack = gw.sent[0]
    forged = bytearray(gw.downlink(gp.Config(60, 30, 0, 0)))
    forged[-1] ^= 1
    gw.down -= 1

    def replay(packet: bytes, info: dict):
        return [(100, old_ack), (200, bytes(forged))] + (gw(packet, info) or [])

    t.radio.responder = replay
    cyc = cycle.Cycle(t.drivers(), c, board=t.board)
    cyc.run()
    t.deep_sleep()
    assert cyc.downlinks["replayed"] >= 1 and cyc.downlinks["bad"] >= 1
    assert cyc.downlinks["accepted"] >= 1  # the fresh ack after them still counts
    assert cyc.sleep_request_ms > 200_000  # the forged config (60 s) was not applied


def test_config_downlink_changes_interval_and_rearms(tmp_path: Path) -> None:
    t = tracker(tmp_path)
    gw = Gateway()
    c = cfg()
    t.radio.responder = gw
    Path(t.flash.path("rearm")).write_text("")
    wake(t, c)
    t.seal.schedule(t.clock.now + 100, "loop", True)  # a brief open-and-close between two reports
    t.seal.schedule(t.clock.now + 101.5, "loop", False)
    wake(t, c)
    wake(t, c)
    assert [f.body.event for f in gw.frames if f.type.name == "SEAL"][-2:] == [P.E_LOOP_OPEN, P.E_LOOP_CLOSED]

    def with_config(packet: bytes, info: dict):
        out = gw(packet, info) or []
        return out + [(900, gw.downlink(gp.Config(120, 45, cycle.CFG_REARM, 12)))]

    t.radio.responder = with_config
    cyc = cycle.Cycle(t.drivers(), c, board=t.board)
    ms = cyc.run()
    t.deep_sleep()
    assert 100_000 < ms <= 120_000  # the new interval
    assert cyc.policy.sf == 10  # SF12 refused: over the dwell limit
    t.radio.responder = gw
    wake(t, c)
    assert [f.body.event for f in gw.frames if f.type.name == "SEAL"][-1] == P.E_REARMED
    last_pos = [f for f in gw.frames if f.type.name == "POSITION"][-1]
    assert not last_pos.body.flags & P.F_TAMPER


def test_no_fix_still_reports_and_sleeps(tmp_path: Path) -> None:
    t = tracker(tmp_path, gnss={"dropouts": [(T0 - 10, T0 + 10**6)]})  # inside a warehouse all day
    gw = Gateway()
    t.radio.responder = gw
    c = cfg(fix_timeout_s=30)
    wake(t, c)
    pos = [f for f in gw.frames if f.type.name == "POSITION"]
    assert len(pos) == 1 and not pos[0].body.flags & P.F_FIX and pos[0].body.lat == 0
    assert 29_000 <= t.gnss.on_ms_total <= 31_500  # the fix timeout, then GNSS off


def test_channels_random_or_single(tmp_path: Path) -> None:
    t = tracker(tmp_path / "a")
    t.radio.responder = Gateway()
    c = cfg()
    for _ in range(12):
        wake(t, c)
    used = {s["freq_khz"] for s in t.radio.sent}
    assert len(used) >= 4 and used <= set(airtime.REGIONS["AS923-2"]["channels_khz"])
    assert all(s["sf"] == 10 and s["preamble"] == 8 for s in t.radio.sent)
    t2 = tracker(tmp_path / "b")
    t2.radio.responder = Gateway()
    c2 = cfg(channel=922200, sf=9)
    for _ in range(3):
        wake(t2, c2)
    assert {s["freq_khz"] for s in t2.radio.sent} == {922200}
    assert all(s["toa_us"] <= 400_000 for s in t.radio.sent + t2.radio.sent)


def test_radio_refuses_a_frame_over_the_dwell_limit(tmp_path: Path) -> None:
    t = tracker(tmp_path)
    lk = link.LoraLink(t.radio, cfg(), t.system.random_u32)
    lk.send(bytes(24))
    lk.set_sf(11)
    with pytest.raises(link.DwellError, match="over the 400 ms dwell limit"):
        lk.send(bytes(24))
    lk.set_sf(10)
    with pytest.raises(link.DwellError):
        lk.send(bytes(25))
    assert len(t.radio.sent) == 1 and lk.refused == 2


def test_crc_errors_are_ignored(tmp_path: Path) -> None:
    t = tracker(tmp_path)
    gw = Gateway()
    c = cfg()

    def bad_crc(packet: bytes, info: dict):
        good = gw(packet, info)
        assert good is not None
        t.radio.deliver(good[0][1], at_ms=t.clock.now_ms + 300, crc_error=True)
        return None

    t.radio.responder = bad_crc
    cyc = cycle.Cycle(t.drivers(), c, board=t.board)
    cyc.run()
    assert cyc.acked == 0 and cyc.downlinks == {"accepted": 0, "replayed": 0, "bad": 0}


def test_low_battery_slows_reports(tmp_path: Path) -> None:
    t = tracker(tmp_path, battery_mv=3250)
    t.radio.responder = Gateway()
    cyc = cycle.Cycle(t.drivers(), cfg(), board=t.board)
    ms = cyc.run()
    assert ms > 3 * 300_000
    assert DEV == cyc.dev and ROUTE


def test_config_downlink_sf_applies_to_later_uplinks(tmp_path: Path) -> None:
    t = tracker(tmp_path)
    gw = Gateway()
    c = cfg()

    def with_config(packet: bytes, info: dict):
        return (gw(packet, info) or []) + [(900, gw.downlink(gp.Config(0, 0, 0, 9)))]

    t.radio.responder = with_config
    wake(t, c)
    t.radio.responder = gw
    n = len(t.radio.sent)
    wake(t, c)
    # the position at SF9, with the config's confirmation (applied) and the status that follows a config
    kinds_sent = [gp.verify_and_decode(gw.keys, s["packet"]).type.name for s in t.radio.sent[n:]]
    assert kinds_sent == ["APPLIED", "POSITION", "STATUS"]
    assert [s["sf"] for s in t.radio.sent[n:]] == [9, 9, 9]
    assert airtime.time_on_air_us(9, 24) < airtime.time_on_air_us(10, 24)
    t.power_cut()  # the remote config is on flash: it survives
    n = len(t.radio.sent)
    wake(t, c)
    assert {s["sf"] for s in t.radio.sent[n:]} == {9}


def test_long_jitter_keeps_feeding_the_watchdog(tmp_path: Path) -> None:
    t = tracker(tmp_path)
    t.radio.responder = Gateway()
    c = cfg(jitter_ms=60_000)
    for _ in range(4):
        wake(t, c)
        assert t.wdt.longest_gap_ms < 10_000 < t.wdt.timeout_ms, t.wdt.longest_gap_ms


def test_l76k_standby_pin_gets_driven_high_for_a_fix(tmp_path: Path) -> None:
    """The T-Beam Supreme's L76K stays in standby while its wake pin (GPIO7) is low, whatever its
    rail: the cycle must power the receiver through the GNSS driver (rail + pin), not the PMU."""
    t = tracker(tmp_path, board="tbeam-supreme")
    assert t.gnss.wake_pin  # the board file names the pin, so the stand-in is an L76K
    t.pmu.rail("gnss", True)
    t.clock.sleep_ms(5000)
    assert t.gnss.read() is None, "an L76K with its wake pin low must send nothing"
    t.pmu.rail("gnss", False)
    gw = Gateway()
    t.radio.responder = gw
    c = cfg(board="tbeam-supreme")
    for _ in range(3):
        wake(t, c)
    pos = [f for f in gw.frames if f.type.name == "POSITION"]
    assert len(pos) == 3 and all(f.body.flags & P.F_FIX for f in pos), "no fix: the wake pin was never raised"
    assert not t.gnss.wake_high and not t.gnss.on  # pin low and rail off again before deep sleep
    assert t.gnss.on_ms_total < 50_000  # one cold start and two hot ones, not 3 x the 60 s timeout
