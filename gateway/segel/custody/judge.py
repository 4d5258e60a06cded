"""The custody judge: the pipeline's rules stage (segel.messages.Judge), and `build_judge()` to make one.

Per device it keeps every accepted frame in compact form with the rule state after it, in counter
order. A frame that arrives in order advances the state by one step. A frame that arrives late and
fills a gap (store-and-forward after a dead zone) is inserted where its counter belongs and the
frames after it are judged again from the state before it; findings the new judgement no longer
makes are withdrawn, new ones are raised (marked late when their device time is older than
late_after_s). So the findings are always those of the frames judged in counter order: the same
frames in any arrival order give the same alerts, and replayed buffered points never flap.

What it costs (docs/gateway.md, "With the rules on"): the rule state is stored only with every
CHECKPOINT-th frame; the state after a device's newest frame is kept in memory (`_Tail`, an LRU of
devices), checked against a version number the judge bumps in `judge_devices` with every frame,
so a rolled-back batch or another writer is noticed and the tail rebuilt from the last
checkpoint. A frame that arrives in order then costs a version check, the rules' step and three
writes (frame, device row, ledger entry); only a late frame reads the frames after it. Timers run
from a schedule by due time (`segel.custody.timers`).
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path

from segel.custody import alerts as al
from segel.custody import ledger, receipts, timers
from segel.custody.boxes import import_boxes, load_boxes
from segel.custody.plan import (
    DEFAULT_RULES,
    Calendar,
    Plan,
    corridor_map,
    make_plan,
    store_calendar,
)
from segel.custody.rules import (
    ENTER,
    EXIT,
    SEAL_EVENT,
    Finding,
    Rules,
    initial_state,
    record,
)
from segel.ids import device_hex
from segel.influx import lines, outbox
from segel.messages import Accepted, Notice, Rejected
from segel.places import io as places_io
from segel.places.index import PlaceIndex
from segel.places.model import Place
from segel.protocol import RejectReason

log = logging.getLogger("segel.custody")

SCHEMA = """
CREATE TABLE IF NOT EXISTS judge_frames (
    device INTEGER NOT NULL, counter INTEGER NOT NULL, body TEXT NOT NULL, state TEXT,
    PRIMARY KEY (device, counter)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS judge_findings (
    device INTEGER NOT NULL, key TEXT NOT NULL, counter INTEGER NOT NULL, kind TEXT NOT NULL,
    place TEXT, t REAL, alert_id TEXT, raised_at REAL NOT NULL,
    PRIMARY KEY (device, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS judge_findings_kind ON judge_findings(kind, device);
CREATE TABLE IF NOT EXISTS judge_devices (
    device INTEGER PRIMARY KEY, box TEXT, first_rx REAL NOT NULL, last_rx REAL NOT NULL,
    key_epoch INTEGER NOT NULL DEFAULT 0, newest INTEGER NOT NULL DEFAULT -1
);
CREATE TABLE IF NOT EXISTS judge_intervals (device INTEGER PRIMARY KEY, interval_s REAL NOT NULL)
"""
# Columns added by issue 17 (ALTER TABLE for databases made before): the tail's version, when the
# device falls silent (the timers' schedule), and the oldest counter still judged after a prune.
DEVICE_COLUMNS = {"version": "INTEGER NOT NULL DEFAULT 0", "silent_due": "REAL", "floor": "INTEGER NOT NULL DEFAULT -1"}
CUSTODY_EVENTS = (ENTER, EXIT, SEAL_EVENT)
SECURITY_KINDS = {RejectReason.BAD_MAC: "forged_frame", RejectReason.REPLAY: "replayed_frame"}
CHECKPOINT = 16  # the rule state is stored with frames whose counter is a multiple of this
TAIL_DEVICES = 100_000  # devices whose newest state is kept in memory (LRU)


def ensure_schema(conn: sqlite3.Connection) -> set[str]:
    """Create the judge's tables; returns the judge_devices columns it had to add."""
    for stmt in SCHEMA.split(";"):
        if stmt.strip():
            conn.execute(stmt)
    have = {r[1] for r in conn.execute("PRAGMA table_info(judge_devices)")}
    added = set()
    for col, decl in DEVICE_COLUMNS.items():
        if col not in have:
            conn.execute(f"ALTER TABLE judge_devices ADD COLUMN {col} {decl}")
            added.add(col)
    timers.ensure_schema(conn)
    al.ensure_schema(conn)
    ledger.ensure_schema(conn)
    return added


def _dumps(obj: dict) -> str:
    return json.dumps(obj, separators=(",", ":"))


class _Tail:
    """The judge's memory of one device: its newest judged counter and the rule state after it,
    valid while `judge_devices.version` still equals `version`."""

    __slots__ = ("version", "epoch", "newest", "state")

    def __init__(self, version: int, epoch: int, newest: int, state: dict) -> None:
        self.version, self.epoch, self.newest, self.state = version, epoch, newest, state


NOTICE_MESSAGES = {
    "downlink_counters_low": "the tracker's downlink counters are nearly used up ({left} left): re-key it "
                             "(a new key epoch) before its acks stop",
    "acks_stopped": "the tracker's downlink counters are used up: it gets no acks until it is re-keyed",
    "bad_mac_flood": "{count} frames with a bad MAC in {window_s:.0f} s: someone is sending forged frames",
}


class CustodyJudge:
    """segel.messages.Judge over places, custody plans and the rules in segel.custody.rules."""

    def __init__(self, conn: sqlite3.Connection, index: PlaceIndex, plans: dict[str, Plan],
                 settings: dict[str, float] | None = None, *, keep_ledger: bool = True,
                 keep_counters: int = 4096 + 64) -> None:
        """keep_counters: how far behind a device's newest counter its frames are kept for
        re-judging; the pipeline refuses frames older than its replay window (4096) anyway."""
        added = ensure_schema(conn)
        self.index = index
        self.plans = plans
        self.settings = {**DEFAULT_RULES, **(settings or {})}
        self.rules = Rules(index, self.settings)
        self.keep_ledger = keep_ledger
        self.keep_counters = keep_counters
        self._tails: OrderedDict[int, _Tail] = OrderedDict()
        self.timers = timers.Timers(self)
        self.timers.prepare(conn, migrated="silent_due" in added)

    # ---- segel.messages.Judge -----------------------------------------------------------------------

    def on_accepted(self, rec: Accepted, db: sqlite3.Connection) -> list[dict]:
        dev = rec.device_id
        try:
            return self._accepted(rec, db)
        except BaseException:
            self._tails.pop(dev, None)  # half-done: rebuild from the database next time
            raise

    def _accepted(self, rec: Accepted, db: sqlite3.Connection) -> list[dict]:
        dev, c = rec.device_id, rec.counter
        box = rec.box_id
        if box is None:
            row = db.execute("SELECT box_id FROM boxes WHERE device_id = ?", (dev,)).fetchone()
            box = row[0] if row else None
        plan = self.plans.get(box) if box else None
        fr = record(c, rec.event_time, rec.received_at, rec.frame.body)
        epoch, version, floor = self._epoch(db, dev)
        tail = self._tails.get(dev)
        if tail is not None and (tail.version != version or tail.epoch != epoch):
            tail = None
        in_order = tail is not None and c > tail.newest
        if in_order:
            assert tail is not None
            state, found = self.rules.step(tail.state, fr, plan)
            cur = db.execute("INSERT OR IGNORE INTO judge_frames(device, counter, body, state) VALUES (?,?,?,?)",
                             (dev, c, _dumps(fr), _dumps(state) if c % CHECKPOINT == 0 else None))
        else:
            cur = db.execute("INSERT OR IGNORE INTO judge_frames(device, counter, body) VALUES (?,?,?)",
                             (dev, c, _dumps(fr)))
        if cur.rowcount == 0:
            return []  # judged already (the pipeline dedupes; a second judge call is harmless)
        now = rec.received_at
        db.execute("INSERT INTO judge_devices(device, box, first_rx, last_rx, key_epoch, newest, version, silent_due) "
                   "VALUES (?,?,?,?,?,?,1,?) ON CONFLICT(device) DO UPDATE SET box = excluded.box, "
                   "last_rx = MAX(last_rx, excluded.last_rx), key_epoch = excluded.key_epoch, "
                   "newest = MAX(newest, excluded.newest), version = version + 1, "
                   "silent_due = MAX(last_rx, excluded.last_rx) + ?",
                   (dev, box, now, now, epoch, c, now + self.timers.silent_limit, self.timers.silent_limit))
        version += 1
        if fr["k"] == "applied" and fr["interval_s"]:  # a device command changed when it reports
            db.execute("INSERT OR REPLACE INTO judge_intervals(device, interval_s) VALUES (?, ?)", (dev, fr["interval_s"]))
            self.timers.own_interval.add(dev)
        if dev in self.timers.own_interval:  # a tracker told to report less often is silent later
            db.execute("UPDATE judge_devices SET silent_due = last_rx + ? WHERE device = ?",
                       (self.timers.limit_for(db, dev), dev))
        if c % 256 == 0:  # frames beyond the replay window can never be re-judged
            self._forget(db, dev, c - self.keep_counters, plan)
        subject = box or f"device:{device_hex(dev)}"
        ctx = _Ctx(db, dev, box, subject, plan, now)
        if c < floor:  # older than what a prune kept: recorded, but nothing after it can be judged again
            log.info("frame %d of %s is older than the frames kept for judging (from %d): recorded, not judged",
                     c, device_hex(dev), floor)
            if self.keep_ledger:
                ledger.append(db, subject, now, fr["t"], "frame", {"device": device_hex(dev), **fr})
            return []
        if in_order:
            later: list[tuple[int, dict]] = []
            old: dict[str, tuple[int, str | None]] = {}
            new = {f.key: (c, f, float(fr["t"])) for f in reversed(found)}
        else:
            state = self._state_before(db, dev, c, plan)
            later = [(k, json.loads(b)) for k, b in db.execute(
                "SELECT counter, body FROM judge_frames WHERE device = ? AND counter > ? ORDER BY counter", (dev, c))]
            old = {k: (n, aid) for k, n, aid in db.execute(
                "SELECT key, counter, alert_id FROM judge_findings WHERE device = ? AND counter >= ?", (dev, c))}
            new = {}
            for k, body in [(c, fr)] + later:
                state, found = self.rules.step(state, body, plan)
                if k % CHECKPOINT == 0:
                    db.execute("UPDATE judge_frames SET state = ? WHERE device = ? AND counter = ?", (_dumps(state), dev, k))
                for f in found:
                    new.setdefault(f.key, (k, f, float(body["t"])))
        self._remember(dev, _Tail(version, epoch, later[-1][0] if later else c, state))
        out: list[dict] = []
        if self.keep_ledger:
            ledger.append(db, subject, now, fr["t"], "frame", {"device": device_hex(dev), **fr})
        for key in sorted(old.keys() - new.keys()):
            out += self._withdraw(ctx, key, old[key][1], f"disproved by frame {c} received late")
        for key, (k, f, trigger_t) in sorted(new.items(), key=lambda kv: (kv[1][0], kv[0])):
            if key in old:
                if old[key][0] != k:
                    db.execute("UPDATE judge_findings SET counter = ? WHERE device = ? AND key = ?", (k, dev, key))
                continue
            if db.execute("SELECT 1 FROM judge_findings WHERE device = ? AND key = ?", (dev, key)).fetchone():
                continue  # made already by an earlier frame (a tracker clock that went back)
            out += self._raise(ctx, k, f, trigger_t)
        if self.timers.maybe_silent(db, subject):
            silent = al.open_alert(db, subject, "silent")
            if silent is not None:
                note = f"heard again (counter {c})"
                out.append(al.resolve(db, silent["id"], "system", note, now))
                outbox.enqueue(db, [lines.alert(al.get(db, silent["id"]), now)])  # type: ignore[arg-type]
                if self.keep_ledger:
                    ledger.record_alert(db, silent, "resolved", now, "system", note)
            else:
                self.timers.not_silent(subject)
        if not later and fr["k"] == "pos" and box:
            outbox.enqueue(db, [self._box_state_line(state, fr, box, dev, plan)])
        return out

    def on_rejected(self, rec: Rejected, db: sqlite3.Connection) -> list[dict]:
        kind = SECURITY_KINDS.get(rec.reason)
        if kind is None or rec.device_id is None:
            return []
        row = db.execute("SELECT box_id FROM boxes WHERE device_id = ?", (rec.device_id,)).fetchone()
        box = row[0] if row else None
        subject = box or f"device:{device_hex(rec.device_id)}"
        plan = self.plans.get(box) if box else None
        aid_row, event = al.raise_alert(
            db, kind=kind, subject=subject, key=f"{rec.reason}|{rec.received_at:.3f}|{rec.frame.hex()}",
            now=rec.received_at, device_time=None, box=box, device=device_hex(rec.device_id),
            district=plan.district if plan else None,
            message=f"{rec.reason}: {rec.detail}", detail={"reason": rec.reason, "topic": rec.topic})
        outbox.enqueue(db, [lines.alert(aid_row, rec.received_at)])
        if self.keep_ledger:
            ledger.append(db, subject, rec.received_at, None, "security",
                          {"reason": rec.reason, "detail": rec.detail, "alert": aid_row["id"]})
        return [al.to_json(aid_row, event)]

    def on_notice(self, n: Notice, db: sqlite3.Connection) -> list[dict]:
        """The ingest stage's notices become alerts: a tracker's downlink counters near their end
        or used up, a flood of bad MACs for a tracker or through a bridge (subject `bridge:<id>`)."""
        if n.kind not in al.KINDS:
            return []
        box = plan = None
        if n.device_id is not None:
            row = db.execute("SELECT box_id FROM boxes WHERE device_id = ?", (n.device_id,)).fetchone()
            box = row[0] if row else None
            plan = self.plans.get(box) if box else None
            subject = box or f"device:{device_hex(n.device_id)}"
        else:
            subject = f"bridge:{n.bridge}"
        message = NOTICE_MESSAGES[n.kind].format(**n.detail)
        row, event = al.raise_alert(db, kind=n.kind, subject=subject, key=f"{n.kind}|{n.at:.3f}", now=n.at,
                                    device_time=None, box=box,
                                    device=device_hex(n.device_id) if n.device_id is not None else None,
                                    district=plan.district if plan else None, message=message,
                                    detail={**n.detail, **({"bridge": n.bridge} if n.bridge else {})})
        outbox.enqueue(db, [lines.alert(row, n.at)])
        if self.keep_ledger and box:
            ledger.append(db, subject, n.at, None, "security", {"notice": n.kind, **n.detail})
        return [al.to_json(row, event)]

    def on_tick(self, now: float, db: sqlite3.Connection) -> list[dict]:
        """Timers: silent trackers, legs whose window closed before the box arrived, re-notification;
        each tick touches only what is due (segel.custody.timers)."""
        return self.timers.tick(now, db)

    # ---- helpers -----------------------------------------------------------------------------

    def _epoch(self, db: sqlite3.Connection, dev: int) -> tuple[int, int, int]:
        """(key epoch, version, floor) of a device. A re-imaged tracker (new key epoch) counts from
        0 again: its judged frames are dropped (the findings and the ledger stay, no longer tied to
        a counter of the new epoch) and its rule state starts afresh."""
        row = db.execute("SELECT (SELECT key_epoch FROM devices WHERE device_id = ?1), key_epoch, version, floor "
                         "FROM judge_devices WHERE device = ?1", (dev,)).fetchone()
        if row is None:
            r = db.execute("SELECT key_epoch FROM devices WHERE device_id = ?", (dev,)).fetchone()
            return (int(r[0]) if r and r[0] is not None else 0), 0, -1
        epoch = int(row[0]) if row[0] is not None else 0
        if int(row[1]) != epoch:
            db.execute("DELETE FROM judge_frames WHERE device = ?", (dev,))
            db.execute("UPDATE judge_findings SET counter = -1 WHERE device = ? AND counter >= 0", (dev,))
            db.execute("UPDATE judge_devices SET key_epoch = ?, newest = -1, version = version + 1, floor = -1 "
                       "WHERE device = ?", (epoch, dev))
            self._tails.pop(dev, None)
            return epoch, int(row[2]) + 1, -1
        return epoch, int(row[2]), int(row[3])

    def _state_before(self, db: sqlite3.Connection, dev: int, counter: int, plan: Plan | None) -> dict:
        """The rule state after every judged frame of `dev` below `counter`: the nearest stored
        state, then the frames after it stepped through again."""
        row = db.execute("SELECT counter, state FROM judge_frames WHERE device = ? AND counter < ? AND state IS NOT NULL "
                         "ORDER BY counter DESC LIMIT 1", (dev, counter)).fetchone()
        state, start = (json.loads(row[1]), row[0]) if row else (initial_state(), -1)
        for _k, body in db.execute("SELECT counter, body FROM judge_frames WHERE device = ? AND counter > ? "
                                   "AND counter < ? ORDER BY counter", (dev, start, counter)).fetchall():
            state, _found = self.rules.step(state, json.loads(body), plan)
        return state

    def _forget(self, db: sqlite3.Connection, dev: int, below: int, plan: Plan | None) -> None:
        """Drop a device's frames below `below`, keeping the rule state with the oldest frame kept
        (so a late frame after them is still judged from the right state)."""
        first = db.execute("SELECT counter, state FROM judge_frames WHERE device = ? AND counter >= ? ORDER BY counter "
                           "LIMIT 1", (dev, below)).fetchone()
        if first is None or not db.execute("SELECT 1 FROM judge_frames WHERE device = ? AND counter < ? LIMIT 1",
                                           (dev, first[0])).fetchone():
            return
        if first[1] is None:
            state = self._state_before(db, dev, first[0] + 1, plan)
            db.execute("UPDATE judge_frames SET state = ? WHERE device = ? AND counter = ?", (_dumps(state), dev, first[0]))
        db.execute("DELETE FROM judge_frames WHERE device = ? AND counter < ?", (dev, first[0]))

    def _remember(self, dev: int, tail: _Tail) -> None:
        tails = self._tails
        tails[dev] = tail
        tails.move_to_end(dev)
        if len(tails) > TAIL_DEVICES:
            tails.popitem(last=False)

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
        if f.kind == "arrived":
            timers.arrivals_changed(db, ctx.dev)
        if self.keep_ledger:
            extra = {"alert": aid} if aid else {}
            ledger.append(db, ctx.subject, now, f.t, f.kind, {"place": f.place, "key": f.key, "late": late, **f.detail,
                                                             **extra})
        return out

    def _withdraw(self, ctx: _Ctx, key: str, aid: str | None, note: str) -> list[dict]:
        db = ctx.db
        row = db.execute("SELECT kind, place, t, counter FROM judge_findings WHERE device = ? AND key = ?",
                         (ctx.dev, key)).fetchone()
        db.execute("DELETE FROM judge_findings WHERE device = ? AND key = ?", (ctx.dev, key))
        if row is not None and row[0] == "arrived":
            timers.arrivals_changed(db, ctx.dev)
        if self.keep_ledger:
            ledger.append(db, ctx.subject, ctx.now, None, "withdrawn",
                          {"key": key, "note": note, **({"alert": aid} if aid else {})})
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


class _Ctx:
    __slots__ = ("db", "dev", "box", "subject", "plan", "now")

    def __init__(self, db: sqlite3.Connection, dev: int, box: str | None, subject: str, plan: Plan | None, now: float) -> None:
        self.db, self.dev, self.box, self.subject, self.plan, self.now = db, dev, box, subject, plan, now


def make_plans(places: dict[str, Place], boxes: dict[str, str], calendar: Calendar) -> dict[str, Plan]:
    """Plans for many boxes ({box: tps}) from one calendar (corridors matched once)."""
    cmap = corridor_map(places)
    return {b: make_plan(b, tps, places, calendar, cmap) for b, tps in boxes.items()}


def build_judge(conn: sqlite3.Connection, places: str | Path | Iterable[str | Path] | Iterable[Place] | None = None,
                boxes: str | Path | None = None, calendar: str | Path | Calendar | None = None,
                settings: dict[str, float] | None = None, register: bool = False, assign: bool = False) -> CustodyJudge:
    """The judge for a gateway or a replay. Call outside a transaction.

    places: CSV/GeoJSON file(s) to import first (all together or nothing), or Place objects; the
    judge then uses every place stored in `conn`. boxes: a boxes CSV to pair through the registry
    first (register=True registers unknown trackers; assign=True registers and pairs a fresh tracker
    for every box the file gives none). calendar: the election calendar (TOML) from
    which every paired box's plan is generated. settings: rule settings (plan.DEFAULT_RULES) over
    the calendar's [rules]."""
    if isinstance(places, (str, Path)):
        places = [places]
    if places is not None:
        items = list(places)
        if all(isinstance(p, (str, Path)) for p in items):
            places_io.import_files(conn, items)  # type: ignore[arg-type]
        else:
            places_io.store(conn, items)  # type: ignore[arg-type]
    stored = {p.code: p for p in places_io.load(conn)}
    if boxes is not None:
        import_boxes(conn, boxes, stored, register=register, assign=assign)
    cal = store_calendar(conn, calendar) if isinstance(calendar, (str, Path)) else calendar
    paired = {b: tps for b, (tps, _dev) in load_boxes(conn).items()}
    plans = make_plans(stored, paired, cal) if cal is not None else {}
    rules = {**(cal.rules if cal else {}), **(settings or {})}
    return CustodyJudge(conn, PlaceIndex(stored.values()), plans, rules)
