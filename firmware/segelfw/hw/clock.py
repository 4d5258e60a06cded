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


# The ESP32 port counts time from 2000-01-01 (the time module docs: only unix, windows, webassembly,
# alif, mimxrt and rp2 use 1970); frames carry Unix seconds, so convert here and only here.
EPOCH_OFFSET = 946684800 if time.gmtime(0)[0] == 2000 else 0


def unix_now() -> int:
    return int(time.time()) + EPOCH_OFFSET


class Clock:
    TIME_VALID = 1600000000

    def __init__(self) -> None:
        self.rtc = machine.RTC()

    def time(self) -> int:
        return unix_now()

    def set_time(self, unix: int) -> None:
        t = time.gmtime(unix - EPOCH_OFFSET)
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
