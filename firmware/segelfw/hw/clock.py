# hal.Clock on the ESP32: time.time() runs from the RTC (kept through deep sleep), set from GNSS.
import time

import machine

try:
    _ticks_ms = time.ticks_ms
    _ticks_diff = time.ticks_diff
    _sleep_ms = time.sleep_ms
except AttributeError:  # CPython (the boot test with stand-in modules): same semantics

    def _ticks_ms():  # type: ignore[misc]
        return time.monotonic_ns() // 1000000  # type: ignore[attr-defined]  # CPython only

    def _ticks_diff(a: int, b: int) -> int:  # type: ignore[misc]
        return a - b

    def _sleep_ms(ms: int) -> None:  # type: ignore[misc]
        time.sleep(ms / 1000)


class Clock:
    TIME_VALID = 1600000000

    def __init__(self) -> None:
        self.rtc = machine.RTC()

    def time(self) -> int:
        return int(time.time())

    def set_time(self, unix: int) -> None:
        t = time.gmtime(unix)
        # RTC.datetime: (year, month, day, weekday, hours, minutes, seconds, subseconds)
        self.rtc.datetime((t[0], t[1], t[2], t[6], t[3], t[4], t[5], 0))

    def ticks_ms(self):  # an opaque ticks value: compare only with ticks_diff()
        return _ticks_ms()

    def ticks_diff(self, a, b) -> int:
        return _ticks_diff(a, b)

    def sleep_ms(self, ms: int) -> None:
        _sleep_ms(ms)

    def valid(self) -> bool:
        return self.time() >= self.TIME_VALID
