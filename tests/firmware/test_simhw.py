"""The simulated hardware other components build on (fleet simulator, base-station tests)."""

from __future__ import annotations

from pathlib import Path

import pytest
from segelfw import nmea
from simhw import SimAir, SimClock, SimGnss, SimRadio, SimRtcMemory, SimTracker

T0 = 1_800_000_000
ROUTE = [(T0, -0.5, 117.1), (T0 + 3600, -0.6, 117.2)]


def fix_after(g: SimGnss, clock: SimClock, seconds: int) -> nmea.Fix:
    r = nmea.Reader()
    for _ in range(seconds):
        clock.advance(1000)
        r.feed(g.read() or b"")
    return r.fix


def test_gnss_hot_and_cold_starts_and_noise() -> None:
    clock = SimClock(T0)
    g = SimGnss(clock, ROUTE, ttff_hot_s=2, ttff_cold_s=30, noise_m=3)
    g.power(True)
    assert not fix_after(g, clock, 20).valid()  # cold: nothing after 20 s
    f = fix_after(g, clock, 15)
    assert f.valid()
    la, lo, _ = g.truth(clock.now)
    assert abs(f.lat_e7 / 1e7 - la) * 111_320 < 20 and abs(f.lon_e7 / 1e7 - lo) * 111_320 < 20
    g.power(False)
    clock.advance(600_000)
    g.power(True)  # backup kept: hot
    assert fix_after(g, clock, 3).valid()
    g.power(False)
    assert g.power_ons == 2 and g.on_ms_total == 38_000


def test_gnss_without_backup_starts_cold_and_dropouts_hide_the_fix() -> None:
    clock = SimClock(T0)
    g = SimGnss(clock, ROUTE, backup=False, ttff_cold_s=30, dropouts=[(T0 + 100, T0 + 200)])
    g.power(True)
    assert fix_after(g, clock, 40).valid()
    g.power(False)
    g.power(True)
    assert not fix_after(g, clock, 5).valid()
    clock.advance_to((T0 + 120) * 1000)
    g.read()
    assert not fix_after(g, clock, 30).valid()  # inside the dropout


def test_garbage_injection_is_rejected_by_the_parser() -> None:
    clock = SimClock(T0)
    g = SimGnss(clock, ROUTE, ttff_cold_s=1, garbage_every=4)
    g.power(True)
    r = nmea.Reader()
    clock.advance(10_000)
    r.feed(g.read())
    assert r.fix.valid() and sum(r.rejects.values()) >= 5


def test_rtc_memory_survives_deep_sleep_not_a_power_cut(tmp_path: Path) -> None:
    t = SimTracker(tmp_path, ROUTE)
    t.rtc.write(b"state")
    t.system.deepsleep(60_000)
    assert t.deep_sleep() == 60_000 and t.rtc.read() == b"state"
    t.power_cut()
    assert t.rtc.read() == b"" and t.clock.time() < 100  # the RTC forgot the time too
    with pytest.raises(ValueError, match="2048"):
        SimRtcMemory().write(bytes(2049))


def test_seal_edge_wakes_the_tracker_early(tmp_path: Path) -> None:
    t = SimTracker(tmp_path, ROUTE)
    t.seal.schedule(T0 + 30, "loop", True)
    t.seal.arm_wake()
    t.system.deepsleep(300_000)
    assert t.deep_sleep() == 30_250
    assert t.seal.events()[0][:3] == ("loop", True, T0 + 30)


def test_air_delivers_between_radios_on_the_same_channel_and_sf() -> None:
    clock = SimClock(T0)
    air = SimAir()
    a, b, c = SimRadio(clock, air, "a"), SimRadio(clock, air, "b"), SimRadio(clock, air, "c")
    for r in (a, b):
        r.configure({"freq_khz": 921400, "sf": 10, "preamble_len": 8})
    c.configure({"freq_khz": 921600, "sf": 10, "preamble_len": 8})
    a.send(b"x" * 24)
    assert a.sent[0]["toa_us"] == 370_688 and clock.now_ms == T0 * 1000 + 370
    p = b.recv(timeout_ms=100)
    assert p is not None and bytes(p) == b"x" * 24 and not p.crc_error
    assert c.recv(timeout_ms=100) is None
    with pytest.raises(ValueError, match="unknown lora_cfg"):
        a.configure({"frequency": 1})
