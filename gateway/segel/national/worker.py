"""A background thread with a stop flag and live figures: what the uplink and the ingester share."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any


class Worker:
    """`start()` runs `run()` in a daemon thread; `stop()` sets `_stop` and joins; `wait_until(pred)`
    polls `pred(self.stats)` (tests and commands wait on the figures, never on sleeps)."""

    thread_name = "segel-national"
    stats: Any

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run(self) -> None:
        raise NotImplementedError

    def start(self) -> Any:
        self._thread = threading.Thread(target=self.run, name=self.thread_name, daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout)

    def wait_until(self, pred: Callable[[Any], bool], timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pred(self.stats):
                return True
            time.sleep(0.05)
        return False
