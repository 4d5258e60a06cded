"""The regency side's record of what it owes the nation: `national_outbox`, filled by SQLite triggers.

Every change the national tier must learn becomes one row of `national_outbox` in the same
transaction as the change, because the triggers sit on the tables that change: whoever writes
(the gateway's worker, `segel alerts ack` from a shell, the console), the item commits or rolls
back with it. `seq` is AUTOINCREMENT, so it is never reused and committed items are numbered
without gaps in commit order: the national tier applies a regency's items strictly by `seq`.

Items (kind: what caused it; subject = the box, or `device:<hex>` for an unpaired tracker):
- `alert`: a row of `alert_history` (raised, repeated, acknowledged, resolved, withdrawn, ...)
  with the alert as it stands after the change; `updated` when only its time or place moved.
- `custody`: a custody finding of the judge (enter, exit, arrived, seal events and openings)
  recorded or withdrawn (late data disproved it).
- `box`: a box paired, re-paired or given its TPS (with its district, the TPS's PPK).
- `position`: a box's fix, at most one per `position_interval_s` of device time per tracker.
- `checkpoint`, `signing_key`: the signed ledger heads and the public keys that sign them
  (`segel.custody.checkpoints`), as the checkpointer stores them.
- `summary`: per-district counts, written by the uplink (`enqueue_summary`), not by a trigger.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable

from segel.custody import checkpoints
from segel.custody import judge as custody_judge
from segel.places import io as places_io

SCHEMA = """
CREATE TABLE IF NOT EXISTS national_outbox (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    kind      TEXT NOT NULL,
    subject   TEXT,
    at        REAL,
    committed REAL NOT NULL,
    body      TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS national_state (
    name  TEXT PRIMARY KEY,
    value TEXT
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS national_marks (
    device INTEGER PRIMARY KEY,
    t      REAL NOT NULL
)
"""

# SQLite's wall clock in unix seconds (millisecond resolution): when the item was committed, for
# the lag the national tier measures. 'now' is fixed for one statement.
NOW = "((julianday('now') - 2440587.5) * 86400.0)"

CUSTODY_KINDS = ("enter", "exit", "arrived", "seal_event", "seal_authorised", "seal_unauthorised", "case_opened")

ALERT_FIELDS = ("id", "kind", "severity", "subject", "box", "device", "place", "district", "state", "device_time",
                "last_device_time", "raised_at", "late", "occurrences", "message", "acked_by", "acked_at", "ack_note",
                "resolved_by", "resolved_at", "resolve_note")

# Tables of the signed ledger checkpoints (issue 15) captured when they exist: kind, subject column.
CAPTURED_TABLES = {"ledger_checkpoints": ("checkpoint", "box"), "signing_keys": ("signing_key", None)}


def _alert_json(alias: str) -> str:
    parts = [f"'{f}', {alias}.{f}" for f in ALERT_FIELDS] + [f"'detail', json(COALESCE({alias}.detail, '{{}}'))"]
    return "json_object(" + ", ".join(parts) + ")"


def _district(tps: str) -> str:
    """The PPK above a TPS (TPS -> PPS -> PPK in the places), as SQL a trigger can use (no CTEs there)."""
    return (f"(SELECT pps.parent FROM places pps WHERE pps.code = "
            f"(SELECT t.parent FROM places t WHERE t.code = {tps}))")


def _box_json(row: str) -> str:
    """A `box` item's body from a row of `boxes` (NEW in a trigger, an alias in a query)."""
    return (f"json_object('box', {row}.box_id, 'tps', {row}.tps, 'district', {_district(row + '.tps')}, "
            f"'contest', {row}.contest, 'device', CASE WHEN {row}.device_id IS NULL THEN NULL "
            f"ELSE printf('%06x', {row}.device_id) END)")


def _triggers(position_interval_s: float) -> list[str]:
    alert = _alert_json("a")
    custody_in = ", ".join(f"'{k}'" for k in CUSTODY_KINDS)
    box_of = "(SELECT box FROM judge_devices WHERE device = {d})"
    box_item = (f"INSERT INTO national_outbox(kind, subject, at, committed, body) "
                f"VALUES ('box', NEW.box_id, {NOW}, {NOW}, {_box_json('NEW')});")
    return [
        f"""CREATE TRIGGER national_alert_event AFTER INSERT ON alert_history BEGIN
            INSERT INTO national_outbox(kind, subject, at, committed, body)
            SELECT 'alert', a.subject, NEW.at, {NOW},
                   json_object('event', NEW.event, 'by', NEW.by, 'note', NEW.note, 'alert', {alert})
            FROM alerts a WHERE a.id = NEW.alert_id;
        END""",
        # the judge moves an alert's time and place to its earliest remaining occurrence after a
        # withdrawal, without a history row: send the alert as it now stands
        f"""CREATE TRIGGER national_alert_moved AFTER UPDATE OF device_time, place ON alerts
            WHEN (NEW.device_time IS NOT OLD.device_time OR NEW.place IS NOT OLD.place)
                 AND NEW.state = OLD.state AND NEW.occurrences = OLD.occurrences BEGIN
            INSERT INTO national_outbox(kind, subject, at, committed, body)
            SELECT 'alert', a.subject, NULL, {NOW}, json_object('event', 'updated', 'by', NULL, 'note', NULL, 'alert', {alert})
            FROM alerts a WHERE a.id = NEW.id;
        END""",
        f"""CREATE TRIGGER national_custody_found AFTER INSERT ON judge_findings
            WHEN NEW.kind IN ({custody_in}) BEGIN
            INSERT INTO national_outbox(kind, subject, at, committed, body)
            SELECT 'custody', COALESCE({box_of.format(d='NEW.device')}, printf('device:%06x', NEW.device)), NEW.t, {NOW},
                   json_object('finding', NEW.kind, 'place', NEW.place,
                               'place_kind', (SELECT kind FROM places WHERE code = NEW.place),
                               't', NEW.t, 'counter', NEW.counter, 'key', NEW.key,
                               'device', printf('%06x', NEW.device), 'withdrawn', json('false'));
        END""",
        f"""CREATE TRIGGER national_custody_withdrawn AFTER DELETE ON judge_findings
            WHEN OLD.kind IN ({custody_in}) BEGIN
            INSERT INTO national_outbox(kind, subject, at, committed, body)
            SELECT 'custody', COALESCE({box_of.format(d='OLD.device')}, printf('device:%06x', OLD.device)), OLD.t, {NOW},
                   json_object('finding', OLD.kind, 'place', OLD.place,
                               'place_kind', (SELECT kind FROM places WHERE code = OLD.place),
                               't', OLD.t, 'counter', OLD.counter, 'key', OLD.key,
                               'device', printf('%06x', OLD.device), 'withdrawn', json('true'));
        END""",
        f"""CREATE TRIGGER national_box_added AFTER INSERT ON boxes BEGIN {box_item} END""",
        f"""CREATE TRIGGER national_box_changed AFTER UPDATE ON boxes
            WHEN NEW.device_id IS NOT OLD.device_id OR NEW.tps IS NOT OLD.tps OR NEW.contest IS NOT OLD.contest BEGIN
            {box_item} END""",
        # device_state is written with INSERT OR REPLACE: the INSERT trigger sees every save
        f"""CREATE TRIGGER national_position AFTER INSERT ON device_state
            WHEN NEW.last_fix_time IS NOT NULL AND NEW.last_lat IS NOT NULL
             AND EXISTS (SELECT 1 FROM boxes WHERE device_id = NEW.device_id)
             AND NEW.last_fix_time >= COALESCE((SELECT t FROM national_marks WHERE device = NEW.device_id), -1e18)
                                      + {float(position_interval_s)!r} BEGIN
            INSERT OR REPLACE INTO national_marks(device, t) VALUES (NEW.device_id, NEW.last_fix_time);
            INSERT INTO national_outbox(kind, subject, at, committed, body)
            SELECT 'position', b.box_id, NEW.last_fix_time, {NOW},
                   json_object('t', NEW.last_fix_time, 'lat', NEW.last_lat, 'lon', NEW.last_lon,
                               'device', printf('%06x', NEW.device_id))
            FROM boxes b WHERE b.device_id = NEW.device_id;
        END""",
    ]


TRIGGER_NAMES = ("national_alert_event", "national_alert_moved", "national_custody_found", "national_custody_withdrawn",
                 "national_box_added", "national_box_changed", "national_position")


def _table_trigger(conn: sqlite3.Connection, table: str, kind: str, subject_col: str | None) -> str | None:
    cols = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
    if not cols:
        return None
    fields = ", ".join(f"'{c}', NEW.{c}" for c in cols)
    subject = f"NEW.{subject_col}" if subject_col and subject_col in cols else "NULL"
    return (f"CREATE TRIGGER national_{table} AFTER INSERT ON {table} BEGIN "
            f"INSERT INTO national_outbox(kind, subject, at, committed, body) "
            f"VALUES ('{kind}', {subject}, {NOW}, {NOW}, json_object({fields})); END")


def ensure_schema(conn: sqlite3.Connection) -> None:
    for stmt in SCHEMA.split(";"):
        if stmt.strip():
            conn.execute(stmt)


def install(conn: sqlite3.Connection, position_interval_s: float = 900.0) -> dict[str, int]:
    """Create the outbox and (re)create the triggers, in one transaction; call before the gateway
    starts. The first time, the regency's current state goes into the outbox too (every box,
    alert and custody finding), so the nation starts complete. Returns what that snapshot held."""
    custody_judge.ensure_schema(conn)  # alerts, history, findings, ledger: the triggers' tables
    places_io.ensure_schema(conn)
    checkpoints.ensure_schema(conn)  # the signed ledger heads (issue 15), captured from their first
    conn.execute("BEGIN IMMEDIATE")
    try:
        ensure_schema(conn)
        for name in TRIGGER_NAMES + tuple(f"national_{t}" for t in CAPTURED_TABLES):
            conn.execute(f"DROP TRIGGER IF EXISTS {name}")
        for sql in _triggers(position_interval_s):
            conn.execute(sql)
        for table, (kind, subject_col) in CAPTURED_TABLES.items():
            sql = _table_trigger(conn, table, kind, subject_col)
            if sql:
                conn.execute(sql)
        snap: dict[str, int] = {}
        if conn.execute("SELECT 1 FROM national_state WHERE name = 'installed'").fetchone() is None:
            snap = _snapshot(conn)
            conn.execute("INSERT INTO national_state(name, value) VALUES ('installed', ?)", (json.dumps(snap),))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return snap


def _snapshot(conn: sqlite3.Connection) -> dict[str, int]:
    """What existed before the national uplink was configured, as items (inside install's transaction)."""
    n = {}
    n["box"] = conn.execute(
        f"INSERT INTO national_outbox(kind, subject, at, committed, body) "
        f"SELECT 'box', b.box_id, {NOW}, {NOW}, {_box_json('b')} FROM boxes b ORDER BY b.box_id").rowcount
    n["alert"] = conn.execute(
        f"INSERT INTO national_outbox(kind, subject, at, committed, body) "
        f"SELECT 'alert', a.subject, a.raised_at, {NOW}, json_object('event', 'snapshot', 'by', NULL, 'note', NULL, "
        f"'alert', {_alert_json('a')}) FROM alerts a ORDER BY a.raised_at, a.id").rowcount
    custody_in = ", ".join(f"'{k}'" for k in CUSTODY_KINDS)
    n["custody"] = conn.execute(
        f"INSERT INTO national_outbox(kind, subject, at, committed, body) "
        f"SELECT 'custody', COALESCE(d.box, printf('device:%06x', f.device)), f.t, {NOW}, "
        f"json_object('finding', f.kind, 'place', f.place, 'place_kind', (SELECT kind FROM places WHERE code = f.place), "
        f"'t', f.t, 'counter', f.counter, 'key', f.key, 'device', printf('%06x', f.device), 'withdrawn', json('false')) "
        f"FROM judge_findings f LEFT JOIN judge_devices d ON d.device = f.device "
        f"WHERE f.kind IN ({custody_in}) ORDER BY f.device, f.counter, f.key").rowcount
    return n


def uninstall(conn: sqlite3.Connection) -> None:
    """Drop the triggers (the outbox stays): the regency stops recording items for the nation."""
    for name in TRIGGER_NAMES + tuple(f"national_{t}" for t in CAPTURED_TABLES):
        conn.execute(f"DROP TRIGGER IF EXISTS {name}")


# ---- reading the outbox (the uplink) ------------------------------------------------------------


def pending(conn: sqlite3.Connection, after: int, limit: int, max_bytes: int = 256_000) -> list[tuple[int, str]]:
    """Items after `after` in seq order, as (seq, item JSON), at most `limit` or about `max_bytes`."""
    out: list[tuple[int, str]] = []
    size = 0
    for seq, text in conn.execute(
            "SELECT seq, json_object('seq', seq, 'kind', kind, 'subject', subject, 'at', at, 'committed', committed, "
            "'body', json(body)) FROM national_outbox WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit)):
        if out and size + len(text) > max_bytes:
            break
        out.append((seq, text))
        size += len(text)
    return out


def last_seq(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'national_outbox'").fetchone()
    return int(row[0]) if row else 0


def get_state(conn: sqlite3.Connection, name: str, default: str | None = None) -> str | None:
    row = conn.execute("SELECT value FROM national_state WHERE name = ?", (name,)).fetchone()
    return row[0] if row else default


def set_state(conn: sqlite3.Connection, name: str, value: str) -> None:
    conn.execute("INSERT INTO national_state(name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                 (name, value))


def prune(conn: sqlite3.Connection, acked: int, older_than: float) -> int:
    """Forget items the national tier has confirmed and that were committed before `older_than`
    (unix seconds). Unconfirmed items are never pruned."""
    return conn.execute("DELETE FROM national_outbox WHERE seq <= ? AND committed < ?", (acked, older_than)).rowcount


# ---- district summaries ---------------------------------------------------------------------------


def box_states(conn: sqlite3.Connection) -> dict[str, str]:
    """Each box's custody state from its latest location finding: the kind of place it is at
    (warehouse, ppk, pps, tps), `in_transit` after leaving one, `unknown` before any."""
    from segel.national.model import location_state

    latest: dict[str, tuple[float, int, bool, str, str | None]] = {}
    for box, kind, place_kind, t, counter in conn.execute(
            "SELECT d.box, f.kind, p.kind, f.t, f.counter FROM judge_findings f JOIN judge_devices d ON d.device = f.device "
            "LEFT JOIN places p ON p.code = f.place WHERE f.kind IN ('enter', 'exit', 'arrived') AND d.box IS NOT NULL"):
        # latest by device time, then counter; one frame that leaves one place and enters another
        # puts the box at the place it entered
        key = (t, counter, kind != "exit", kind, place_kind or "")
        if box not in latest or key > latest[box]:
            latest[box] = key
    out = {}
    for (box,) in conn.execute("SELECT box_id FROM boxes"):
        cur = latest.get(box)
        out[box] = location_state(cur[3], cur[4]) if cur else location_state(None, None)
    return out


def summary(conn: sqlite3.Connection) -> dict:
    """Per district (PPK): boxes, boxes by custody state, open alerts by severity, silent trackers,
    late legs; what the regency itself counts, sent up so the nation can compare."""
    names = {}
    for code, body in conn.execute("SELECT code, body FROM places WHERE kind = 'ppk'"):
        try:
            names[code] = json.loads(body).get("name") or code
        except ValueError:
            names[code] = code
    district_of = {box: d for box, d in conn.execute(
        f"SELECT b.box_id, {_district('b.tps')} FROM boxes b")}
    states = box_states(conn)
    out: dict[str, dict] = {}

    def slot(d: str | None) -> dict:
        key = d or "-"
        if key not in out:
            out[key] = {"name": names.get(key, key), "boxes": 0, "states": {}, "open_alerts": {}, "silent": 0, "late": 0}
        return out[key]

    for code in names:
        slot(code)
    for box, d in district_of.items():
        s = slot(d)
        s["boxes"] += 1
        st = states.get(box, "unknown")
        s["states"][st] = s["states"].get(st, 0) + 1
    for d, sev, kind, n in conn.execute(
            "SELECT district, severity, kind, COUNT(*) FROM alerts WHERE state IN ('open', 'acknowledged') "
            "GROUP BY district, severity, kind"):
        s = slot(d)
        s["open_alerts"][sev] = s["open_alerts"].get(sev, 0) + n
        if kind == "silent":
            s["silent"] += n
        elif kind == "behind_schedule":
            s["late"] += n
    return {k: out[k] for k in sorted(out)}


def enqueue_summary(conn: sqlite3.Connection, regency: str, name: str, now: float) -> bool:
    """Write a `summary` item when the counts changed since the last one (own transaction)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        districts = summary(conn)
        digest = hashlib.sha256(json.dumps([regency, name, districts], sort_keys=True).encode()).hexdigest()
        if get_state(conn, "summary_digest") == digest:
            conn.execute("COMMIT")
            return False
        body = json.dumps({"regency": regency, "name": name, "districts": districts}, separators=(",", ":"))
        conn.execute(f"INSERT INTO national_outbox(kind, subject, at, committed, body) VALUES ('summary', NULL, ?, {NOW}, ?)",
                     (now, body))
        set_state(conn, "summary_digest", digest)
        conn.execute("COMMIT")
        return True
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def items(conn: sqlite3.Connection, kinds: Iterable[str] | None = None) -> list[dict]:
    """Every item still in the outbox (tests and `segel national status`)."""
    ks = list(kinds or [])
    where = f" WHERE kind IN ({','.join('?' * len(ks))})" if ks else ""
    return [{"seq": s, "kind": k, "subject": sub, "at": at, "committed": c, "body": json.loads(b)}
            for s, k, sub, at, c, b in conn.execute(
                f"SELECT seq, kind, subject, at, committed, body FROM national_outbox{where} ORDER BY seq", ks)]
