"""The custody judge: the pipeline's rules stage (segel.messages.Judge), and `build_judge()` to make one.

Per device it keeps every accepted frame in compact form with the rule state after it, in counter
order. A frame that arrives in order advances the state by one step. A frame that arrives late and
fills a gap (store-and-forward after a dead zone) is inserted where its counter belongs and the
frames after it are judged again from the state before it; findings the new judgement no longer
makes are withdrawn, new ones are raised (marked late when their device time is older than
late_after_s). So the findings are always those of the frames judged in counter order: the same
frames in any arrival order give the same alerts, and replayed buffered points never flap.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterable
from pathlib import Path

from segel.custody import alerts as al
from segel.custody import ledger, receipts
from segel.custody.boxes import import_boxes, load_boxes
from segel.custody.plan import (
    DEFAULT_RULES,
    OUTBOUND,
    Calendar,
    Plan,
    PlanError,
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
CUSTODY_EVENTS = (ENTER, EXIT, SEAL_EVENT)
SECURITY_KINDS = {RejectReason.BAD_MAC: "forged_frame", RejectReason.REPLAY: "replayed_frame"}


def ensure_schema(conn: sqlite3.Connection) -> None:
    for stmt in SCHEMA.split(";"):
        if stmt.strip():
            conn.execute(stmt)
    al.ensure_schema(conn)
    ledger.ensure_schema(conn)


NOTICE_MESSAGES = {
    "downlink_counters_low": "the tracker's downlink counters are nearly used up ({left} left): re-key it "
                             "(a new key epoch) before its acks stop",
    "acks_stopped": "the tracker's downlink counters are used up: it gets no acks until it is re-keyed",
    "bad_mac_flood": "{count} frames with a bad MAC in {window_s:.0f} s: someone is sending forged frames",
    "revoked_tracker_heard": "the revoked tracker ({reason}; revoked {revoked}) was heard through {via}",
}


class CustodyJudge:
    """segel.messages.Judge over places, custody plans and the rules in segel.custody.rules."""

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
        # boxes whose pairing gives no plan ({box: why}); raised as invalid_pairing at the first tick
        self.pairing_problems: dict[str, str] = {}

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
        if fr["k"] == "applied" and fr["interval_s"]:  # a device command changed when it reports
            db.execute("INSERT OR REPLACE INTO judge_intervals(device, interval_s) VALUES (?, ?)", (dev, fr["interval_s"]))
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
            note = f"heard again (counter {rec.counter})"
            out.append(al.resolve(db, silent["id"], "system", note, now))
            outbox.enqueue(db, [lines.alert(al.get(db, silent["id"]), now)])  # type: ignore[arg-type]
            if self.keep_ledger:
                ledger.record_alert(db, silent, "resolved", now, "system", note)
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
        """Timers: silent trackers, legs whose window closed before the box arrived, re-notification.
        A few bulk queries, then plain Python per device (cheap enough to run every few seconds)."""
        out: list[dict] = self._pairing_alerts(db, now)
        s = self.settings
        limit = s["silent_after_intervals"] * s["report_interval_s"]
        # a tracker told to report less often (segel device set: storage mode) is silent later
        own = {d: s["silent_after_intervals"] * max(iv, s["report_interval_s"])
               for d, iv in db.execute("SELECT device, interval_s FROM judge_intervals")}
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
            if now - last_rx > own.get(dev, limit) and subject not in open_silent and not done:
                row, ev = al.raise_alert(db, kind="silent", subject=subject, key=f"silent|{last_rx:.3f}", now=now,
                                         device_time=None, box=box, device=device_hex(dev),
                                         district=plan.district if plan else None,
                                         message=f"no frame for {int((now - last_rx) // 60)} min (limit {int(own.get(dev, limit) // 60)} min)",
                                         detail={"last_heard": al.iso(last_rx)})
                out.append(al.to_json(row, ev))
                outbox.enqueue(db, [lines.alert(row, now)])
                if self.keep_ledger:
                    ledger.record_alert(db, row, ev, now, "system", row["message"])
            if plan is not None:
                out += self._schedule(db, dev, box, subject, plan, now, arrivals.get(dev, []),
                                      open_sched.get(subject), sched_done)
        # handover receipts the tracker has not confirmed yet: given as long as a silent tracker gets
        out += receipts.check_pending(db, now, limit, self.plans)
        for row in db.execute(f"SELECT {', '.join(al.COLS)} FROM alerts WHERE state = 'open' AND severity = 'critical' "
                              "AND notified_at <= ?", (now - s["renotify_s"],)).fetchall():
            d = dict(zip(al.COLS, row))
            db.execute("UPDATE alerts SET notified_at = ?, notify_count = notify_count + 1 WHERE id = ?", (now, d["id"]))
            out.append(al.to_json(al.get(db, d["id"]), "renotify"))  # type: ignore[arg-type]
        return out

    # ---- helpers -----------------------------------------------------------------------------

    def _pairing_alerts(self, db: sqlite3.Connection, now: float) -> list[dict]:
        """One invalid_pairing alert per box whose pairing gave no plan (once per start)."""
        out: list[dict] = []
        problems, self.pairing_problems = self.pairing_problems, {}
        for box, why in sorted(problems.items()):
            row = db.execute("SELECT device_id, tps FROM boxes WHERE box_id = ?", (box,)).fetchone()
            dev = device_hex(row[0]) if row and row[0] is not None else None
            a, ev = al.raise_alert(db, kind="invalid_pairing", subject=box, key=f"invalid_pairing|{box}", now=now,
                                   device_time=None, box=box, device=dev,
                                   message=f"box {box}: {why}; fix with segel pair {box} {dev or 'DEVICE'} --tps CODE "
                                           "--force, then restart the gateway",
                                   detail={"tps": row[1] if row else None})
            outbox.enqueue(db, [lines.alert(a, now)])
            out.append(al.to_json(a, ev))
        return out

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
            if self.keep_ledger:
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
            if self.keep_ledger:
                ledger.record_alert(db, row, ev, now, "system", row["message"])
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
            extra = {"alert": aid} if aid else {}
            ledger.append(db, ctx.subject, now, f.t, f.kind, {"place": f.place, "key": f.key, "late": late, **f.detail,
                                                             **extra})
        return out

    def _withdraw(self, ctx: _Ctx, key: str, aid: str | None, note: str) -> list[dict]:
        db = ctx.db
        row = db.execute("SELECT kind, place, t, counter FROM judge_findings WHERE device = ? AND key = ?",
                         (ctx.dev, key)).fetchone()
        db.execute("DELETE FROM judge_findings WHERE device = ? AND key = ?", (ctx.dev, key))
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


def make_plans(places: dict[str, Place], boxes: dict[str, str], calendar: Calendar) -> dict[str, Plan]:
    """Plans for many boxes ({box: tps}) from one calendar (corridors matched once); raises
    PlanError for the first box whose TPS cannot give a plan (`plans_and_problems` lists them)."""
    plans, problems = plans_and_problems(places, boxes, calendar)
    if problems:
        box, why = next(iter(problems.items()))
        raise PlanError(f"box {box}: {why}")
    return plans


def plans_and_problems(places: dict[str, Place], boxes: dict[str, str],
                       calendar: Calendar) -> tuple[dict[str, Plan], dict[str, str]]:
    """Plans for every box that can have one, and {box: why not} for the others (a pairing whose
    TPS is not a known TPS): one bad pairing must not stop the gateway."""
    cmap = corridor_map(places)
    plans: dict[str, Plan] = {}
    problems: dict[str, str] = {}
    for b, tps in boxes.items():
        try:
            plans[b] = make_plan(b, tps, places, calendar, cmap)
        except PlanError as e:
            problems[b] = str(e)
    return plans, problems


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
    plans, problems = plans_and_problems(stored, paired, cal) if cal is not None else ({}, {})
    rules = {**(cal.rules if cal else {}), **(settings or {})}
    judge = CustodyJudge(conn, PlaceIndex(stored.values()), plans, rules)
    judge.pairing_problems = problems
    for box, why in sorted(problems.items()):
        log.error("box %s has no custody plan: %s; an invalid_pairing alert is raised and the gateway runs on "
                  "(fix: segel pair %s DEVICE --tps CODE --force)", box, why, box)
    return judge
