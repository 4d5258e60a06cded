"""A virtual clock: true time in ms, the device's RTC view of it, and ticks since boot."""

from __future__ import annotations

from segelfw import hal


class SimClock(hal.Clock):
    """`now_ms` is the true (simulation) time in unix ms; nothing here waits in real time.

    The device's wall clock is true time plus an offset once set (by a GNSS fix or at
    construction); after a power cut it restarts from 0 like an unset ESP32 RTC.
    """

    def __init__(self, start: float, rtc_set: bool = True) -> None:
        self.now_ms = int(start * 1000)
        self._boot_ms = self.now_ms
        self._rtc_base_ms: int | None = 0 if rtc_set else self.now_ms  # device_ms = now_ms - base
        self.listeners: list = []  # callables(now_ms) told after every advance

    # --- hal.Clock -------------------------------------------------------------------------------
    def time(self) -> int:
        return (self.now_ms - (self._rtc_base_ms or 0)) // 1000

    def set_time(self, unix: int) -> None:
        self._rtc_base_ms = self.now_ms - int(unix) * 1000

    def ticks_ms(self) -> int:
        return self.now_ms - self._boot_ms

    def sleep_ms(self, ms: int) -> None:
        self.advance(ms)

    # --- simulation controls --------------------------------------------------------------------
    @property
    def now(self) -> float:
        return self.now_ms / 1000

    def advance(self, ms: int) -> None:
        if ms < 0:
            raise ValueError("time runs forward")
        self.now_ms += int(ms)
        for f in self.listeners:
            f(self.now_ms)

    def advance_to(self, unix_ms: int) -> None:
        if unix_ms > self.now_ms:
            self.advance(unix_ms - self.now_ms)

    def reboot(self) -> None:
        """Deep-sleep wake or reset: ticks restart, the RTC keeps running."""
        self._boot_ms = self.now_ms

    def power_cut(self) -> None:
        """Power lost and back: ticks restart and the RTC forgets the time."""
        self._boot_ms = self.now_ms
        self._rtc_base_ms = self.now_ms
