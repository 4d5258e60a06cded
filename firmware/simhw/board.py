"""The rest of a simulated T-Beam: RTC memory, flash, PMU, watchdog, system, and the whole tracker."""

from __future__ import annotations

import json
import os
from pathlib import Path

from segelfw import hal, protocol

from simhw.clock import SimClock
from simhw.gnss import SimGnss
from simhw.radio import SimAir, SimRadio
from simhw.seal import SimSeal

BOARDS = Path(__file__).resolve().parents[2] / "hardware" / "boards"


class SimRtcMemory(hal.RtcMemory):
    """Survives deep sleep, soft and watchdog resets; cleared by a power cut."""

    def __init__(self) -> None:
        self.data = b""

    def read(self) -> bytes:
        return self.data

    def write(self, data) -> None:
        if len(data) > hal.RTC_MEMORY_MAX:
            raise ValueError(f"RTC memory holds {hal.RTC_MEMORY_MAX} bytes, got {len(data)}")
        self.data = bytes(data)

    def power_cut(self) -> None:
        self.data = b""


class SimFlash(hal.Flash):
    def __init__(self, root: str | os.PathLike) -> None:
        Path(root).mkdir(parents=True, exist_ok=True)
        super().__init__(str(root))


class SimPmu(hal.Pmu):
    def __init__(self, clock: SimClock, gnss: SimGnss | None = None, battery_mv: int = 3950, external: bool = False,
                 rails: tuple[str, ...] = ("radio", "gnss", "oled")) -> None:
        self.clock = clock
        self.gnss = gnss
        self.mv = battery_mv
        self.external = external
        self.rails = {r: (r != "gnss") for r in rails}
        self.log: list[tuple[int, str, bool]] = []

    def battery_mv(self) -> int:
        return self.mv

    def external_power(self) -> bool:
        return self.external

    def rail(self, name: str, on: bool) -> None:
        if name not in self.rails:
            raise ValueError(f"no rail {name!r}; rails: {sorted(self.rails)}")
        self.rails[name] = bool(on)
        self.log.append((self.clock.now_ms, name, bool(on)))
        if name == "gnss" and self.gnss is not None:
            self.gnss.set_rail(on)


class SimWatchdog(hal.Watchdog):
    def __init__(self, clock: SimClock, timeout_ms: int = 30000) -> None:
        self.clock = clock
        self.timeout_ms = timeout_ms
        self.last_feed_ms = clock.now_ms
        self.longest_gap_ms = 0

    def feed(self) -> None:
        gap = self.clock.now_ms - self.last_feed_ms
        self.longest_gap_ms = max(self.longest_gap_ms, gap)
        self.last_feed_ms = self.clock.now_ms

    def expired(self) -> bool:
        return self.clock.now_ms - self.last_feed_ms > self.timeout_ms


class SimSystem(hal.System):
    def __init__(self, seed: int = 3) -> None:
        self.cause = protocol.R_POWER_ON
        self.sleep_request_ms: int | None = None
        self._state = seed * 2654435761 & 0xFFFFFFFF or 1

    def reset_cause(self) -> int:
        return self.cause

    def deepsleep(self, ms: int) -> None:
        self.sleep_request_ms = int(ms)

    def random_u32(self) -> int:  # xorshift32: reproducible runs
        x = self._state
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        self._state = x
        return x


def cpython_aes_block(key: bytes):
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    enc = Cipher(algorithms.AES(bytes(key)), modes.ECB()).encryptor()
    return lambda block: enc.update(bytes(block))


def load_board(board_id: str) -> dict:
    return json.loads((BOARDS / f"{board_id}.json").read_text())


class SimTracker:
    """One simulated tracker: every driver on one virtual clock, plus sleep and power events."""

    def __init__(self, root: str | os.PathLike, route: list[tuple[float, float, float]], start: float | None = None,
                 *, board: str = "tbeam-v1.1", seed: int = 1, air: SimAir | None = None, battery_mv: int = 3950,
                 rtc_set: bool = True, gnss: dict | None = None, name: str = "tracker") -> None:
        self.board = load_board(board)
        self.clock = SimClock(route[0][0] if start is None else start, rtc_set=rtc_set)
        g = dict(gnss or {})
        g.setdefault("wake_pin", self.board["gnss"].get("wake") is not None)
        self.gnss = SimGnss(self.clock, route, seed=seed, **g)
        names = tuple(n for n in hal.SEAL_INPUTS if self.board["seal"].get(n) is not None)
        self.seal = SimSeal(self.clock, names)
        self.radio = SimRadio(self.clock, air, name=name)
        self.rtc = SimRtcMemory()
        self.flash = SimFlash(Path(root) / "flash")
        self.pmu = SimPmu(self.clock, self.gnss, battery_mv, rails=tuple(self.board["pmu"]["rails"]))
        self.gnss.pmu = self.pmu
        self.wdt = SimWatchdog(self.clock)
        self.system = SimSystem(seed)
        self.boots = 0
        self.awake_ms = 0
        self.sleep_ms = 0
        self._boot_at = self.clock.now_ms

    def drivers(self) -> hal.Drivers:
        self.boots += 1
        self._boot_at = self.clock.now_ms
        self.wdt.last_feed_ms = self.clock.now_ms  # a new machine.WDT after every boot
        return hal.Drivers(self.clock, self.gnss, self.seal, self.radio, self.rtc, self.flash, self.pmu, self.wdt,
                           self.system, aes_block=cpython_aes_block)

    def deep_sleep(self) -> int:
        """Carry out the requested deep sleep: wake on the timer or an armed seal edge. -> ms slept."""
        ms = self.system.sleep_request_ms
        if ms is None:
            raise RuntimeError("the firmware did not request deep sleep")
        self.awake_ms += self.clock.now_ms - self._boot_at
        self.system.sleep_request_ms = None
        wake = self.clock.now_ms + ms
        edge = self.seal.next_edge_ms() if self.seal.wake_armed else None
        if edge is not None and edge < wake:
            wake = max(edge, self.clock.now_ms) + 250  # boot time after an ext1 wake
        slept = wake - self.clock.now_ms
        self.sleep_ms += slept
        self.clock.advance_to(wake)
        self.clock.reboot()
        self.gnss.set_wake(False)  # GPIOs are reset by the wake
        self.seal.wake_armed = False
        self.system.cause = protocol.R_DEEPSLEEP
        return slept

    def power_cut(self, off_s: float = 10, battery_removed: bool = False) -> None:
        """Power lost (cell pulled, brown-out) and restored: RTC memory and RTC time are gone."""
        self.awake_ms += self.clock.now_ms - self._boot_at
        self.system.sleep_request_ms = None
        self.gnss.set_rail(False)
        self.gnss.set_wake(False)
        if battery_removed:
            self.gnss._last_fix_s = None
        self.rtc.power_cut()
        self.clock.advance(int(off_s * 1000))
        self.clock.power_cut()
        self.system.cause = protocol.R_POWER_ON

    def reset(self, cause: int = protocol.R_WATCHDOG) -> None:
        """Watchdog / soft / hard reset: RTC memory survives, time keeps running."""
        self.awake_ms += self.clock.now_ms - self._boot_at
        self.system.sleep_request_ms = None
        self.clock.reboot()
        self.system.cause = cause
