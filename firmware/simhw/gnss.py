"""A simulated GNSS receiver: NMEA (GGA, RMC, GSA) once a second along a route, while powered.

Time to first fix is short (hot start) when backup power kept the receiver's memory and the last
fix is recent, long otherwise (cold start). Noise, dropouts (no fix, e.g. inside a warehouse) and
line garbage can be injected. Power-on time is summed for energy figures.

The receiver runs only while its PMU rail is on (`set_rail`, called by SimPmu) and, for a module
with a standby pin (`wake_pin=True`: the Quectel L76K on the T-Beam Supreme, GPIO7), while that pin
is high (`set_wake`): with the pin low the L76K stays in standby and sends nothing, whatever the
rail. `power(on)` is the hal.Gnss driver call and does both, like segelfw/hw/gnss.py.
"""

from __future__ import annotations

import math
import random
import time as _time

from segelfw import hal

KNOTS_PER_MS = 1.943844
M_PER_DEG = 111_320.0


def nmea_sentence(body: str) -> bytes:
    """'GPGGA,...' -> b'$GPGGA,...*CS\\r\\n' (XOR of the characters between $ and *)."""
    cs = 0
    for ch in body.encode():
        cs ^= ch
    return b"$" + body.encode() + b"*%02X\r\n" % cs


def _lat(v: float) -> tuple[str, str]:
    a = abs(v)
    d = int(a)
    m = (a - d) * 60
    return f"{d:02d}{m:08.5f}", ("N" if v >= 0 else "S")


def _lon(v: float) -> tuple[str, str]:
    a = abs(v)
    d = int(a)
    m = (a - d) * 60
    return f"{d:03d}{m:08.5f}", ("E" if v >= 0 else "W")


class SimGnss(hal.Gnss):
    def __init__(
        self,
        clock,
        route: list[tuple[float, float, float]],
        *,
        seed: int = 1,
        noise_m: float = 3.0,
        hdop: float = 0.9,
        sats: int = 9,
        ttff_hot_s: int = 2,
        ttff_cold_s: int = 32,
        hot_window_s: int = 4 * 3600,
        backup: bool = True,
        dropouts: list[tuple[float, float]] | None = None,
        garbage_every: int = 0,
        talker: str = "GP",
        rx_buffer: int = 4096,
        wake_pin: bool = False,
    ) -> None:
        if not route:
            raise ValueError("route needs at least one (unix_time, lat, lon) point")
        self.clock = clock
        self.route = sorted(route)
        self.rng = random.Random(seed)
        self.noise_m = noise_m
        self.hdop = hdop
        self.sats = sats
        self.ttff_hot_s = ttff_hot_s
        self.ttff_cold_s = ttff_cold_s
        self.hot_window_s = hot_window_s
        self.backup = backup
        self.dropouts = list(dropouts or [])
        self.garbage_every = garbage_every
        self.talker = talker
        self.rx_buffer = rx_buffer
        self.on = False
        self._on_since_ms = 0
        self._next_s = 0  # next whole second to emit
        self._buf = bytearray()
        self._last_fix_s: float | None = None
        self._ttff_s = ttff_cold_s
        self._emitted = 0
        self.on_ms_total = 0
        self.power_ons = 0
        self.overflowed = 0
        self.wake_pin = wake_pin
        self.rail_on = False
        self.wake_high = False  # the ESP32 pin is low (an input) after every reset
        self.pmu = None  # SimPmu, for power(); set by SimTracker

    # --- the hardware: rail and standby pin ---------------------------------------------------------
    def set_rail(self, on: bool) -> None:
        self.rail_on = bool(on)
        self._run(self.rail_on and (self.wake_high or not self.wake_pin))

    def set_wake(self, high: bool) -> None:
        self.wake_high = bool(high)
        self._run(self.rail_on and (self.wake_high or not self.wake_pin))

    # --- hal.Gnss (the driver) --------------------------------------------------------------------
    def power(self, on: bool) -> None:
        if self.pmu is not None:
            self.pmu.rail("gnss", on)
        else:
            self.set_rail(on)
        if self.wake_pin:
            self.set_wake(on)

    def _run(self, on: bool) -> None:
        now = self.clock.now_ms
        if on and not self.on:
            self.on = True
            self.power_ons += 1
            self._on_since_ms = now
            self._next_s = now // 1000 + 1
            hot = (
                self.backup
                and self._last_fix_s is not None
                and now / 1000 - self._last_fix_s <= self.hot_window_s
            )
            self._ttff_s = self.ttff_hot_s if hot else self.ttff_cold_s
        elif not on and self.on:
            self._generate()
            self.on = False
            self.on_ms_total += now - self._on_since_ms
            self._buf = bytearray()
            if not self.backup:
                self._last_fix_s = None

    def read(self) -> bytes | None:
        self._generate()
        if not self._buf:
            return None
        out = bytes(self._buf)
        self._buf = bytearray()
        return out

    def write(self, data: bytes) -> None:
        pass

    # --- truth ------------------------------------------------------------------------------------
    def truth(self, t: float) -> tuple[float, float, float]:
        """(lat, lon, speed m/s) on the route at unix time t, interpolated."""
        r = self.route
        if t <= r[0][0]:
            return r[0][1], r[0][2], 0.0
        if t >= r[-1][0]:
            return r[-1][1], r[-1][2], 0.0
        for (t0, la0, lo0), (t1, la1, lo1) in zip(r, r[1:]):
            if t0 <= t <= t1:
                f = (t - t0) / (t1 - t0) if t1 > t0 else 0.0
                dy = (la1 - la0) * M_PER_DEG
                dx = (lo1 - lo0) * M_PER_DEG * math.cos(math.radians(la0))
                v = math.hypot(dx, dy) / (t1 - t0) if t1 > t0 else 0.0
                return la0 + f * (la1 - la0), lo0 + f * (lo1 - lo0), v
        raise AssertionError("unreachable")

    def has_fix_at(self, sec: int) -> bool:
        if sec - self._on_since_ms / 1000 < self._ttff_s:
            return False
        return not any(a <= sec < b for a, b in self.dropouts)

    # --- generation -------------------------------------------------------------------------------
    def _generate(self) -> None:
        if not self.on:
            return
        end_s = self.clock.now_ms // 1000
        # a long powered stretch only needs its last minute of sentences (the UART would overflow)
        if end_s - self._next_s > 60:
            self.overflowed += 1
            self._next_s = end_s - 60
        while self._next_s <= end_s:
            self._emit(self._next_s)
            self._next_s += 1
        if len(self._buf) > self.rx_buffer:
            del self._buf[: len(self._buf) - self.rx_buffer]

    def _emit(self, sec: int) -> None:
        fix = self.has_fix_at(sec)
        tm = _time.gmtime(sec)
        hms = f"{tm.tm_hour:02d}{tm.tm_min:02d}{tm.tm_sec:02d}.00"
        dmy = f"{tm.tm_mday:02d}{tm.tm_mon:02d}{tm.tm_year % 100:02d}"
        t = self.talker
        if fix:
            la, lo, v = self.truth(sec)
            la += self.rng.gauss(0, self.noise_m) / M_PER_DEG
            lo += self.rng.gauss(0, self.noise_m) / (M_PER_DEG * max(0.01, math.cos(math.radians(la))))
            (lat, ns), (lon, ew) = _lat(la), _lon(lo)
            self._last_fix_s = sec
            out = [
                f"{t}GGA,{hms},{lat},{ns},{lon},{ew},1,{self.sats:02d},{self.hdop:.1f},35.2,M,48.0,M,,",
                f"{t}GSA,A,3,02,05,12,15,18,21,24,25,29,,,,1.6,{self.hdop:.1f},1.3",
                f"{t}RMC,{hms},A,{lat},{ns},{lon},{ew},{v * KNOTS_PER_MS:.2f},87.5,{dmy},,,A",
            ]
        else:
            out = [
                f"{t}GGA,{hms},,,,,0,00,99.99,,,,,,",
                f"{t}GSA,A,1,,,,,,,,,,,,,99.99,99.99,99.99",
                f"{t}RMC,{hms},V,,,,,,,{dmy},,,N",
            ]
        for body in out:
            self._buf += nmea_sentence(body)
            self._emitted += 1
            if self.garbage_every and self._emitted % self.garbage_every == 0:
                self._buf += b"$GPGGA,12\xff\x00garbage*7Z\r\n"
