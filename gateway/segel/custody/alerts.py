"""Alerts: the kinds, their severities, the lifecycle and the JSON published for each change.

Lifecycle: open -> acknowledged (who, when, note) -> resolved (who, when, note). At most one alert
per box (or unpaired device) and kind is open or acknowledged at a time (a partial unique index
enforces it); a further occurrence is counted on it. Info alerts are born resolved. An alert whose
only finding is disproved by late data (a frame that fills a gap) is withdrawn. Kinds: docs/alerts.md.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sqlite3
from dataclasses import dataclass

CRITICAL, HIGH, WARNING, INFO = "critical", "high", "warning", "info"
SEVERITY_ORDER = (CRITICAL, HIGH, WARNING, INFO)

OPEN, ACKNOWLEDGED, RESOLVED, WITHDRAWN = "open", "acknowledged", "resolved", "withdrawn"
STATES = (OPEN, ACKNOWLEDGED, RESOLVED, WITHDRAWN)


@dataclass(frozen=True)
class Kind:
    name: str
    severity: str
    doc: str


KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("seal_unauthorised", CRITICAL, "seal loop cut/opened or lid opened outside an authorised place and window"),
    Kind("case_opened", CRITICAL, "the tracker's own case was opened"),
    Kind("tamper_latched", CRITICAL, "a frame carries the latched tamper flag with no seal event before it"),
    Kind("forged_frame", CRITICAL, "a frame under this device's id whose MAC does not verify (forged or corrupted)"),
    Kind("replayed_frame", CRITICAL, "a captured frame of this device sent again with other bytes or outside the replay window"),
    Kind("seal_numbers_differ", CRITICAL, "a handover receipt lists seal numbers other than the last recorded ones, with no authorised opening in between"),
    Kind("bad_mac_flood", HIGH, "many frames with a bad MAC for one tracker or through one bridge in a short "
                                "window: someone is trying to forge frames (subject bridge:<id> for a bridge)"),
    Kind("acks_stopped", HIGH, "the tracker's downlink counters are used up: it gets no acks until re-keyed"),
    Kind("power_lost", HIGH, "the tracker booted after losing power while armed: removed or powered off"),
    Kind("wrong_tps", HIGH, "the box is at a TPS that is not its own"),
    Kind("off_corridor", HIGH, "the box is outside every corridor of its plan and outside any place"),
    Kind("long_stop", HIGH, "the box stood still outside any place for stop_minutes or more"),
    Kind("receipt_wrong_place", HIGH, "a handover receipt at a place the box's plan does not name, or from a phone away from the place"),
    Kind("receipt_no_arrival", HIGH, "a handover receipt, but the tracker recorded no arrival at that place and time"),
    Kind("silent", HIGH, "no frame for longer than silent_after_intervals x report_interval_s (timer)"),
    Kind("behind_schedule", WARNING, "the box had not reached a leg's destination when the leg's window closed (timer)"),
    Kind("downlink_counters_low", WARNING, "the tracker's downlink counters are nearly used up: re-key it"),
    Kind("low_battery", WARNING, "battery below low_battery_mv or the tracker's low-battery flag"),
    Kind("seal_authorised", INFO, "seal opened at an authorised place within its window (e.g. TPS on election day)"),
    Kind("arrived", INFO, "arrived at a custody point of its plan: the handover is recorded"),
)}

SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, severity TEXT NOT NULL, subject TEXT NOT NULL,
    box TEXT, device TEXT, place TEXT, district TEXT, state TEXT NOT NULL,
    device_time REAL, last_device_time REAL, raised_at REAL NOT NULL, late INTEGER NOT NULL DEFAULT 0,
    occurrences INTEGER NOT NULL DEFAULT 1, message TEXT, detail TEXT, lat REAL, lon REAL,
    acked_by TEXT, acked_at REAL, ack_note TEXT, resolved_by TEXT, resolved_at REAL, resolve_note TEXT,
    notified_at REAL, notify_count INTEGER NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX IF NOT EXISTS alerts_one_open ON alerts(subject, kind) WHERE state IN ('open', 'acknowledged');
CREATE INDEX IF NOT EXISTS alerts_state ON alerts(state, severity);
CREATE TABLE IF NOT EXISTS alert_history (
    alert_id TEXT NOT NULL, at REAL NOT NULL, event TEXT NOT NULL, by TEXT, note TEXT
);
CREATE INDEX IF NOT EXISTS alert_history_alert ON alert_history(alert_id);
CREATE INDEX IF NOT EXISTS alerts_box ON alerts(box, raised_at);
"""

COLS = ("id", "kind", "severity", "subject", "box", "device", "place", "district", "state", "device_time",
        "last_device_time", "raised_at", "late", "occurrences", "message", "detail", "lat", "lon", "acked_by",
        "acked_at", "ack_note", "resolved_by", "resolved_at", "resolve_note", "notified_at", "notify_count")


class AlertError(ValueError):
    pass


def ensure_schema(conn: sqlite3.Connection) -> None:
    # statement by statement: executescript() would commit the caller's open transaction
    for stmt in SCHEMA.split(";"):
        if stmt.strip():
            conn.execute(stmt)


def iso(t: float | None) -> str | None:
    if t is None:
        return None
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def alert_id(subject: str, kind: str, key: str) -> str:
    return "AL-" + hashlib.sha256(f"{subject}|{kind}|{key}".encode()).hexdigest()[:12]


def _row(conn: sqlite3.Connection, where: str, args: tuple) -> dict | None:
    r = conn.execute(f"SELECT {', '.join(COLS)} FROM alerts WHERE {where}", args).fetchone()
    return dict(zip(COLS, r)) if r else None


def get(conn: sqlite3.Connection, aid: str) -> dict | None:
    ensure_schema(conn)
    return _row(conn, "id = ?", (aid,))


def to_json(row: dict, event: str) -> dict:
    """The published form of an alert (topic segel/alerts/<kind>); schema in docs/alerts.md."""
    return {
        "schema": "segel.alert/1", "event": event, "id": row["id"], "kind": row["kind"],
        "severity": row["severity"], "state": row["state"], "box": row["box"], "device": row["device"],
        "place": row["place"], "district": row["district"],
        "device_time": iso(row["device_time"]), "device_ts": row["device_time"],
        "last_device_time": iso(row["last_device_time"]),
        "raised_at": iso(row["raised_at"]), "raised_ts": row["raised_at"], "late": bool(row["late"]),
        "occurrences": row["occurrences"], "message": row["message"],
        "lat": row["lat"], "lon": row["lon"], "detail": json.loads(row["detail"] or "{}"),
        "acknowledged_by": row["acked_by"], "acknowledged_at": iso(row["acked_at"]), "ack_note": row["ack_note"],
        "resolved_by": row["resolved_by"], "resolved_at": iso(row["resolved_at"]), "resolve_note": row["resolve_note"],
        "notify_count": row["notify_count"],
    }


def _history(conn: sqlite3.Connection, aid: str, at: float, event: str, by: str | None = None, note: str | None = None) -> None:
    conn.execute("INSERT INTO alert_history(alert_id, at, event, by, note) VALUES (?,?,?,?,?)", (aid, at, event, by, note))


def raise_alert(conn: sqlite3.Connection, *, kind: str, subject: str, key: str, now: float, device_time: float | None,
                box: str | None = None, device: str | None = None, place: str | None = None,
                district: str | None = None, late: bool = False, message: str = "", detail: dict | None = None,
                lat: float | None = None, lon: float | None = None) -> tuple[dict, str]:
    """Open an alert, or count one more occurrence on the open one. Returns (row, event)."""
    sev = KINDS[kind].severity
    if sev != INFO:
        cur = _row(conn, "subject = ? AND kind = ? AND state IN ('open', 'acknowledged')", (subject, kind))
        if cur is not None:
            last = max(cur["last_device_time"] or 0, device_time or 0) or None
            conn.execute("UPDATE alerts SET occurrences = occurrences + 1, last_device_time = ?, late = MAX(late, ?) "
                         "WHERE id = ?", (last, int(late), cur["id"]))
            if device_time is not None and cur["device_time"] is not None and device_time < cur["device_time"]:
                # The alert shows its earliest occurrence, whatever order they were learned in.
                conn.execute("UPDATE alerts SET device_time = ?, place = ?, lat = ?, lon = ?, detail = ? WHERE id = ?",
                             (device_time, place, lat, lon, json.dumps(detail or {}, sort_keys=True), cur["id"]))
            _history(conn, cur["id"], now, "repeated", None, key)
            return _row(conn, "id = ?", (cur["id"],)), "repeated"  # type: ignore[return-value]
    aid = alert_id(subject, kind, key)
    state = RESOLVED if sev == INFO else OPEN
    vals = dict(id=aid, kind=kind, severity=sev, subject=subject, box=box, device=device, place=place,
                district=district, state=state, device_time=device_time, last_device_time=device_time, raised_at=now,
                late=int(late), occurrences=1, message=message or KINDS[kind].doc,
                detail=json.dumps(detail or {}, sort_keys=True), lat=lat, lon=lon,
                resolved_by="system" if sev == INFO else None, resolved_at=now if sev == INFO else None,
                resolve_note="informational" if sev == INFO else None, notified_at=now, notify_count=1)
    conn.execute("DELETE FROM alerts WHERE id = ?", (aid,))  # re-derived after a withdrawal
    conn.execute(f"INSERT INTO alerts({', '.join(vals)}) VALUES ({', '.join('?' * len(vals))})", tuple(vals.values()))
    _history(conn, aid, now, "raised", None, key)
    return _row(conn, "id = ?", (aid,)), "raised"  # type: ignore[return-value]


def withdraw(conn: sqlite3.Connection, aid: str, now: float, note: str) -> tuple[dict, str] | None:
    """One occurrence is disproved by late data; the alert is withdrawn when none is left."""
    row = _row(conn, "id = ?", (aid,))
    if row is None:
        return None
    if row["occurrences"] > 1:
        conn.execute("UPDATE alerts SET occurrences = occurrences - 1 WHERE id = ?", (aid,))
        _history(conn, aid, now, "occurrence_withdrawn", "system", note)
        return _row(conn, "id = ?", (aid,)), "updated"  # type: ignore[return-value]
    conn.execute("UPDATE alerts SET state = ?, resolved_at = ?, resolved_by = 'system', resolve_note = ? WHERE id = ?",
                 (WITHDRAWN, now, note, aid))
    _history(conn, aid, now, "withdrawn", "system", note)
    return _row(conn, "id = ?", (aid,)), "withdrawn"  # type: ignore[return-value]


def acknowledge(conn: sqlite3.Connection, aid: str, by: str, note: str | None, now: float) -> dict:
    row = get(conn, aid)
    if row is None:
        raise AlertError(f"no alert {aid!r} (see `segel alerts list`)")
    if row["state"] != OPEN:
        raise AlertError(f"alert {aid} is {row['state']}; only an open alert can be acknowledged")
    if not by.strip():
        raise AlertError("say who acknowledges (--by NAME)")
    conn.execute("UPDATE alerts SET state = ?, acked_by = ?, acked_at = ?, ack_note = ? WHERE id = ?",
                 (ACKNOWLEDGED, by, now, note, aid))
    _history(conn, aid, now, "acknowledged", by, note)
    return to_json(get(conn, aid), "acknowledged")  # type: ignore[arg-type]


def resolve(conn: sqlite3.Connection, aid: str, by: str, note: str | None, now: float) -> dict:
    row = get(conn, aid)
    if row is None:
        raise AlertError(f"no alert {aid!r} (see `segel alerts list`)")
    if row["state"] not in (OPEN, ACKNOWLEDGED):
        raise AlertError(f"alert {aid} is already {row['state']}")
    if not by.strip():
        raise AlertError("say who resolves (--by NAME)")
    conn.execute("UPDATE alerts SET state = ?, resolved_by = ?, resolved_at = ?, resolve_note = ? WHERE id = ?",
                 (RESOLVED, by, now, note, aid))
    _history(conn, aid, now, "resolved", by, note)
    return to_json(_row(conn, "id = ?", (aid,)), "resolved")  # type: ignore[arg-type]


def open_alert(conn: sqlite3.Connection, subject: str, kind: str) -> dict | None:
    return _row(conn, "subject = ? AND kind = ? AND state IN ('open', 'acknowledged')", (subject, kind))


def listing(conn: sqlite3.Connection, state: str | None = None, kind: str | None = None, box: str | None = None,
            severity: str | None = None, limit: int = 100) -> list[dict]:
    ensure_schema(conn)
    where, args = ["1=1"], []
    for col, v in (("state", state), ("kind", kind), ("box", box), ("severity", severity)):
        if v:
            where.append(f"{col} = ?")
            args.append(v)
    rows = conn.execute(f"SELECT {', '.join(COLS)} FROM alerts WHERE {' AND '.join(where)} "
                        "ORDER BY raised_at DESC, id LIMIT ?", (*args, limit)).fetchall()
    return [dict(zip(COLS, r)) for r in rows]


def history(conn: sqlite3.Connection, aid: str) -> list[tuple[float, str, str | None, str | None]]:
    return conn.execute("SELECT at, event, by, note FROM alert_history WHERE alert_id = ? ORDER BY rowid", (aid,)).fetchall()
