"""The custody ledger: a hash chain per box of everything the gateway learned about it.

Each entry holds the previous entry's hash; its own hash is SHA-256 over a plain text made of
the previous hash and the entry's fields (`entry_text`, specified in docs/custody.md so another
program can recompute it). Editing, deleting or reordering an entry breaks every hash after it;
signed checkpoints (`segel.custody.checkpoints`) publish the heads, so even a chain recomputed
from scratch no longer matches what oversight holds. Entries are appended in the order the
gateway learned things (receive order) and carry the device time they are about.

Writers call `append(conn, box, at, device_time, event, body)` inside their own transaction; the
events and their body fields are listed in `EVENTS` (and docs/custody.md, "Ledger entries").
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass

from segel.registry import transaction

GENESIS = "0" * 64

SCHEMA = """
CREATE TABLE IF NOT EXISTS custody_ledger (
    box TEXT NOT NULL, seq INTEGER NOT NULL, at_ms INTEGER NOT NULL, device_ms INTEGER,
    event TEXT NOT NULL, body TEXT NOT NULL, prev TEXT NOT NULL, hash TEXT NOT NULL,
    PRIMARY KEY (box, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ledger_sources (
    name TEXT PRIMARY KEY, last_id INTEGER NOT NULL
) WITHOUT ROWID
"""

# The events a box's chain holds: name -> (who writes it, the body's fields). A finding of the
# rules is written under its kind (enter, exit, seal_event, or an alert kind such as
# seal_unauthorised); FINDING_FIELDS are its body. Keep this list and docs/custody.md in step.
FINDING_FIELDS = "place, key, late, alert (its alert id, for alert kinds), the finding's detail (event, seq, why, ...)"
EVENTS: dict[str, tuple[str, str]] = {
    "frame": ("custody judge", "device, c (counter), t (device time), rx (received), k (pos|seal|status), "
                               "lat, lon, fix, hdop, ev, seq, batt, flags"),
    "withdrawn": ("custody judge", "key (the finding's), note, alert (its id, if it had one)"),
    "security": ("custody judge", "reason (bad_mac|replay), detail, alert"),
    # a change of an alert's life, named by the change; the operator's actions add `via` (cli, console)
    "raised": ("judge timers, receipts", "alert, kind, by, note"),
    "repeated": ("judge timers, receipts", "alert, kind, by, note"),
    "acknowledged": ("operator actions", "alert, kind, by, note, via"),
    "resolved": ("operator actions, the system", "alert, kind, by, note[, via]"),
    "paired": ("registry (record_pairings)", "device, tps, by, forced, pairing (its id in `pairings`)"),
    "unpaired": ("registry (record_pairings)", "device, by, reason (moved to <box>|replaced by <device>|unpaired), "
                                               "pairing"),
    "receipt": ("handover receipts", "receipt, client_id, place, officer {name, role, id_number, user}, witness "
                                     "{name, role, id_number}, seals, condition, note, lat, lon, accuracy_m, "
                                     "confirmed_at, clock_offset_s, photo_sha256, arrival {place, t, key} or null"),
    "receipt_arrival": ("handover receipts", "receipt, place, t, key (the tracker's arrival, learned after the receipt)"),
    "device_command": ("segel device set (segel.service.devices)", "device, command (its id), requested_by, "
                                                                   "interval_s, fix_timeout_s, sf, mode, rearm"),
}


def ensure_schema(conn: sqlite3.Connection) -> None:
    cols = [r[1] for r in conn.execute("PRAGMA table_info(custody_ledger)")]
    if cols and "at_ms" not in cols:
        # a database from before the text format of docs/custody.md: keep its chain aside, unchanged
        conn.execute("ALTER TABLE custody_ledger RENAME TO custody_ledger_v1")
    for stmt in SCHEMA.split(";"):
        if stmt.strip():
            conn.execute(stmt)


def ms(t: float | None) -> int | None:
    """Times are hashed as integer milliseconds: no float formatting for a verifier to get wrong."""
    return None if t is None else int(round(float(t) * 1000))


def entry_text(prev: str, box: str, seq: int, at_ms: int, device_ms: int | None, event: str, body: str) -> str:
    """The text an entry's hash is taken over (UTF-8): seven lines, the body last and verbatim."""
    return f"{prev}\n{box}\n{seq}\n{at_ms}\n{'' if device_ms is None else device_ms}\n{event}\n{body}"


def entry_hash(prev: str, box: str, seq: int, at_ms: int, device_ms: int | None, event: str, body: str) -> str:
    return hashlib.sha256(entry_text(prev, box, seq, at_ms, device_ms, event, body).encode()).hexdigest()


def body_text(body: dict) -> str:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def append(conn: sqlite3.Connection, box: str, at: float, device_time: float | None, event: str, body: dict) -> str:
    """Append one entry to `box`'s chain (inside the caller's transaction); returns its hash.

    box: the box id, or `device:<id>` for a tracker on no box. at: when the gateway learned it
    (unix seconds); device_time: when it happened by the tracker's (or phone's) clock, if known.
    event: a name from EVENTS (or a finding's kind); body: a JSON-able dict (fields per EVENTS)."""
    if "\n" in box or "\n" in event:
        raise ValueError("a ledger box or event name cannot hold a line break")
    row = conn.execute("SELECT seq, hash FROM custody_ledger WHERE box = ? ORDER BY seq DESC LIMIT 1", (box,)).fetchone()
    seq, prev = (row[0] + 1, row[1]) if row else (0, GENESIS)
    b = body_text(body)
    at_ms, dev_ms = ms(at), ms(device_time)
    h = entry_hash(prev, box, seq, at_ms, dev_ms, event, b)  # type: ignore[arg-type]
    conn.execute("INSERT INTO custody_ledger(box, seq, at_ms, device_ms, event, body, prev, hash) VALUES (?,?,?,?,?,?,?,?)",
                 (box, seq, at_ms, dev_ms, event, b, prev, h))
    return h


def record_alert(conn: sqlite3.Connection, alert: dict, change: str, at: float, by: str | None = None,
                 note: str | None = None, **extra: object) -> str:
    """An entry named by the change of an alert's life (raised, repeated, acknowledged, resolved;
    `alert` = its row or its published JSON): who (`by`), their note, and `extra` (e.g. via)."""
    subject = alert.get("subject") or alert.get("box") or f"device:{alert.get('device')}"
    return append(conn, subject, at, None, change, {"alert": alert["id"], "kind": alert["kind"], "by": by,
                                                    "note": note, **extra})


def head(conn: sqlite3.Connection, box: str) -> tuple[int, str]:
    """(number of entries, head hash) of a box's chain."""
    row = conn.execute("SELECT seq, hash FROM custody_ledger WHERE box = ? ORDER BY seq DESC LIMIT 1", (box,)).fetchone()
    return (row[0] + 1, row[1]) if row else (0, GENESIS)


def export(conn: sqlite3.Connection, box: str) -> list[dict]:
    """The entries of a box's chain in order, as they go into a bundle (docs/custody.md)."""
    ensure_schema(conn)
    return [dict(zip(("seq", "at_ms", "device_ms", "event", "body", "prev", "hash"), r)) for r in conn.execute(
        "SELECT seq, at_ms, device_ms, event, body, prev, hash FROM custody_ledger WHERE box = ? ORDER BY seq", (box,))]


@dataclass(frozen=True)
class Verdict:
    box: str
    entries: int
    ok: bool
    first_bad: int | None = None
    reason: str = ""
    head: str = GENESIS


def verify(conn: sqlite3.Connection, box: str) -> Verdict:
    """Recompute a box's chain as stored; names the first entry altered, removed or reordered.
    (Against published checkpoints too: `segel.custody.bundle.verify`.)"""
    from segel.custody.bundle import check_chain

    entries = export(conn, box)
    problems, good_head = check_chain(box, entries)
    if problems:
        p = problems[0]
        return Verdict(box, p.position, False, p.seq, p.message, good_head)
    return Verdict(box, len(entries), True, None, "", entries[-1]["hash"] if entries else GENESIS)


# ---- pairing and unpairing ------------------------------------------------------------------------


def record_pairings(conn: sqlite3.Connection) -> int:
    """Append `paired`/`unpaired` entries for every row of the registry's `pairings` history not yet
    in the ledger (in pairing order; idempotent). Called right after pairing and by the gateway's
    checkpoint timer, so a pairing made by any tool reaches the ledger. Returns entries written."""
    ensure_schema(conn)
    if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'pairings'").fetchone() is None:
        return 0  # no registry in this database
    with transaction(conn):
        return _record_pairings(conn)


def _record_pairings(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT last_id FROM ledger_sources WHERE name = 'pairings'").fetchone()
    last = row[0] if row else 0
    rows = conn.execute("SELECT id, at, box_id, device_id, tps, previous_box, forced, by FROM pairings "
                        "WHERE id > ? ORDER BY id", (last,)).fetchall()
    if not rows:
        return 0
    from segel.ids import device_hex

    written = 0
    for pid, at, box, dev, tps, previous_box, forced, by in rows:
        when = at  # the registry's clock when the pairing was made
        if previous_box:
            append(conn, previous_box, when, None, "unpaired", {"device": device_hex(dev), "by": by,
                                                                "reason": f"moved to {box}", "pairing": pid})
            written += 1
        before = _device_before(conn, box, pid)
        if before is not None and before != dev:
            append(conn, box, when, None, "unpaired", {"device": device_hex(before), "by": by, "pairing": pid,
                                                       "reason": f"replaced by {device_hex(dev)}" if dev is not None
                                                       else "unpaired"})
            written += 1
        if dev is not None:
            append(conn, box, when, None, "paired", {"device": device_hex(dev), "tps": tps, "by": by,
                                                     "forced": bool(forced), "pairing": pid})
            written += 1
        last = pid
    conn.execute("INSERT INTO ledger_sources(name, last_id) VALUES ('pairings', ?) "
                 "ON CONFLICT(name) DO UPDATE SET last_id = excluded.last_id", (last,))
    return written


def _device_before(conn: sqlite3.Connection, box: str, pid: int) -> int | None:
    """The tracker on `box` just before pairing row `pid` (None if none, or moved away since)."""
    row = conn.execute("SELECT id, device_id FROM pairings WHERE box_id = ? AND id < ? ORDER BY id DESC LIMIT 1",
                       (box, pid)).fetchone()
    if row is None or row[1] is None:
        return None
    moved = conn.execute("SELECT 1 FROM pairings WHERE previous_box = ? AND device_id = ? AND id > ? AND id < ?",
                         (box, row[1], row[0], pid)).fetchone()
    return None if moved else int(row[1])
