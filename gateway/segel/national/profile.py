"""How many items all of Indonesia's regencies push up, minute by minute, following an election calendar.

Per box, from the calendar (the Kutai Timur one by default: its legs, staged per district, and its
seal windows) and the rehearsal's measured rates (docs/demo.md): a position every
max(report interval, position interval) while the tracker is on; per leg an exit, an entry, an
arrival and its `arrived` alert (4 items) somewhere in the leg's window; per authorised opening
(the empty box shown at 06:45 and the count at 13:05 on election day at the TPS, the
recapitulation at the PPK the day after) the `seal_authorised` alert, its finding and the
re-close (3 items) within ten minutes; 0.04 other alerts per box, each raised and resolved (2
items); a district summary per regency every 5 minutes. Every regency follows the calendar in
its own zone (WIB, WITA, WIT), so the same local hour falls at three moments nationally.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path

from segel.custody.plan import load_calendar
from segel.national import wilayah
from segel.paths import scenarios_dir

KINDS = ("position", "custody", "alert", "summary")
OTHER_ALERTS_PER_BOX = 54 / 1402  # the full rehearsal: 21 long_stop, 21 silent, 8 behind_schedule, 4 others
OPENINGS = (("tps", "06:45"), ("tps", "13:05"), ("ppk", "16:00"))  # local times (scenario.toml)


@dataclass
class Profile:
    start: float  # unix seconds of minute 0
    per_minute: dict[str, list[float]]  # kind -> items in each minute, nationally
    boxes: int
    regencies: int

    def total(self, i: int) -> float:
        return sum(v[i] for v in self.per_minute.values())

    def peak(self, window_min: int = 15) -> tuple[int, float, dict[str, float]]:
        """The busiest `window_min` minutes: (first minute, items/s, items/s by kind)."""
        n = len(next(iter(self.per_minute.values())))
        totals = [self.total(i) for i in range(n)]
        best, best_i = -1.0, 0
        acc = sum(totals[:window_min])
        for i in range(0, n - window_min + 1):
            if i:
                acc += totals[i + window_min - 1] - totals[i - 1]
            if acc > best:
                best, best_i = acc, i
        secs = window_min * 60
        kinds = {k: sum(v[best_i:best_i + window_min]) / secs for k, v in self.per_minute.items()}
        return best_i, best / secs, kinds

    def totals(self) -> dict[str, float]:
        """Items of each kind over the whole calendar, nationally."""
        return {k: sum(v) for k, v in self.per_minute.items()}

    def mean(self) -> float:
        n = len(next(iter(self.per_minute.values())))
        return sum(self.total(i) for i in range(n)) / (n * 60)


def build(boxes: int = 1_600_000, calendar: str | Path | None = None, report_interval_s: float = 300.0,
          position_interval_s: float = 900.0, summary_interval_s: float = 300.0) -> Profile:
    cal = load_calendar(Path(calendar) if calendar else scenarios_dir() / "kutai-timur" / "calendar.toml")
    regs = wilayah.regencies()
    per_zone: dict[str, int] = {}
    for code in regs:
        z = wilayah.zone(code)
        per_zone[z] = per_zone.get(z, 0) + 1
    cal_offset = cal.tz.utcoffset(None).total_seconds() / 3600  # type: ignore[union-attr]
    # leg windows: the default ones, or split over the districts' staging when the calendar has it
    legs: list[tuple[float, float, float]] = []  # (start, end, share of boxes)
    staged = {name for by in cal.by_ppk.values() for name in by}
    for name, w in cal.legs.items():
        if name not in staged:
            legs.append((w.start, w.end, 1.0))
    for by in cal.by_ppk.values():
        for _name, w in by.items():
            legs.append((w.start, w.end, 1.0 / len(cal.by_ppk)))
    first = min(s for s, _e, _ in legs) - 5400
    last = max(e for _s, e, _ in legs) + 3600
    eday = cal.election_day or dt.datetime.fromtimestamp(first, cal.tz).date()
    span_min = int(math.ceil((last - first + 3 * 3600) / 60)) + 1
    start = first - 2 * 3600  # WIT runs two hours ahead of WIB
    per = {k: [0.0] * span_min for k in KINDS}

    def add(kind: str, t0: float, t1: float, n: float) -> None:
        """n items spread evenly over [t0, t1)."""
        a, b = (t0 - start) / 60, max((t1 - start) / 60, (t0 - start) / 60 + 1e-9)
        i = int(a)
        while i < b and i < span_min:
            lo, hi = max(a, i), min(b, i + 1)
            if hi > lo and i >= 0:
                per[kind][i] += n * (hi - lo) / (b - a)
            i += 1

    for zone, nreg in per_zone.items():
        share = boxes * nreg / len(regs)
        shift = (cal_offset - wilayah.ZONES[zone]) * 3600  # a local hour in this zone, in the calendar's clock
        every = max(report_interval_s, position_interval_s)
        add("position", first + shift, last + shift, share * (last - first) / every)
        for s, e, part in legs:
            add("custody", s + shift, e + shift, share * part * 3)
            add("alert", s + shift, e + shift, share * part * 1)
        for place, hhmm in OPENINGS:
            day = eday if place == "tps" else eday + dt.timedelta(days=1)
            h, m = (int(x) for x in hhmm.split(":"))
            t = dt.datetime.combine(day, dt.time(h, m), cal.tz).timestamp() + shift
            add("alert", t, t + 600, share)
            add("custody", t, t + 600, share * 2)
        add("alert", first + shift, last + shift, share * OTHER_ALERTS_PER_BOX * 2)
        add("summary", first + shift, last + shift, nreg * (last - first) / summary_interval_s)
    return Profile(start, per, boxes, len(regs))


def describe(p: Profile, window_min: int = 15) -> str:
    i, rate, kinds = p.peak(window_min)
    at = wilayah.local_time(p.start + i * 60, "WIB")
    parts = ", ".join(f"{k} {v:,.0f}/s" for k, v in kinds.items())
    return (f"{p.regencies} regencies, {p.boxes:,} boxes; mean {p.mean():,.0f} items/s over the calendar; "
            f"busiest {window_min} min from {at}: {rate:,.0f} items/s ({parts})")
