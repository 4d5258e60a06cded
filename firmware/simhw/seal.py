"""Simulated seal inputs: the loop, the lid (and a case switch), toggled at scheduled times."""

from __future__ import annotations

from segelfw import hal


class SimSeal(hal.SealInputs):
    """Edges are scheduled in true unix time; `events()` returns those that have happened.

    Like the ESP32, an edge during deep sleep wakes the chip (see `next_edge_ms`) and is reported
    at the next `events()` call with the time it happened.
    """

    def __init__(self, clock, names: tuple[str, ...] = ("loop", "lid"), open_now: dict | None = None) -> None:
        self.clock = clock
        self.names = tuple(names)
        self._level = {n: False for n in self.names}
        self._level.update(open_now or {})
        self._edges: list[tuple[int, str, bool]] = []  # (true unix ms, name, open)
        self.wake_armed = False

    def schedule(self, at: float, name: str, is_open: bool) -> None:
        if name not in self.names:
            raise ValueError(f"no seal input {name!r} on this board; it has {self.names}")
        self._edges.append((int(at * 1000), name, bool(is_open)))
        self._edges.sort()

    def bounce(self, at: float, name: str, is_open: bool, chatter: int = 4, spacing_ms: int = 3) -> None:
        """A mechanical switch: `chatter` fast flips, then the final level."""
        base = int(at * 1000)
        for i in range(chatter):
            self._edges.append((base + i * spacing_ms, name, is_open if i % 2 == 0 else not is_open))
        self._edges.append((base + chatter * spacing_ms, name, is_open))
        self._edges.sort()

    def toggle(self, name: str, is_open: bool) -> None:
        self.schedule(self.clock.now, name, is_open)

    def next_edge_ms(self) -> int | None:
        return self._edges[0][0] if self._edges else None

    # --- hal.SealInputs ---------------------------------------------------------------------------
    def levels(self) -> dict:
        self._settle(report=False)
        return dict(self._level)

    def events(self) -> list:
        return self._settle(report=True)

    def arm_wake(self) -> None:
        self.wake_armed = True

    def _settle(self, report: bool) -> list:
        now = self.clock.now_ms
        out = []
        while self._edges and self._edges[0][0] <= now:
            t_ms, name, is_open = self._edges.pop(0)
            if self._level[name] == is_open:
                continue
            self._level[name] = is_open
            dev_unix = (t_ms - (self.clock._rtc_base_ms or 0)) // 1000
            out.append((name, is_open, dev_unix, t_ms - self.clock._boot_ms))
        if not report:
            self._pending = getattr(self, "_pending", []) + out
            return []
        pend = getattr(self, "_pending", [])
        self._pending = []
        return pend + out
