"""The custody judge's timers, from a schedule by due time: a tick costs what is due, not what exists.

- **silent**: every judged frame sets its device's `judge_devices.silent_due` (last heard +
  silent_after_intervals x report_interval_s; an index orders it), so a tick reads only the
  devices whose silence is due. Once judged (alert raised, or the box's custody is complete) the
  device leaves the schedule until it is heard again: a silent alert is raised once per silence.
- **behind_schedule**: a leg can only become late when its window closes, and a late leg can only
  be caught up (or an on-time one become late again) when the box's arrivals change. So a tick
  judges the boxes of the leg windows that closed since the previous tick (`judge_meta` keeps
  that time across restarts) and the devices whose arrivals changed (`judge_dirty`, written in the
  frame's transaction), each with the same leg check as before.
- **re-notification** of open critical alerts: an indexed query of the few open ones.

A tick does a bounded amount of work (a network outage that silences the whole fleet at once, a
district's leg window closing for thousands of boxes) and says `pending` when more is due; the
gateway then runs the next tick right after its next batch, so ingest is never held up for long.

Everything the schedule needs is in SQLite, written in the same transactions as the frames, so a
rolled-back batch or a restart loses no deadline; in memory are only the plans' window ends.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from bisect import bisect_left
from collections import Counter
from typing import TYPE_CHECKING

from segel.custody import alerts as al
from segel.custody import ledger, receipts
from segel.custody.plan import OUTBOUND, Plan
from segel.ids import device_hex
from segel.influx import lines, outbox

if TYPE_CHECKING:
    from segel.custody.judge import CustodyJudge

SCHEMA = """
CREATE INDEX IF NOT EXISTS judge_devices_silent ON judge_devices(silent_due) WHERE silent_due IS NOT NULL;
CREATE INDEX IF NOT EXISTS judge_devices_box ON judge_devices(box);
CREATE TABLE IF NOT EXISTS judge_meta (name TEXT PRIMARY KEY, value) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS judge_dirty (device INTEGER PRIMARY KEY, as_of REAL, changed INTEGER NOT NULL DEFAULT 0)
"""
CHUNK = 500  # boxes per query
# Work per tick at most, so a tick never holds up ingest for long (the gateway runs the next tick
# right after its next batch while `pending`): silences raised, boxes queued, devices judged.
# Besides these counts, a tick stops taking more work after TICK_BUDGET_S (what is left stays due:
# only when it is done changes, never what is done).
SILENT_PER_TICK = 200
QUEUE_PER_TICK = 2000
JUDGE_PER_TICK = 300
TICK_BUDGET_S = 0.015


def ensure_schema(conn: sqlite3.Connection) -> None:
    for stmt in SCHEMA.split(";"):
        if stmt.strip():
            conn.execute(stmt)
    have = {r[1] for r in conn.execute("PRAGMA table_info(judge_dirty)")}
    for col, decl in (("as_of", "REAL"), ("changed", "INTEGER NOT NULL DEFAULT 0")):
        if col not in have:  # a database from before these columns
            conn.execute(f"ALTER TABLE judge_dirty ADD COLUMN {col} {decl}")


def arrivals_changed(db: sqlite3.Connection, dev: int) -> None:
    """An `arrived` finding was made or withdrawn: judge this device's legs at the next tick."""
    db.execute("INSERT INTO judge_dirty(device, as_of, changed) VALUES (?, NULL, 1) "
               "ON CONFLICT(device) DO UPDATE SET changed = 1", (dev,))


def custody_complete(plan: Plan, arrived: list[tuple[str, float]]) -> bool:
    """The box reached the end of its last return leg after it was at its TPS."""
    ret = [lg for lg in plan.legs if lg.name not in OUTBOUND]
    if not ret:
        return False
    at_tps = [t for p, t in arrived if p == plan.tps]
    return bool(at_tps) and any(p == ret[-1].to_code and t > min(at_tps) for p, t in arrived)


class Timers:
    def __init__(self, judge: CustodyJudge) -> None:
        self.judge = judge
        s = judge.settings
        self.silent_limit = float(s["silent_after_intervals"] * s["report_interval_s"])
        # devices told to report at another interval (segel device set: storage mode): judge_intervals
        self.own_interval: set[int] = set()
        # window end -> the boxes with a leg that closes then (sorted ends for a range lookup)
        by_end: dict[float, list[str]] = {}
        for box, plan in judge.plans.items():
            for leg in plan.legs:
                by_end.setdefault(leg.window.end, []).append(box)
        self.ends = sorted(by_end)
        self.boxes_at = by_end
        self.fingerprint = hashlib.sha256(repr(self.ends).encode()).hexdigest()[:16]
        # subjects that may have an open silent alert (a hint: a frame then looks it up)
        self._maybe_silent: set[str] | None = None
        self.pending = False  # the last tick left due work for the next one
        self._tick_log: list[float] = []  # tick times while windows wait to be queued (their as_of)
        # False: every tick does all that is due (a simulation whose clock runs thousands of times
        # faster than real time, where work spread over ticks would be spread over simulated minutes)
        self.bounded = True
        self._t0 = 0.0
        self.stats: Counter[str] = Counter()  # silent alerts raised, devices judged for their legs

    # ---- hints for the judge's frames -----------------------------------------------------------

    def maybe_silent(self, db: sqlite3.Connection, subject: str) -> bool:
        self._load_hints(db)
        return subject in self._maybe_silent  # type: ignore[operator]

    def not_silent(self, subject: str) -> None:
        if self._maybe_silent is not None:
            self._maybe_silent.discard(subject)

    def _load_hints(self, db: sqlite3.Connection) -> None:
        if self._maybe_silent is None:
            self._maybe_silent = {r[0] for r in db.execute(
                "SELECT subject FROM alerts WHERE kind = 'silent' AND state IN ('open', 'acknowledged')")}

    # ---- the tick -------------------------------------------------------------------------------

    def tick(self, now: float, db: sqlite3.Connection) -> list[dict]:
        self._load_hints(db)
        self.pending = False
        self._t0 = time.perf_counter()
        out = self._silent(now, db)
        out += self._schedules(now, db)
        # handover receipts the tracker has not confirmed yet: given as long as a silent tracker gets
        out += receipts.check_pending(db, now, self.silent_limit, self.judge.plans)
        out += self._renotify(now, db)
        return out

    def limit_for(self, db: sqlite3.Connection, dev: int) -> float:
        """How long `dev` may stay quiet: silent_after_intervals x its interval (never shorter than
        the configured report interval's)."""
        if dev not in self.own_interval:
            return self.silent_limit
        s = self.judge.settings
        row = db.execute("SELECT interval_s FROM judge_intervals WHERE device = ?", (dev,)).fetchone()
        iv = float(row[0]) if row else 0.0
        return float(s["silent_after_intervals"] * max(iv, s["report_interval_s"]))

    def prepare(self, db: sqlite3.Connection, migrated: bool) -> None:
        """At start (not in a tick): schedule the devices of a database from before the schedule,
        and move every due time when the silence limit changed since the last run."""
        self.own_interval = {r[0] for r in db.execute("SELECT device FROM judge_intervals")}
        row = db.execute("SELECT value FROM judge_meta WHERE name = 'silent_limit'").fetchone()
        if migrated or (row is not None and float(row[0]) != self.silent_limit):
            db.execute("UPDATE judge_devices SET silent_due = last_rx + ? WHERE silent_due IS NOT NULL OR ?",
                       (self.silent_limit, int(migrated)))
            for dev in self.own_interval:
                db.execute("UPDATE judge_devices SET silent_due = last_rx + ? WHERE device = ? AND silent_due IS NOT NULL",
                           (self.limit_for(db, dev), dev))
        if row is None or float(row[0]) != self.silent_limit:
            db.execute("INSERT OR REPLACE INTO judge_meta(name, value) VALUES ('silent_limit', ?)", (self.silent_limit,))

    def _silent(self, now: float, db: sqlite3.Connection) -> list[dict]:
        j = self.judge
        out: list[dict] = []
        due = db.execute("SELECT device, box, last_rx FROM judge_devices WHERE silent_due <= ? ORDER BY silent_due "
                         "LIMIT ?", (now + 1.0, self._cap(SILENT_PER_TICK) + 1)).fetchall()
        if len(due) > self._cap(SILENT_PER_TICK):
            self.pending, due = True, due[:SILENT_PER_TICK]
        for n, (dev, box, last_rx) in enumerate(sorted(due)):
            if n and self._over_budget():
                self.pending = True  # the rest are still due (their silent_due is unchanged)
                break
            limit = self.limit_for(db, dev)
            if not now - last_rx > limit:
                continue  # (the due time is rounded; the rule is this comparison)
            subject = box or f"device:{device_hex(dev)}"
            plan = j.plans.get(box) if box else None
            db.execute("UPDATE judge_devices SET silent_due = NULL WHERE device = ?", (dev,))
            if al.open_alert(db, subject, "silent") is not None:
                continue
            # back at the end of its plan: a tracker switched off there is not news
            if plan is not None and custody_complete(plan, _arrivals(db, dev)):
                continue
            row, ev = al.raise_alert(db, kind="silent", subject=subject, key=f"silent|{last_rx:.3f}", now=now,
                                     device_time=None, box=box, device=device_hex(dev),
                                     district=plan.district if plan else None,
                                     message=f"no frame for {int((now - last_rx) // 60)} min (limit {int(limit // 60)} min)",
                                     detail={"last_heard": al.iso(last_rx)})
            out.append(al.to_json(row, ev))
            outbox.enqueue(db, [lines.alert(row, now)])
            if j.keep_ledger:
                ledger.record_alert(db, row, ev, now, "system", row["message"])
            self.stats["silent"] += 1
            if self._maybe_silent is not None:
                self._maybe_silent.add(subject)
        return out

    def _schedules(self, now: float, db: sqlite3.Connection) -> list[dict]:
        """behind_schedule for the boxes whose leg windows closed since the last tick, and for the
        devices whose arrivals changed: both queued in `judge_dirty`, then judged a few at a time."""
        j = self.judge
        meta = dict(db.execute("SELECT name, value FROM judge_meta WHERE name IN "
                               "('timers_until', 'timers_plans', 'timers_offset')"))
        fresh = "timers_until" not in meta or meta.get("timers_plans") != self.fingerprint
        # first tick, or other plans since: every closed leg is judged once
        since = float("-inf") if fresh else float(meta["timers_until"])
        offset = 0 if fresh else int(meta.get("timers_offset") or 0)
        until, budget = now, self._cap(QUEUE_PER_TICK)
        self._tick_log.append(now)
        # legs are late once their window ended before `now` (end < now)
        for end in self.ends[bisect_left(self.ends, since):bisect_left(self.ends, now)]:
            boxes = self.boxes_at[end]
            # the tick that first saw this window closed (its boxes may be queued ticks later)
            as_of = next((t for t in self._tick_log if t > end), now)
            start = offset if end == since else 0
            while start < len(boxes) and budget > 0 and (budget == self._cap(QUEUE_PER_TICK) or not self._over_budget()):
                chunk = boxes[start:start + min(CHUNK, budget)]
                # judged as of this tick even if their turn comes a few ticks later (as_of)
                db.execute("INSERT INTO judge_dirty(device, as_of, changed) SELECT device, ?, 0 FROM judge_devices "
                           f"WHERE box IN ({','.join('?' * len(chunk))}) ON CONFLICT(device) DO UPDATE SET "
                           "as_of = COALESCE(MIN(as_of, excluded.as_of), excluded.as_of)", (as_of, *chunk))
                start += len(chunk)
                budget -= len(chunk)
            if start < len(boxes):  # the rest of this window's boxes at the next tick
                until, offset, self.pending = end, start, True
                break
        else:
            offset = 0
            self._tick_log = []
        db.execute("INSERT OR REPLACE INTO judge_meta(name, value) VALUES ('timers_until', ?), ('timers_plans', ?), "
                   "('timers_offset', ?)", (until, self.fingerprint, offset))
        dirty = db.execute("SELECT device, as_of, changed FROM judge_dirty ORDER BY device LIMIT ?",
                           (self._cap(JUDGE_PER_TICK) + 1,)).fetchall()
        if len(dirty) > self._cap(JUDGE_PER_TICK):
            self.pending, dirty = True, dirty[:JUDGE_PER_TICK]
        out: list[dict] = []
        for n, (dev, as_of, changed) in enumerate(dirty):
            if n and self._over_budget():
                self.pending = True  # the rest stay queued
                break
            db.execute("DELETE FROM judge_dirty WHERE device = ?", (dev,))
            self.stats["judged"] += 1
            row = db.execute("SELECT box FROM judge_devices WHERE device = ?", (dev,)).fetchone()
            box = row[0] if row else None
            plan = j.plans.get(box) if box else None
            if plan is None or box is None:
                continue
            arrived = db.execute("SELECT place, t, raised_at FROM judge_findings WHERE device = ? AND kind = 'arrived'",
                                 (dev,)).fetchall()
            done = {(dev, r[0]) for r in db.execute(
                "SELECT key FROM judge_findings WHERE device = ? AND kind = 'behind_schedule'", (dev,))}
            # A window's boxes are judged as of the tick at which it closed, with the arrivals known
            # then (a tick that did them all at once would have); arrivals learned since, then now.
            rounds = ([(as_of, [(p, t) for p, t, r in arrived if r <= as_of])] if as_of is not None else [])
            if changed or as_of is None:
                rounds.append((now, [(p, t) for p, t, _r in arrived]))
            for at, known in rounds:
                open_row = db.execute("SELECT id FROM alerts WHERE subject = ? AND kind = 'behind_schedule' "
                                      "AND state IN ('open', 'acknowledged')", (box,)).fetchone()
                out += self._schedule(db, dev, box, box, plan, at, known, open_row[0] if open_row else None, done)
        return out

    def _over_budget(self) -> bool:
        return self.bounded and time.perf_counter() - self._t0 > TICK_BUDGET_S

    def _cap(self, n: int) -> int:
        return n if self.bounded else 1 << 62

    def _schedule(self, db: sqlite3.Connection, dev: int, box: str, subject: str, plan: Plan, now: float,
                  arrived: list[tuple[str, float]], open_id: str | None, done: set[tuple[int, str]]) -> list[dict]:
        """behind_schedule for each leg whose window closed before the box reached its destination."""
        out: list[dict] = []
        legs = list(plan.legs)
        late_legs = []
        for leg in legs:
            if leg.window.end >= now:
                continue
            direction = [lg for lg in legs if (lg.name in OUTBOUND) == (leg.name in OUTBOUND)]
            # Outbound, reaching the destination (or a point further on) at any time counts; on the
            # way back only arrivals after the box reached its TPS do (the outbound visit to its
            # PPS is not a return), or after the return window opened if it never reached it.
            at_tps = [t for p, t in arrived if p == plan.tps]
            since = float("-inf") if leg.name in OUTBOUND else (min(at_tps) if at_tps else direction[0].window.start)
            ahead = {lg.to_code for lg in direction[direction.index(leg):]}
            if not any(p in ahead and t >= since for p, t in arrived):
                late_legs.append(leg)
        if not late_legs and open_id is not None:
            out.append(al.resolve(db, open_id, "system", "arrived", now))
            if self.judge.keep_ledger:
                ledger.record_alert(db, out[-1], "resolved", now, "system", "arrived")
        for leg in late_legs:
            key = f"behind_schedule|{leg.name}"
            if (dev, key) in done:
                continue
            row, ev = al.raise_alert(db, kind="behind_schedule", subject=subject, key=key, now=now,
                                     device_time=leg.window.end, box=box, device=device_hex(dev), place=leg.to_code,
                                     district=plan.district,
                                     message=f"not at {leg.to_code} when leg {leg.name} closed ({al.iso(leg.window.end)})",
                                     detail={"leg": leg.name, "from": leg.from_code, "to": leg.to_code})
            db.execute("INSERT INTO judge_findings(device, key, counter, kind, place, t, alert_id, raised_at) "
                       "VALUES (?,?,?,?,?,?,?,?)", (dev, key, -1, "behind_schedule", leg.to_code, leg.window.end, row["id"], now))
            done.add((dev, key))
            out.append(al.to_json(row, ev))
            outbox.enqueue(db, [lines.alert(row, now)])
            if self.judge.keep_ledger:
                ledger.record_alert(db, row, ev, now, "system", row["message"])
        return out

    def _renotify(self, now: float, db: sqlite3.Connection) -> list[dict]:
        out: list[dict] = []
        for (aid,) in db.execute("SELECT id FROM alerts WHERE state = 'open' AND severity = 'critical' AND notified_at <= ?",
                                 (now - self.judge.settings["renotify_s"],)).fetchall():
            db.execute("UPDATE alerts SET notified_at = ?, notify_count = notify_count + 1 WHERE id = ?", (now, aid))
            out.append(al.to_json(al.get(db, aid), "renotify"))  # type: ignore[arg-type]
        return out


def _arrivals(db: sqlite3.Connection, dev: int) -> list[tuple[str, float]]:
    return db.execute("SELECT place, t FROM judge_findings WHERE device = ? AND kind = 'arrived'", (dev,)).fetchall()
