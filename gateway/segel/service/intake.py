"""A batch's messages as the gateway reads them, and what happens to one that cannot be handled.

Reading never raises: a message holds an uplink or an `Unreadable` reason (segel.edge.payloads
reads strictly). A message whose handling raises for a reason of its own is parked (its first
KEEP_BYTES and the error kept in the security log as internal_error, counted); a transient error
of the machine (the database locked, the disk full) is retried instead (`is_transient`).
Docs: docs/gateway.md, "Fast path and failures inside a batch".
"""

from __future__ import annotations

import logging
import sqlite3
from typing import Protocol

from segel import store
from segel.edge import payloads
from segel.influx import lines, outbox
from segel.messages import INTERNAL_ERROR, Unreadable, Uplink
from segel.recording import recorder as recording

log = logging.getLogger("segel.service.gateway")

# What a parked or unreadable message keeps: its first bytes (a hostile 100 MB payload must not
# fill the disk) and its topic (MQTT allows 64 KiB).
KEEP_BYTES = 4096
KEEP_TOPIC = 1024


class Message(Protocol):
    topic: str
    payload: bytes
    received_at: float


def is_transient(e: BaseException) -> bool:
    """An error of the machine, not of a message: the database busy or locked, the disk full or
    failing, memory. A batch that fails with one is retried whole (nothing was acknowledged); any
    other error is treated as the batch's own, and the message that causes it is parked."""
    if isinstance(e, (OSError, MemoryError)):
        return True
    if isinstance(e, sqlite3.OperationalError):
        text = str(e).lower()
        return any(w in text for w in ("locked", "busy", "disk", "full", "i/o", "unable to open", "readonly"))
    return False


def read(m: Message) -> tuple[Uplink, Unreadable | None]:
    """The uplink a message holds, or why it holds none; never raises."""
    try:
        return payloads.to_uplink(m.topic, m.payload, m.received_at), None
    except payloads.PayloadError as e:
        problem = Unreadable(e.reason, e.detail)
    except Exception as e:  # noqa: BLE001 - a bug in reading must not stop the batch
        problem = Unreadable(INTERNAL_ERROR, f"reading the message raised {type(e).__name__}: {str(e)[:200]}")
    return unreadable(m, problem)


def unreadable(m: Message, problem: Unreadable) -> tuple[Uplink, Unreadable]:
    """The Uplink that keeps an unreadable message's first bytes, and its reason."""
    raw = bytes(m.payload)
    if len(raw) > KEEP_BYTES:
        problem = Unreadable(problem.reason, f"{problem.detail} (first {KEEP_BYTES} of {len(raw)} bytes kept)")
    return Uplink(m.received_at, m.topic[:KEEP_TOPIC], raw[:KEEP_BYTES]), problem


def bridge_status(m: Message, out: list[str]) -> Unreadable | None:
    """A bridge's (retained) status: base-station points appended to `out`, or why it was refused."""
    try:
        out += lines.base_stations(payloads.bridge_status(m.topic, m.payload), int(m.received_at * 1e9))
        return None
    except payloads.PayloadError as e:
        return Unreadable(e.reason, e.detail)


def recording_line(up: Uplink, problem: Unreadable | None) -> str | None:
    """The recording's line for a message; a message that cannot even be recorded is logged and
    left out of the recording (never of ingest)."""
    try:
        return recording.to_json(up, problem.detail if problem else None)
    except Exception:  # noqa: BLE001 - one odd message must not stop the recording of the others
        log.exception("could not record a message from %s", payloads.shown(up.topic))
        return None


def park(conn: sqlite3.Connection, m: Message, e: BaseException) -> tuple[int, str]:
    """Keep a message whose handling raised in the security log as internal_error, with its line
    and its count, in one transaction. -> (security-log row, detail)."""
    raw = bytes(m.payload)
    detail = f"{type(e).__name__}: {str(e)[:300]} (parked: handling this message raised)"
    if len(raw) > KEEP_BYTES:
        detail += f" (first {KEEP_BYTES} of {len(raw)} bytes kept)"
    topic = m.topic[:KEEP_TOPIC]
    conn.execute("BEGIN IMMEDIATE")
    row = store.log_security(conn, m.received_at, topic, INTERNAL_ERROR, detail, None, raw[:KEEP_BYTES])
    outbox.enqueue(conn, [lines.rejected(INTERNAL_ERROR, None, topic, m.received_at, row)])
    store.bump(conn, {f"rejected:{INTERNAL_ERROR}": 1})
    conn.execute("COMMIT")
    return row, detail
