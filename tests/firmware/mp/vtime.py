# Virtual time for the firmware's boot (on the WebAssembly MicroPython, and on CPython in
# boot_runner.py): installed as sys.modules["time"] before the firmware imports `time`, so its own
# time calls (ticks, sleep_ms, the RTC's 2000 epoch as on the ESP32 port) run on a clock that
# advances instantly. Sleeping also lets the stand-in watchdog check whether it would have fired.
import sys

import time as _real

ESP32_EPOCH = 946684800  # the ESP32 port counts time.time() from 2000-01-01


class VirtualTime:
    def __init__(self, start_unix, epoch=ESP32_EPOCH, real=False):
        self.ms = 0  # ms since boot (ticks)
        self.unix_ms = start_unix * 1000  # the wall clock, unix ms
        self.epoch = epoch  # what time.time() counts from: 2000 on the ESP32 port, 1970 elsewhere
        self.hooks = []  # called with the new ticks after every advance (the watchdog)
        # real: sleeping takes real time too (a test against a real broker, whose answers take
        # real milliseconds to arrive); the clock still starts where the scenario says
        self.real = real

    def advance(self, ms):
        if self.real and ms > 0:
            _real.sleep_ms(ms)
        self.ms += ms
        self.unix_ms += ms
        for h in self.hooks:
            h(self.ms)

    # --- the time module's API as the firmware uses it ---
    def ticks_ms(self):
        return self.ms

    def ticks_us(self):
        return self.ms * 1000

    def ticks_add(self, t, d):
        return t + d

    def ticks_diff(self, a, b):
        return a - b

    def sleep_ms(self, ms):
        self.advance(int(ms))

    def sleep_us(self, us):
        self.advance(us // 1000)

    def sleep(self, s):
        self.advance(int(s * 1000))

    def time(self):
        return self.unix_ms // 1000 - self.epoch

    def time_ns(self):
        return (self.unix_ms - self.epoch * 1000) * 1000000

    def gmtime(self, secs=None):
        return _real.gmtime((self.time() if secs is None else secs) + self.epoch)

    def localtime(self, secs=None):
        return self.gmtime(secs)

    def mktime(self, t):
        return _real.mktime(t) - self.epoch


def install(start_unix, epoch=ESP32_EPOCH, real=False):
    vt = VirtualTime(start_unix, epoch, real)
    sys.modules["time"] = vt
    sys.modules["utime"] = vt
    return vt
