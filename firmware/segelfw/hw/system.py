# hal.RtcMemory, hal.Watchdog and hal.System on the ESP32.
import os

import machine

from segelfw import protocol as P

RTC_MEMORY_MAX = 2048


class RtcMemory:
    def __init__(self) -> None:
        self.rtc = machine.RTC()

    def read(self) -> bytes:
        return self.rtc.memory()

    def write(self, data: bytes) -> None:
        if len(data) > RTC_MEMORY_MAX:
            raise ValueError("RTC memory holds 2048 bytes")
        self.rtc.memory(data)


class Watchdog:
    def __init__(self, timeout_ms: int = 30000) -> None:
        self.wdt = machine.WDT(timeout=timeout_ms)

    def feed(self) -> None:
        self.wdt.feed()


_CAUSES = {
    machine.PWRON_RESET: P.R_POWER_ON,  # brown-out also reports PWRON_RESET on MicroPython
    machine.HARD_RESET: P.R_HARD,
    machine.WDT_RESET: P.R_WATCHDOG,
    machine.DEEPSLEEP_RESET: P.R_DEEPSLEEP,
    machine.SOFT_RESET: P.R_SOFT,
}


class System:
    def reset_cause(self) -> int:
        return _CAUSES.get(machine.reset_cause(), P.R_UNKNOWN)

    def deepsleep(self, ms: int) -> None:
        machine.deepsleep(ms)

    def random_u32(self) -> int:
        b = os.urandom(4)
        return (b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]
