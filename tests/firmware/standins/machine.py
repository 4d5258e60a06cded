"""Stand-in for MicroPython's `machine` on CPython: only names micropython-esp32-stubs declares.

Private module state (underscore names) lets a test feed the UART, preset PMU registers and see
the deep-sleep request; tests/firmware/test_hw_boot.py checks the public names against the stubs.
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
    raise _DeepSleep(time_ms)


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
        return bytes(_i2c_regs.get((addr, memaddr + i), 0) for i in range(nbytes))

    def writeto_mem(self, addr: int, memaddr: int, buf, *, addrsize: int = 8) -> None:
        for i, b in enumerate(bytes(buf)):
            _i2c_regs[(addr, memaddr + i)] = b


class UART:
    def __init__(self, id: int, baudrate: int = 9600, bits: int = 8, parity: int | None = None, stop: int = 1, *,
                 tx: Pin | None = None, rx: Pin | None = None, txbuf: int | None = None, rxbuf: int | None = None,
                 timeout: int | None = None) -> None:
        self._id = id
        self._baudrate = baudrate

    def any(self) -> int:
        return len(_uart_feed[0]) if _uart_feed else 0

    def read(self, nbytes: int | None = None) -> bytes | None:
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
        self._timeout = timeout

    def feed(self) -> None:
        global _wdt_feeds
        _wdt_feeds += 1
