"""Simulated T-Beam hardware behind segelfw.hal's interfaces (CPython only, never shipped).

Virtual time: every part reads one SimClock, and waiting (sleep_ms, a receive window, deep sleep)
advances it instantly, so a day of 5-minute wake cycles runs in seconds.

    from simhw import SimTracker
    t = SimTracker(tmp_path, route=[(t0, -0.5, 117.1), (t0 + 3600, -0.6, 117.2)], start=t0)
    t.seal.schedule(t0 + 1800, "loop", True)      # the seal wire is cut half-way
    drivers = t.drivers()                           # a segelfw.hal.Drivers
    ... run segelfw.cycle with drivers ..., then t.deep_sleep() / t.power_cut()
"""

from simhw.board import SimFlash, SimPmu, SimRtcMemory, SimSystem, SimTracker, SimWatchdog
from simhw.clock import SimClock
from simhw.gnss import SimGnss, nmea_sentence
from simhw.radio import SimAir, SimRadio
from simhw.seal import SimSeal

__all__ = [
    "SimAir", "SimClock", "SimFlash", "SimGnss", "SimPmu", "SimRadio", "SimRtcMemory", "SimSeal",
    "SimSystem", "SimTracker", "SimWatchdog", "nmea_sentence",
]
