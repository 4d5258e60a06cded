"""The custody judge as it was before issue 17 (per-frame SQL bookkeeping, timers that visit every
device): the oracle the faster judge is compared with (tests/rules/test_judge_equivalence.py).
A frozen copy; never import it from the gateway."""

from __future__ import annotations

import json
import sqlite3

from segel.custody import alerts as al
from segel.custody import ledger
from segel.custody.judge import CUSTODY_EVENTS, ensure_schema
from segel.custody.plan import DEFAULT_RULES, OUTBOUND, Plan
from segel.custody.rules import SEAL_EVENT, Finding, Rules, initial_state, record
from segel.ids import device_hex
from segel.influx import lines, outbox
from segel.messages import Accepted
from segel.places.index import PlaceIndex

class OracleJudge:
    """The judge before issue 17."""

    def __init__(self, conn: sqlite3.Connection, index: PlaceIndex, plans: dict[str, Plan],
                 settings: dict[str, float] | None = None, *, keep_ledger: bool = True,
                 keep_counters: int = 4096 + 64) -> None:
        """keep_counters: how far behind a device's newest counter its frames are kept for
        re-judging; the pipeline refuses frames older than its replay window (4096) anyway."""
        ensure_schema(conn)
        self.index = index
        self.plans = plans
        self.settings = {**DEFAULT_RULES, **(settings or {})}
        self.rules = Rules(index, self.settings)
        self.keep_ledger = keep_ledger
        self.keep_counters = keep_counters

    # ---- segel.messages.Judge -----------------------------------------------------------------------

    def on_accepted(self, rec: Accepted, db: sqlite3.Connection) -> list[dict]:
        dev = rec.device_id
        box = rec.box_id
        if box is None:
            row = db.execute("SELECT box_id FROM boxes WHERE device_id = ?", (dev,)).fetchone()
            box = row[0] if row else None
        plan = self.plans.get(box) if box else None
        fr = record(rec.counter, rec.event_time, rec.received_at, rec.frame.body)
        epoch = self._epoch(db, dev)
        cur = db.execute("INSERT OR IGNORE INTO judge_frames(device, counter, body) VALUES (?,?,?)",
                         (dev, rec.counter, json.dumps(fr, separators=(",", ":"))))
        if cur.rowcount == 0:
            return []  # judged already (the pipeline dedupes; a second judge call is harmless)
        now = rec.received_at
        db.execute("INSERT INTO judge_devices(device, box, first_rx, last_rx, key_epoch, newest) VALUES (?,?,?,?,?,?) "
                   "ON CONFLICT(device) DO UPDATE SET box = excluded.box, last_rx = MAX(last_rx, excluded.last_rx), "
                   "key_epoch = excluded.key_epoch, newest = MAX(newest, excluded.newest)",
                   (dev, box, now, now, epoch, rec.counter))
        if rec.counter % 256 == 0:  # frames beyond the replay window can never be re-judged
            db.execute("DELETE FROM judge_frames WHERE device = ? AND counter < ?", (dev, rec.counter - self.keep_counters))
        prev = db.execute("SELECT state FROM judge_frames WHERE device = ? AND counter < ? ORDER BY counter DESC LIMIT 1",
                          (dev, rec.counter)).fetchone()
        state = json.loads(prev[0]) if prev and prev[0] else initial_state()
        later = [(c, json.loads(b)) for c, b in db.execute(
            "SELECT counter, body FROM judge_frames WHERE device = ? AND counter > ? ORDER BY counter", (dev, rec.counter))]
        old = {k: (c, aid) for k, c, aid in db.execute(
            "SELECT key, counter, alert_id FROM judge_findings WHERE device = ? AND counter >= ?", (dev, rec.counter))}
        new: dict[str, tuple[int, Finding, float]] = {}
        for c, body in [(rec.counter, fr)] + later:
            state, found = self.rules.step(state, body, plan)
            db.execute("UPDATE judge_frames SET state = ? WHERE device = ? AND counter = ?",
                       (json.dumps(state, separators=(",", ":")), dev, c))
            for f in found:
                new.setdefault(f.key, (c, f, float(body["t"])))
        subject = box or f"device:{device_hex(dev)}"
        ctx = _Ctx(db, dev, box, subject, plan, now)
        out: list[dict] = []
        if self.keep_ledger:
            ledger.append(db, subject, now, fr["t"], "frame", {"device": device_hex(dev), **fr})
        for key in sorted(old.keys() - new.keys()):
            out += self._withdraw(ctx, key, old[key][1], f"disproved by frame {rec.counter} received late")
        for key, (c, f, trigger_t) in sorted(new.items(), key=lambda kv: (kv[1][0], kv[0])):
            if key in old:
                if old[key][0] != c:
                    db.execute("UPDATE judge_findings SET counter = ? WHERE device = ? AND key = ?", (c, dev, key))
                continue
            if db.execute("SELECT 1 FROM judge_findings WHERE device = ? AND key = ?", (dev, key)).fetchone():
                continue  # made already by an earlier frame (a tracker clock that went back)
            out += self._raise(ctx, c, f, trigger_t)
        silent = al.open_alert(db, subject, "silent")
        if silent is not None:
            out.append(al.resolve(db, silent["id"], "system", f"heard again (counter {rec.counter})", now))
            outbox.enqueue(db, [lines.alert(al.get(db, silent["id"]), now)])  # type: ignore[arg-type]
        if not later and fr["k"] == "pos" and box:
            outbox.enqueue(db, [self._box_state_line(state, fr, box, dev, plan)])
        return out

    def on_tick(self, now: float, db: sqlite3.Connection) -> list[dict]:
        """Timers: silent trackers, legs whose window closed before the box arrived, re-notification.
        A few bulk queries, then plain Python per device (cheap enough to run every few seconds)."""
        out: list[dict] = []
        s = self.settings
        limit = s["silent_after_intervals"] * s["report_interval_s"]
        arrivals: dict[int, list[tuple[str, float]]] = {}
        for dev, place, t in db.execute("SELECT device, place, t FROM judge_findings WHERE kind = 'arrived'"):
            arrivals.setdefault(dev, []).append((place, t))
        open_silent = {r[0] for r in db.execute(
            "SELECT subject FROM alerts WHERE kind = 'silent' AND state IN ('open', 'acknowledged')")}
        open_sched = {r[0]: r[1] for r in db.execute(
            "SELECT subject, id FROM alerts WHERE kind = 'behind_schedule' AND state IN ('open', 'acknowledged')")}
        sched_done = set(db.execute("SELECT device, key FROM judge_findings WHERE kind = 'behind_schedule'").fetchall())
        for dev, box, last_rx in db.execute("SELECT device, box, last_rx FROM judge_devices ORDER BY device").fetchall():
            subject = box or f"device:{device_hex(dev)}"
            plan = self.plans.get(box) if box else None
            # back at the end of its plan: a tracker switched off there is not news
            done = plan is not None and _custody_complete(plan, arrivals.get(dev, []))
            if now - last_rx > limit and subject not in open_silent and not done:
                row, ev = al.raise_alert(db, kind="silent", subject=subject, key=f"silent|{last_rx:.3f}", now=now,
                                         device_time=None, box=box, device=device_hex(dev),
                                         district=plan.district if plan else None,
                                         message=f"no frame for {int((now - last_rx) // 60)} min (limit {int(limit // 60)} min)",
                                         detail={"last_heard": al.iso(last_rx)})
                out.append(al.to_json(row, ev))
                outbox.enqueue(db, [lines.alert(row, now)])
            if plan is not None:
                out += self._schedule(db, dev, box, subject, plan, now, arrivals.get(dev, []),
                                      open_sched.get(subject), sched_done)
        for row in db.execute(f"SELECT {', '.join(al.COLS)} FROM alerts WHERE state = 'open' AND severity = 'critical' "
                              "AND notified_at <= ?", (now - s["renotify_s"],)).fetchall():
            d = dict(zip(al.COLS, row))
            db.execute("UPDATE alerts SET notified_at = ?, notify_count = notify_count + 1 WHERE id = ?", (now, d["id"]))
            out.append(al.to_json(al.get(db, d["id"]), "renotify"))  # type: ignore[arg-type]
        return out

    # ---- helpers -----------------------------------------------------------------------------

    def _epoch(self, db: sqlite3.Connection, dev: int) -> int:
        """A re-imaged tracker (new key epoch) counts from 0 again: its judged frames are dropped
        (the findings and the ledger stay) and its rule state starts afresh."""
        row = db.execute("SELECT key_epoch FROM devices WHERE device_id = ?", (dev,)).fetchone()
        epoch = int(row[0]) if row else 0
        mine = db.execute("SELECT key_epoch FROM judge_devices WHERE device = ?", (dev,)).fetchone()
        if mine is not None and int(mine[0]) != epoch:
            db.execute("DELETE FROM judge_frames WHERE device = ?", (dev,))
            db.execute("UPDATE judge_devices SET key_epoch = ?, newest = -1 WHERE device = ?", (epoch, dev))
        return epoch

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
        return out

    def _raise(self, ctx: _Ctx, counter: int, f: Finding, trigger_t: float) -> list[dict]:
        """Record a finding; `trigger_t` is the device time of the frame that completed it (a stop
        is found 30 minutes after it began, but it is late only if that frame arrived late)."""
        db, now = ctx.db, ctx.now
        late = now - trigger_t > self.settings["late_after_s"]
        dev = device_hex(ctx.dev)
        district = ctx.plan.district if ctx.plan else None
        aid = None
        out: list[dict] = []
        if f.kind in CUSTODY_EVENTS:
            p = self.index.get(f.place) if f.place else None
            event = f.detail.get("event", f.kind) if f.kind == SEAL_EVENT else f.kind
            if ctx.box:
                outbox.enqueue(db, [lines.custody_event(ctx.box, district, event, p.kind if p else None,
                                                        f.place or "", dev, now - f.t, f.t, counter)])
        else:
            row, ev = al.raise_alert(db, kind=f.kind, subject=ctx.subject, key=f.key, now=now, device_time=f.t,
                                     box=ctx.box, device=dev, place=f.place, district=district, late=late,
                                     detail=f.detail, lat=f.lat, lon=f.lon,
                                     message=f.detail.get("message", "") if isinstance(f.detail.get("message"), str) else "")
            aid = row["id"]
            out.append(al.to_json(row, ev))
            outbox.enqueue(db, [lines.alert(row, now)])
        db.execute("INSERT INTO judge_findings(device, key, counter, kind, place, t, alert_id, raised_at) VALUES (?,?,?,?,?,?,?,?)",
                   (ctx.dev, f.key, counter, f.kind, f.place, f.t, aid, now))
        if self.keep_ledger:
            ledger.append(db, ctx.subject, now, f.t, f.kind, {"place": f.place, "key": f.key, "late": late, **f.detail})
        return out

    def _withdraw(self, ctx: _Ctx, key: str, aid: str | None, note: str) -> list[dict]:
        db = ctx.db
        row = db.execute("SELECT kind, place, t, counter FROM judge_findings WHERE device = ? AND key = ?",
                         (ctx.dev, key)).fetchone()
        db.execute("DELETE FROM judge_findings WHERE device = ? AND key = ?", (ctx.dev, key))
        if self.keep_ledger:
            ledger.append(db, ctx.subject, ctx.now, None, "withdrawn", {"key": key, "note": note})
        if aid is None:
            if row is not None and row[0] in CUSTODY_EVENTS and ctx.box:
                # InfluxDB keeps the point written when it was found; say that it no longer stands
                p = self.index.get(row[1]) if row[1] else None
                outbox.enqueue(db, [lines.custody_event(
                    ctx.box, ctx.plan.district if ctx.plan else None, f"withdrawn_{row[0]}", p.kind if p else None,
                    row[1] or "", device_hex(ctx.dev), ctx.now - row[2], row[2], int(row[3]), nudge=1)])
            return []
        res = al.withdraw(db, aid, ctx.now, note)
        if res is None:
            return []
        if res[1] == "updated":  # other occurrences remain: the alert's time is the earliest of theirs
            first = db.execute("SELECT t, place FROM judge_findings WHERE alert_id = ? ORDER BY t LIMIT 1", (aid,)).fetchone()
            if first is not None:
                db.execute("UPDATE alerts SET device_time = ?, place = ? WHERE id = ?", (first[0], first[1], aid))
                res = (al.get(db, aid), "updated")  # type: ignore[assignment]
        outbox.enqueue(db, [lines.alert(res[0], ctx.now)])
        return [al.to_json(res[0], res[1])]

    def _box_state_line(self, state: dict, fr: dict, box: str, dev: int, plan: Plan | None) -> str:
        inside = sorted(c for c, v in state["places"].items() if v["ph"] != "pin")
        if inside:
            st = "at_place"
        elif state["off"] and state["off"]["alerted"]:
            st = "off_corridor"
        elif state["stop"] and fr["t"] - state["stop"]["since"] >= 600:
            st = "stopped"
        else:
            st = "in_transit"
        return lines.box_state(box, plan.district if plan else None, st, fr["lat"], fr["lon"],
                               inside[0] if inside else "", device_hex(dev), plan.tps if plan else "", fr["t"], fr["c"])


def _custody_complete(plan: Plan, arrived: list[tuple[str, float]]) -> bool:
    """The box reached the end of its last return leg after it was at its TPS."""
    ret = [lg for lg in plan.legs if lg.name not in OUTBOUND]
    if not ret:
        return False
    at_tps = [t for p, t in arrived if p == plan.tps]
    return bool(at_tps) and any(p == ret[-1].to_code and t > min(at_tps) for p, t in arrived)


class _Ctx:
    __slots__ = ("db", "dev", "box", "subject", "plan", "now")

    def __init__(self, db: sqlite3.Connection, dev: int, box: str | None, subject: str, plan: Plan | None, now: float) -> None:
        self.db, self.dev, self.box, self.subject, self.plan, self.now = db, dev, box, subject, plan, now


