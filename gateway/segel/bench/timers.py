"""`segel bench timers`: what the custody judge's timers cost as the fleet grows.

For each fleet size a fresh gateway database gets that many registered trackers, each paired to a
box with a Kutai Timur plan (the scenario's 1,402 plans repeated) and heard once, with their
silence deadlines spread so that the same number fall due in every tick whatever the fleet size
(a fleet that reports on time). The judge's tick then runs on the gateway's clock, every
`tick_s`, across the close of a leg window (a district's boxes all judged for behind_schedule).
Printed per size: the tick's cost (median, and the longest tick: the longest pause the timers
cause in ingest, since the worker runs them between batches), the work it did, and the memory the
gateway's process holds per tracker (its resident size before and after loading the fleet).
"""

from __future__ import annotations

import gc
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from segel import paths, store
from segel.custody.judge import CustodyJudge, ensure_schema, make_plans
from segel.custody.plan import load_calendar
from segel.ingest.pipeline import Pipeline
from segel.places import io as places_io
from segel.places.index import PlaceIndex
from segel.registry import KeyRing, Registry


@dataclass
class TimerRow:
    devices: int
    ticks: int
    tick_ms_median: float
    tick_ms_max: float  # the longest tick while only silences are due
    silent_raised: int
    schedule_judged: int  # devices judged for behind_schedule when a leg window closed
    close_ticks: int  # ticks it took to judge them (each bounded)
    close_ms_max: float  # the longest of those ticks: the longest pause the timers cause in ingest
    close_s: float  # their total time (boxes judged / close_s: the backlog's pace)
    setup_s: float
    rss_mb: float
    bytes_per_device: float  # resident memory of the gateway process per tracker loaded


def _rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def run_one(n: int, due_per_tick: int = 100, ticks: int = 40, tick_s: float = 10.0,
            workdir: Path | None = None) -> TimerRow:
    scn = paths.scenarios_dir() / "kutai-timur"
    shm = Path("/dev/shm")  # as the rehearsal does: a RAM disk when there is one (no disk noise)
    tmp = Path(tempfile.mkdtemp(prefix="segel-bench-timers-",
                                dir=workdir or (shm if shm.is_dir() and os.access(shm, os.W_OK) else None)))
    try:
        gc.collect()
        rss0 = _rss_bytes()
        t0 = time.perf_counter()
        conn = store.connect(tmp / "segel.db")
        places_io.import_files(conn, [scn / "places.csv", scn / "corridors.geojson"])
        stored = {p.code: p for p in places_io.load(conn)}
        cal = load_calendar(scn / "calendar.toml")
        kt = [line.split(",")[1] for line in (scn / "boxes.csv").read_text().splitlines()[1:] if line.strip()]
        base = make_plans(stored, {f"KT-{i}": tps for i, tps in enumerate(kt)}, cal)
        base_plans = list(base.values())
        plans = {f"B{i:07d}": replace(base_plans[i % len(base_plans)], box=f"B{i:07d}") for i in range(n)}
        settings = {**cal.rules, "report_interval_s": 7200.0}
        limit = 3 * 7200.0
        # phase 1 starts a minute after a leg window closed (no other closes for hours): only the
        # silences are due, `due_per_tick` per tick whatever the fleet size
        ends = sorted({lg.window.end for p in base_plans for lg in p.legs})
        k = max(i for i in range(len(ends) - 1) if ends[i + 1] - ends[i] > 2 * ticks * tick_s)
        now0 = ends[k] + 60.0
        spread = n / due_per_tick * tick_s
        ensure_schema(conn)
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO devices(device_id, created_at) VALUES (?, ?)", ((0x100000 + i, now0) for i in range(n)))
        conn.executemany("INSERT INTO judge_devices(device, box, first_rx, last_rx, key_epoch, newest, version, silent_due) "
                         "VALUES (?,?,?,?,0,1,1,?)",
                         ((0x100000 + i, f"B{i:07d}", now0 - limit, now0 - limit + spread * i / n + 1.0,
                           now0 + spread * i / n + 1.0) for i in range(n)))
        conn.execute("COMMIT")
        judge = CustodyJudge(conn, PlaceIndex(stored.values()), plans, settings)
        # this fleet has run before: the windows up to now were judged
        conn.execute("INSERT OR REPLACE INTO judge_meta(name, value) VALUES ('timers_until', ?), ('timers_plans', ?)",
                     (now0, judge.timers.fingerprint))
        pipe = Pipeline(conn, KeyRing(b"\0" * 32, Registry(conn)), [judge])
        setup_s = time.perf_counter() - t0
        gc.collect()
        gc.freeze()  # as the gateway does once its judges are loaded
        rss = _rss_bytes()

        def tick(now: float, costs: list[float], most: int = 10**9) -> None:
            while len(costs) < most:  # the gateway ticks again right after its next batch while work is pending
                t = time.perf_counter()
                pipe.tick(now)
                costs.append(time.perf_counter() - t)
                if not pipe.tick_pending:
                    return

        steady: list[float] = []
        for i in range(1, ticks + 1):
            tick(now0 + i * tick_s, steady)
        silent = judge.timers.stats["silent"]
        # phase 2: the next leg window closes (for every box, in this calendar) hours later, so every
        # silence is due too: a backlog worked off a tick's budget at a time (the first 300 ticks)
        close: list[float] = []
        judged0 = judge.timers.stats["judged"]
        tick(ends[k + 1] + 1.0, close, 300)
        conn.close()
        steady.sort()
        return TimerRow(n, len(steady), 1000 * steady[len(steady) // 2], 1000 * steady[-1], silent,
                        judge.timers.stats["judged"] - judged0, len(close), 1000 * max(close), sum(close), setup_s,
                        rss / 2**20, (rss - rss0) / n)
    finally:
        gc.unfreeze()
        shutil.rmtree(tmp, ignore_errors=True)


def report(rows: list[TimerRow]) -> str:
    out = ["            only silences due (the same number per tick)     a leg window closes for a district's boxes",
           "devices     ticks  median     longest   raised          boxes judged  ticks  longest tick  total     "
           "setup   RSS      memory/device"]
    for r in rows:
        out.append(f"{r.devices:>9,}  {r.ticks:5}  {r.tick_ms_median:6.2f} ms  {r.tick_ms_max:6.1f} ms  {r.silent_raised:6}"
                   f"          {r.schedule_judged:12,}  {r.close_ticks:5}  {r.close_ms_max:9.1f} ms  {r.close_s:6.2f} s"
                   f"  {r.setup_s:5.1f} s  {r.rss_mb:5.0f} MB  {r.bytes_per_device:8,.0f} B")
    if len(rows) > 1:
        out.append(f"median tick, largest fleet / smallest: {rows[-1].tick_ms_median / max(1e-9, rows[0].tick_ms_median):.2f}x; "
                   f"longest pause overall {max(max(r.tick_ms_max, r.close_ms_max) for r in rows):.1f} ms; "
                   f"machine load average {os.getloadavg()[0]:.1f}")
    return "\n".join(out)
