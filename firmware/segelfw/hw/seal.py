# hal.SealInputs on RTC-capable GPIOs with external pull-ups (docs/hardware.md): an open circuit
# reads board["seal"]["open_level"] (1). Edges are latched by Pin IRQs with their time; before deep
# sleep, closed inputs are armed to wake the chip when they open (ext1, any high) and one open
# input (the loop first) to wake it when it closes again (ext0). After a pin wake, MicroPython 1.29+
# says which pin (machine.wake_pins()); earlier releases do not, and pin_wake() reports it so
# seal.py records an unexplained wake (tamper) when every input reads as it was armed.
import time

import esp32
import machine
from machine import Pin

from segelfw.hw.clock import unix_now

try:
    _ticks_ms = time.ticks_ms
    _ticks_add = time.ticks_add
except AttributeError:  # CPython boot test

    def _ticks_ms():  # type: ignore[misc]
        return time.monotonic_ns() // 1000000  # type: ignore[attr-defined]  # CPython only

    def _ticks_add(t, d):  # type: ignore[misc]
        return t + d


_NAMES = ("loop", "lid", "case")


class SealInputs:
    def __init__(self, seal_cfg: dict) -> None:
        self.open_level = seal_cfg.get("open_level", 1)
        self.pins: dict = {}
        self.gpio: dict = {}
        names = []
        for n in _NAMES:
            g = seal_cfg.get(n)
            if g is None:
                continue
            p = Pin(g, Pin.IN)  # external 1 MOhm pull-up: defined in deep sleep too
            self.pins[n] = p
            self.gpio[g] = n
            names.append(n)
            p.irq(handler=self._edge, trigger=Pin.IRQ_RISING | Pin.IRQ_FALLING)
        self.names = tuple(names)
        self._edges: list = []
        self._pin_wake = False
        self._woke_by_pin()

    def _edge(self, pin: Pin) -> None:
        # soft IRQ (hard=False): allocation is allowed; keep it short
        for n in self.pins:
            if self.pins[n] is pin:
                self._edges.append((n, pin.value() == self.open_level, unix_now(), _ticks_ms()))

    def _woke_by_pin(self) -> None:
        if machine.reset_cause() != machine.DEEPSLEEP_RESET:
            return
        if machine.wake_reason() not in (machine.EXT0_WAKE, machine.EXT1_WAKE):
            return
        if not hasattr(machine, "wake_pins"):  # before MicroPython 1.29: which pin is unknown; a
            self._pin_wake = True  # lasting change shows in the levels, a brief one only here
            return
        now = unix_now()
        t = _ticks_ms()
        for g in machine.wake_pins():
            n = self.gpio.get(g)
            if n is None:
                continue
            was_open = self.pins[n].value() != self.open_level
            # the level that woke us may already be gone (a brief open): record both edges
            self._edges.append((n, was_open, now, _ticks_add(t, -100)))
            self._edges.append((n, not was_open, now, t))

    def pin_wake(self) -> bool:
        w = self._pin_wake
        self._pin_wake = False
        return w

    def levels(self) -> dict:
        return {n: self.pins[n].value() == self.open_level for n in self.pins}

    def events(self) -> list:
        state = machine.disable_irq()
        ev = self._edges
        self._edges = []
        machine.enable_irq(state)
        return ev

    def arm_wake(self) -> None:
        lv = self.levels()
        closed = [self.pins[n] for n in self.names if not lv[n]]
        opened = [n for n in self.names if lv[n]]
        high = self.open_level == 1
        esp32.wake_on_ext1(closed or None, esp32.WAKEUP_ANY_HIGH if high else esp32.WAKEUP_ALL_LOW)
        if opened:
            esp32.wake_on_ext0(self.pins[opened[0]], not high)
        else:
            esp32.wake_on_ext0(None, False)
