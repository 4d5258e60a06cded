"""The gateway's own durable state in SQLite (WAL), next to the registry tables.

- `seen`: one row per accepted (device, counter) inside the replay window, with a hash of the
  frame bytes (to tell a re-sent frame from a replay) and the best receive metadata so far.
- `device_state`: per device the highest counter seen, the downlink counter, the last position,
  the last seal state and when it was last heard.
- `security_log`: every rejected frame with its raw bytes and reason.
- `outbox` / `outbox_parked`: InfluxDB lines waiting to be written (see `segel.outbox`).
- `stats`: lifetime counters (accepted, duplicates, rejected:<reason>) for `segel status`.

All writes happen inside the caller's transaction; nothing here commits on its own.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from segel import registry

SCHEMA = """
CREATE TABLE IF NOT EXISTS seen (
    device_id   INTEGER NOT NULL,
    counter     INTEGER NOT NULL,
    digest      BLOB NOT NULL,
    received_at REAL NOT NULL,
    rssi        REAL,
    snr         REAL,
    base_id     TEXT,
    bridge_id   TEXT,
    receptions  INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (device_id, counter)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS device_state (
    device_id     INTEGER PRIMARY KEY,
    key_epoch     INTEGER NOT NULL DEFAULT 0,
    max_counter   INTEGER NOT NULL DEFAULT -1,
    down_counter  INTEGER NOT NULL DEFAULT 0,
    last_seen_at  REAL,
    last_fix_time REAL,
    last_lat      REAL,
    last_lon      REAL,
    last_seal_event TEXT,
    last_seal_time  REAL,
    last_flags    INTEGER,
    last_battery_mv INTEGER,
    last_route    TEXT
);
CREATE TABLE IF NOT EXISTS security_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          REAL NOT NULL,
    topic       TEXT NOT NULL,
    reason      TEXT NOT NULL,
    detail      TEXT NOT NULL,
    device_id   INTEGER,
    frame       BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS security_log_reason ON security_log(reason, at);
CREATE TABLE IF NOT EXISTS outbox (
    id    INTEGER PRIMARY KEY AUTOINCREMENT,
    line  TEXT NOT NULL,
    at    REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox_parked (
    id      INTEGER PRIMARY KEY,
    line    TEXT NOT NULL,
    reason  TEXT NOT NULL,
    at      REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS stats (
    name   TEXT PRIMARY KEY,
    value  INTEGER NOT NULL
) WITHOUT ROWID;
"""


def connect(path: str | Path) -> sqlite3.Connection:
    """Open the gateway database (registry and gateway tables), autocommit mode, WAL."""
    conn = registry.connect(path)
    conn.executescript(SCHEMA)
    return conn


def init(conn: sqlite3.Connection) -> None:
    conn.executescript(registry.SCHEMA + SCHEMA)


@dataclass
class DeviceState:
    device_id: int
    key_epoch: int = 0
    max_counter: int = -1
    down_counter: int = 0
    last_seen_at: float | None = None
    last_fix_time: float | None = None
    last_lat: float | None = None
    last_lon: float | None = None
    last_seal_event: str | None = None
    last_seal_time: float | None = None
    last_flags: int | None = None
    last_battery_mv: int | None = None
    last_route: str | None = None  # "tracker" or "bridge:<id>": where a downlink reaches it


_STATE_COLS = (
    "device_id, key_epoch, max_counter, down_counter, last_seen_at, last_fix_time, last_lat, last_lon, "
    "last_seal_event, last_seal_time, last_flags, last_battery_mv, last_route"
)


def load_state(conn: sqlite3.Connection, device_id: int) -> DeviceState:
    row = conn.execute(f"SELECT {_STATE_COLS} FROM device_state WHERE device_id=?", (device_id,)).fetchone()
    return DeviceState(*row) if row else DeviceState(device_id)


def save_state(conn: sqlite3.Connection, s: DeviceState) -> None:
    conn.execute(
        f"INSERT OR REPLACE INTO device_state({_STATE_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (s.device_id, s.key_epoch, s.max_counter, s.down_counter, s.last_seen_at, s.last_fix_time, s.last_lat, s.last_lon,
         s.last_seal_event, s.last_seal_time, s.last_flags, s.last_battery_mv, s.last_route),
    )


def save_states(conn: sqlite3.Connection, states: list[DeviceState]) -> None:
    conn.executemany(
        f"INSERT OR REPLACE INTO device_state({_STATE_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        [(s.device_id, s.key_epoch, s.max_counter, s.down_counter, s.last_seen_at, s.last_fix_time, s.last_lat,
          s.last_lon, s.last_seal_event, s.last_seal_time, s.last_flags, s.last_battery_mv, s.last_route)
         for s in states])


def all_states(conn: sqlite3.Connection) -> list[DeviceState]:
    return [DeviceState(*r) for r in conn.execute(f"SELECT {_STATE_COLS} FROM device_state ORDER BY device_id")]


def bump(conn: sqlite3.Connection, counts: dict[str, int]) -> None:
    """Add to lifetime counters (inside the caller's transaction)."""
    conn.executemany(
        "INSERT INTO stats(name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
        [(k, v) for k, v in counts.items() if v],
    )


def stats(conn: sqlite3.Connection) -> dict[str, int]:
    return {k: int(v) for k, v in conn.execute("SELECT name, value FROM stats ORDER BY name")}


def log_security(conn: sqlite3.Connection, at: float, topic: str, reason: str, detail: str,
                 device_id: int | None, frame: bytes) -> int:
    cur = conn.execute(
        "INSERT INTO security_log(at, topic, reason, detail, device_id, frame) VALUES (?,?,?,?,?,?)",
        (at, topic, reason, detail, device_id, frame),
    )
    return int(cur.lastrowid or 0)


def prune_security_log(conn: sqlite3.Connection, keep: int) -> int:
    """Keep the newest `keep` security events (a flood of garbage must not fill the disk)."""
    row = conn.execute("SELECT MAX(id) FROM security_log").fetchone()
    if not row or row[0] is None:
        return 0
    return conn.execute("DELETE FROM security_log WHERE id <= ?", (row[0] - keep,)).rowcount


def security_events(conn: sqlite3.Connection, limit: int = 50) -> list[tuple]:
    return conn.execute(
        "SELECT id, at, topic, reason, detail, device_id, hex(frame) FROM security_log ORDER BY id DESC LIMIT ?",
        (limit,),
    ).fetchall()
