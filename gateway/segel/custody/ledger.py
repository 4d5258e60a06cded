"""The custody ledger: a hash chain per box of everything the gateway learned about it.

Each entry holds the previous entry's hash; its own hash is SHA-256 over the previous hash and the
entry's canonical JSON. Editing, deleting or reordering any entry breaks every hash after it, so
`verify()` (and anybody with the exported entries, see `export()`) can tell. Entries are appended in
the order the gateway learned things (receive order) and carry the device time they are about.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass

GENESIS = "0" * 64

SCHEMA = """
CREATE TABLE IF NOT EXISTS custody_ledger (
    box TEXT NOT NULL, seq INTEGER NOT NULL, at REAL NOT NULL, device_time REAL,
    event TEXT NOT NULL, body TEXT NOT NULL, prev TEXT NOT NULL, hash TEXT NOT NULL,
    PRIMARY KEY (box, seq)
) WITHOUT ROWID
"""


def ensure_schema(conn: sqlite3.Connection) -> None:
    conn.execute(SCHEMA)


def entry_hash(prev: str, box: str, seq: int, at: float, device_time: float | None, event: str, body: str) -> str:
    canon = json.dumps([box, int(seq), round(float(at), 6), None if device_time is None else round(float(device_time), 6), event, body],
                       separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256((prev + canon).encode()).hexdigest()


def append(conn: sqlite3.Connection, box: str, at: float, device_time: float | None, event: str, body: dict) -> str:
    row = conn.execute("SELECT seq, hash FROM custody_ledger WHERE box = ? ORDER BY seq DESC LIMIT 1", (box,)).fetchone()
    seq, prev = (row[0] + 1, row[1]) if row else (0, GENESIS)
    b = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    h = entry_hash(prev, box, seq, at, device_time, event, b)
    conn.execute("INSERT INTO custody_ledger(box, seq, at, device_time, event, body, prev, hash) VALUES (?,?,?,?,?,?,?,?)",
                 (box, seq, at, device_time, event, b, prev, h))
    return h


@dataclass(frozen=True)
class Verdict:
    box: str
    entries: int
    ok: bool
    first_bad: int | None = None
    reason: str = ""
    head: str = GENESIS


def verify(conn: sqlite3.Connection, box: str) -> Verdict:
    ensure_schema(conn)
    prev = GENESIS
    n = 0
    for seq, at, dtime, event, body, p, h in conn.execute(
            "SELECT seq, at, device_time, event, body, prev, hash FROM custody_ledger WHERE box = ? ORDER BY seq", (box,)):
        if seq != n:
            return Verdict(box, n, False, n, f"entry {n} is missing (next is {seq})", prev)
        if p != prev:
            return Verdict(box, n, False, seq, f"entry {seq} does not link to entry {seq - 1}", prev)
        if entry_hash(prev, box, seq, at, dtime, event, body) != h:
            return Verdict(box, n, False, seq, f"entry {seq} was altered (hash mismatch)", prev)
        prev = h
        n += 1
    return Verdict(box, n, True, None, "", prev)


def export(conn: sqlite3.Connection, box: str) -> list[dict]:
    ensure_schema(conn)
    return [dict(zip(("box", "seq", "at", "device_time", "event", "body", "prev", "hash"), r)) for r in conn.execute(
        "SELECT box, seq, at, device_time, event, body, prev, hash FROM custody_ledger WHERE box = ? ORDER BY seq", (box,))]
