"""Time spent per stage of ingest (verify, decode, rules, timers, commit), for /metrics."""

from __future__ import annotations

import time
from collections import Counter


class Stages:
    """Seconds per stage and how many runs they cover (frames, batches, ticks)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.runs: Counter[str] = Counter()

    def took(self, stage: str, t0: float) -> float:
        """Count the time since `t0` (time.perf_counter()) for one run of `stage`; returns now."""
        t = time.perf_counter()
        self.seconds[stage] = self.seconds.get(stage, 0.0) + t - t0
        self.runs[stage] += 1
        return t
