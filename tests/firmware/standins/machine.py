"""Stand-in for MicroPython's `machine` (CPython and MicroPython): only names micropython-esp32-stubs
declares.

Private module state (underscore names) lets a test feed the UART, put a register-level PMU model
on the I2C bus (_axp.py), see the deep-sleep request and whether the watchdog would have fired;
tests/firmware/test_hw_boot.py checks the public names against the stubs.
"""

from __future__ import annotations

PWRON_RESET = 1
HARD_RESET = 2
WDT_RESET = 3
DEEPSLEEP_RESET = 4
SOFT_RESET = 5
EXT0_WAKE = 2
EXT1_WAKE = 3
PIN_WAKE = 2
TIMER_WAKE = 4

_reset_cause = PWRON_RESET
_wake_reason = 0
_wake_pins: tuple = ()
_rtc_memory = b""
_uart_feed: list[bytes] = []  # chunks the GNSS UART returns, one per read()
_uart_written: list[bytes] = []
_i2c_regs: dict[tuple[int, int], int] = {}  # (addr, reg) -> value
_pin_levels: dict[int, int] = {}
_wdt_feeds = 0
_i2c_devices: dict = {}  # addr -> a register model (_axp.AXP192 / AXP2101); others read _i2c_regs
_uart_gate_pin = None  # a GNSS enable/standby pin: the UART says nothing while it is low (L76K)
_wdt_timeout_ms = None
_wdt_last_ms = 0
_wdt_fired_at = None


def _ticks() -> int:
    import time

    f = getattr(time, "ticks_ms", None)
    return f() if f is not None else time.monotonic_ns() // 1000000  # type: ignore[attr-defined]


class _WatchdogReset(BaseException):
    """The watchdog would have reset the chip: nothing fed it for longer than its timeout."""


def _wdt_check(now_ms=None) -> None:
    global _wdt_fired_at
    if _wdt_timeout_ms is None:
        return
    now = _ticks() if now_ms is None else now_ms
    if now - _wdt_last_ms > _wdt_timeout_ms:
        _wdt_fired_at = now
        raise _WatchdogReset(now - _wdt_last_ms)


class _DeepSleep(BaseException):
    """Raised by deepsleep(): on the board the chip powers down and main.py starts again."""

    def __init__(self, ms: int | None) -> None:
        super().__init__(ms)
        self.ms = ms


def reset_cause() -> int:
    return _reset_cause


def wake_reason() -> int:
    return _wake_reason


def wake_pins() -> tuple:
    return _wake_pins


def deepsleep(time_ms: int | None = None) -> None:
    _wdt_check()
    raise _DeepSleep(time_ms)


_freq = 160000000


def freq(hz: int | None = None):
    global _freq
    if hz is None:
        return _freq
    if hz not in (20000000, 40000000, 80000000, 160000000, 240000000):
        raise ValueError("frequency must be 20MHz, 40MHz, 80Mhz, 160MHz or 240MHz")
    _freq = hz
    return None


def disable_irq() -> int:
    return 0


def enable_irq(state: int) -> None:
    return None


class Pin:
    IN = 1
    OUT = 3
    PULL_UP = 2
    PULL_DOWN = 1
    IRQ_RISING = 1
    IRQ_FALLING = 2

    def __init__(self, id: int, mode: int = -1, pull: int = -1, *, value: int | None = None, drive: int | None = None,
                 alt: int | None = None) -> None:
        self._id = id
        self._mode = mode
        if value is not None:
            _pin_levels[id] = value
        self._handler = None

    def value(self, x: int | None = None) -> int | None:
        if x is None:
            return _pin_levels.get(self._id, 0)
        _pin_levels[self._id] = int(x)
        return None

    def irq(self, handler=None, trigger: int = 3, *, priority: int = 1, wake: int | None = None, hard: bool = False):
        self._handler = handler
        return None


class I2C:
    def __init__(self, id: int, *, scl: Pin, sda: Pin, freq: int = 400000, timeout: int = 50000) -> None:
        self._id = id

    def readfrom_mem(self, addr: int, memaddr: int, nbytes: int, *, addrsize: int = 8) -> bytes:
        dev = _i2c_devices.get(addr)
        if dev is not None:
            return bytes(dev.read(memaddr + i) for i in range(nbytes))
        return bytes(_i2c_regs.get((addr, memaddr + i), 0) for i in range(nbytes))

    def writeto_mem(self, addr: int, memaddr: int, buf, *, addrsize: int = 8) -> None:
        dev = _i2c_devices.get(addr)
        for i, b in enumerate(bytes(buf)):
            if dev is not None:
                dev.write(memaddr + i, b)
            else:
                _i2c_regs[(addr, memaddr + i)] = b


class UART:
    def __init__(self, id: int, baudrate: int = 9600, bits: int = 8, parity: int | None = None, stop: int = 1, *,
                 tx: Pin | None = None, rx: Pin | None = None, txbuf: int | None = None, rxbuf: int | None = None,
                 timeout: int | None = None) -> None:
        self._id = id
        self._baudrate = baudrate

    def any(self) -> int:
        if _uart_gate_pin is not None and not _pin_levels.get(_uart_gate_pin, 0):
            return 0
        return len(_uart_feed[0]) if _uart_feed else 0

    def read(self, nbytes: int | None = None) -> bytes | None:
        if _uart_gate_pin is not None and not _pin_levels.get(_uart_gate_pin, 0):
            return None
        return _uart_feed.pop(0) if _uart_feed else None

    def write(self, buf) -> int | None:
        _uart_written.append(bytes(buf))
        return len(buf)


class SPI:
    def __init__(self, id: int, baudrate: int = 1000000, *, polarity: int = 0, phase: int = 0, bits: int = 8,
                 firstbit: int = 0, sck: Pin | None = None, mosi: Pin | None = None, miso: Pin | None = None) -> None:
        self._id = id
        self._baudrate = baudrate


class RTC:
    def __init__(self, id: int = 0) -> None:
        self._dt: tuple | None = None

    def memory(self, data: bytes | None = None) -> bytes | None:
        global _rtc_memory
        if data is None:
            return _rtc_memory
        _rtc_memory = bytes(data)
        return None

    def datetime(self, datetimetuple: tuple | None = None) -> tuple:
        if datetimetuple is not None:
            self._dt = tuple(datetimetuple)
        return self._dt or (2000, 1, 1, 5, 0, 0, 0, 0)


class WDT:
    def __init__(self, *, id: int = 0, timeout: int = 5000) -> None:
        global _wdt_timeout_ms, _wdt_last_ms
        self._timeout = timeout
        _wdt_timeout_ms = timeout
        _wdt_last_ms = _ticks()

    def feed(self) -> None:
        global _wdt_feeds, _wdt_last_ms
        _wdt_check()
        _wdt_feeds += 1
        _wdt_last_ms = _ticks()
