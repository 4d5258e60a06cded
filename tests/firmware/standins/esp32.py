"""Stand-in for MicroPython's `esp32` on CPython: only names micropython-esp32-stubs declares."""

from __future__ import annotations

WAKEUP_ALL_LOW = False
WAKEUP_ANY_HIGH = True

_wake: dict = {}


def wake_on_ext0(pin, level: bool) -> None:
    _wake["ext0"] = (None if pin is None else pin._id, level)


def wake_on_ext1(pins, level: bool) -> None:
    _wake["ext1"] = (None if pins is None else [p._id for p in pins], level)
