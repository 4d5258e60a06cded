"""The operator's actions on alerts (acknowledge, resolve): one function per action, one transaction each.

The CLI (`segel alerts ack|resolve`) and the console call these, never `segel.custody.alerts`
directly. In one transaction, all or nothing, an action:
- changes the alert and records its history (who, when, note);
- appends an entry to the box's custody ledger with the person's identity;
- queues the alert's InfluxDB line (the outbox);
- queues the published change (`store.queue_publication`): the running gateway publishes it on
  `segel/alerts/<kind>` and to the webhooks, whichever process made the change, and also after a
  restart if it was down at the time.
With an `actor` (a console user) the action first checks that the account may act on alerts and
that the alert is inside its scope. Raises `AlertError` with a message for the operator.
"""

from __future__ import annotations

import sqlite3
import time

from segel import accounts, store
from segel.custody import alerts as al
from segel.custody import ledger
from segel.influx import lines, outbox
from segel.registry import transaction

AlertError = al.AlertError
MAX_NOTE = 2000  # characters: a note says what is being done, not a report


def _check(conn: sqlite3.Connection, alert_id: str, actor: accounts.User | None, note: str | None) -> None:
    if note is not None and len(note) > MAX_NOTE:
        raise AlertError(f"the note has {len(note):,} characters; at most {MAX_NOTE:,} are kept: shorten it")
    if actor is None:
        return
    if not actor.can(accounts.ACT_ALERTS):
        raise AlertError(f"{actor.username} is a {actor.role}: that role cannot acknowledge or resolve alerts")
    row = al.get(conn, alert_id)
    if row is not None and not actor.sees(row["district"], place_chain(conn, row["place"])):
        raise AlertError(f"alert {alert_id} is in district {row['district'] or '(none)'}, outside "
                         f"{actor.username}'s districts ({', '.join(actor.districts + actor.places) or '-'})")


def place_chain(conn: sqlite3.Connection, code: str | None) -> list[str]:
    """A place code and its ancestors (TPS, PPS, PPK, warehouse) from the places table."""
    out: list[str] = []
    while code and code not in out and len(out) < 8:
        out.append(code)
        r = conn.execute("SELECT parent FROM places WHERE code = ?", (code,)).fetchone() if _has_places(conn) else None
        code = r[0] if r else None
    return out


def _has_places(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'places'").fetchone() is not None


def _act(conn: sqlite3.Connection, change: str, alert_id: str, by: str, note: str | None, now: float | None,
         actor: accounts.User | None, via: str) -> dict:
    at = time.time() if now is None else now
    note = note.strip() if note else None
    ledger.ensure_schema(conn)
    with transaction(conn):
        _check(conn, alert_id, actor, note)
        published = al.acknowledge(conn, alert_id, by, note, at) if change == "acknowledge" else \
            al.resolve(conn, alert_id, by, note, at)
        row = al.get(conn, alert_id)
        assert row is not None
        outbox.enqueue(conn, [lines.alert(row, at)])
        ledger.append(conn, row["subject"], at, None, published["event"],
                      {"alert": alert_id, "kind": row["kind"], "by": by, "note": note, "via": via})
        store.queue_publication(conn, "alert", published, at)
    return published


def acknowledge(conn: sqlite3.Connection, alert_id: str, by: str, note: str | None = None,
                now: float | None = None, *, actor: accounts.User | None = None, via: str = "cli") -> dict:
    """Acknowledge an open alert: who, when, what is being done. Returns the published JSON."""
    return _act(conn, "acknowledge", alert_id, by, note, now, actor, via)


def resolve(conn: sqlite3.Connection, alert_id: str, by: str, note: str | None = None,
            now: float | None = None, *, actor: accounts.User | None = None, via: str = "cli") -> dict:
    """Resolve an open or acknowledged alert: who, when, how. Returns the published JSON."""
    return _act(conn, "resolve", alert_id, by, note, now, actor, via)
