"""The operator's actions on alerts (acknowledge, resolve): one function per action, one transaction each.

The CLI (`segel alerts ack|resolve`) and the console call these, never `segel.custody.alerts`
directly: an action changes the alert, records its history and queues its InfluxDB line together,
all or nothing. Raises `AlertError` with a message for the operator.
"""

from __future__ import annotations

import sqlite3
import time

from segel.custody import alerts as al
from segel.influx import lines, outbox
from segel.registry import transaction

AlertError = al.AlertError


def _act(conn: sqlite3.Connection, change: str, alert_id: str, by: str, note: str | None, now: float | None) -> dict:
    at = time.time() if now is None else now
    with transaction(conn):
        published = al.acknowledge(conn, alert_id, by, note, at) if change == "acknowledge" else \
            al.resolve(conn, alert_id, by, note, at)
        outbox.enqueue(conn, [lines.alert(al.get(conn, alert_id), at)])  # type: ignore[arg-type]
    return published


def acknowledge(conn: sqlite3.Connection, alert_id: str, by: str, note: str | None = None,
                now: float | None = None) -> dict:
    """Acknowledge an open alert: who, when, what is being done. Returns the published JSON."""
    return _act(conn, "acknowledge", alert_id, by, note, now)


def resolve(conn: sqlite3.Connection, alert_id: str, by: str, note: str | None = None,
            now: float | None = None) -> dict:
    """Resolve an open or acknowledged alert: who, when, how. Returns the published JSON."""
    return _act(conn, "resolve", alert_id, by, note, now)
