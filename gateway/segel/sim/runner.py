"""The simulation loop: one shared virtual clock, trackers woken when it reaches their clocks.

Time moves in steps (`step_s` of simulation time). In each step every tracker whose next wake
falls inside the step runs its firmware cycle, in a pool of threads (a wake mostly waits for the
gateway's ack over MQTT); the step ends when all of them are back asleep. Then scheduled events
(an attacker's frames) run and the `on_step` hook sees the new time. With `speed` set, steps are
paced so that simulation time runs at most `speed` times real time; without it, as fast as the
machine allows (the gateway keeps up because every wake waits for its acks).
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from segel.sim.fleet import VirtualTracker

log = logging.getLogger("segel.sim")


class SimClock:
    """The simulation's time (unix seconds), read by the gateway as its clock."""

    def __init__(self, start: float) -> None:
        self._t = float(start)
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self._t

    def set(self, t: float) -> None:
        with self._lock:
            if t > self._t:
                self._t = float(t)


@dataclass(order=True)
class Event:
    at: float
    name: str = field(compare=False)
    run: Callable[[], None] = field(compare=False)


@dataclass
class Progress:
    now: float
    start: float
    end: float
    wakes: int
    awake: int  # trackers still running
    retired: int
    wall_s: float

    @property
    def fraction(self) -> float:
        return min(1.0, max(0.0, (self.now - self.start) / max(1.0, self.end - self.start)))


class Runner:
    def __init__(self, trackers: list[VirtualTracker], clock: SimClock, *, step_s: float = 300.0,
                 workers: int = 48, speed: float | None = None, events: list[Event] | None = None,
                 pool: Callable[[int], Any] | None = None) -> None:
        """pool(workers): where wakes run (a thread pool by default; segel.sim.green's on one thread)."""
        self.trackers = trackers
        self.clock = clock
        self.step_s = step_s
        self.workers = workers
        self.speed = speed
        self.events = sorted(events or [])
        self.start = min((t.next_ms for t in trackers), default=0) / 1000
        self.end = max((t.it.end for t in trackers), default=self.start)
        if self.events:
            self.start = min(self.start, self.events[0].at)
        self.pool = pool or (lambda n: ThreadPoolExecutor(max_workers=n, thread_name_prefix="segel-sim"))
        self.wakes = 0
        self.retired: dict[str, str] = {}
        self.errors: list[str] = []
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def _wake(self, vt: VirtualTracker) -> VirtualTracker:
        try:
            vt.wake()
        except Exception as e:  # one broken tracker must not stop the rehearsal
            log.exception("tracker %s failed; it is switched off", vt.hex)
            vt.done, vt.why_done = True, f"error: {type(e).__name__}: {e}"
            self.errors.append(f"{vt.hex}: {type(e).__name__}: {e}")
        return vt

    def run(self, on_step: Callable[[Progress], None] | None = None) -> Progress:
        """Steps overlap by one: the wakes of step k start while step k-1's last acks are still on
        their way (so neither the fleet nor the gateway idles at a step boundary); a tracker is
        only ever in one wake, and the gateway's clock is never more than two steps ahead."""
        heap = [(t.next_ms, i) for i, t in enumerate(self.trackers)]
        heapq.heapify(heap)
        now = self.start
        self.clock.set(now)
        wall0 = time.monotonic()
        events = list(self.events)
        in_flight: list[Future[VirtualTracker]] = []  # (or segel.sim.green futures)
        with self.pool(self.workers) as pool:
            while (heap or events or in_flight) and not self._stop.is_set():
                nxt = min(heap[0][0] / 1000 if heap else float("inf"), events[0].at if events else float("inf"))
                if nxt == float("inf"):  # only stragglers left
                    self._settle(in_flight, heap)
                    in_flight = []
                    continue
                horizon = max(now + self.step_s, nxt)
                if horizon > now + self.step_s:  # a jump over idle time: let the last wakes finish first
                    self._settle(in_flight, heap)
                    in_flight = []
                    nxt = min(heap[0][0] / 1000 if heap else float("inf"), events[0].at if events else float("inf"))
                    horizon = max(now + self.step_s, nxt)
                self.clock.set(horizon)
                batch = []
                while heap and heap[0][0] / 1000 <= horizon:
                    batch.append(self.trackers[heapq.heappop(heap)[1]])
                launched = [pool.submit(self._wake, vt) for vt in batch]
                self._settle(in_flight, heap)  # the previous step's wakes
                in_flight = launched
                while events and events[0].at <= horizon:
                    ev = events.pop(0)
                    try:
                        ev.run()
                    except Exception as e:
                        log.exception("scheduled event %s failed", ev.name)
                        self.errors.append(f"event {ev.name}: {type(e).__name__}: {e}")
                now = horizon
                if self.speed:
                    ahead = (now - self.start) / self.speed - (time.monotonic() - wall0)
                    if ahead > 0:
                        self._stop.wait(ahead)
                if on_step:
                    on_step(self.progress(now, wall0, len(heap) + len(in_flight)))
            self._settle(in_flight, heap)
        return self.progress(now, wall0, len(heap))

    def _settle(self, futures: list[Future[VirtualTracker]], heap: list[tuple[int, int]]) -> None:
        for f in futures:
            vt = f.result()
            self.wakes += 1
            if vt.done:
                self.retired[vt.hex] = vt.why_done
            else:
                heapq.heappush(heap, (vt.next_ms, self._index[vt.hex]))

    @property
    def _index(self) -> dict[str, int]:
        idx = self.__dict__.get("_idx")
        if idx is None:
            idx = self.__dict__["_idx"] = {t.hex: i for i, t in enumerate(self.trackers)}
        return idx

    def progress(self, now: float, wall0: float, awake: int) -> Progress:
        return Progress(now, self.start, self.end, self.wakes, awake, len(self.retired), time.monotonic() - wall0)
