"""The gateway's own durable state in SQLite (WAL), next to the registry tables.

- `seen`: one row per accepted (device, counter) inside the replay window, with a hash of the
  frame bytes (to tell a re-sent frame from a replay) and the best receive metadata so far.
- `device_state`: per device the highest counter seen, the downlink counter, the last position,
  the last seal state and when it was last heard.
- `security_log`: every rejected frame with its raw bytes and reason.
- `outbox` / `outbox_parked`: InfluxDB lines waiting to be written (see `segel.influx.outbox`).
- `stats`: lifetime counters (accepted, duplicates, rejected:<reason>) for `segel status`.
- `publications`: changes made outside the gateway's worker (an operator's ack or resolve, from
  the console or the CLI, in any process) waiting for the running gateway to publish them on
  MQTT and to the webhooks; written in the change's own transaction, so none is lost while the
  gateway or the broker is down.

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
CREATE TABLE IF NOT EXISTS publications (
    id    INTEGER PRIMARY KEY AUTOINCREMENT,
    kind  TEXT NOT NULL,
    body  TEXT NOT NULL,
    at    REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS stats (
    name   TEXT PRIMARY KEY,
    value  INTEGER NOT NULL
) WITHOUT ROWID;
"""


def connect(path: str | Path) -> sqlite3.Connection:
    """Open (and create) the gateway database: the one way to open it. Autocommit mode (callers
    use `transaction`), WAL, foreign keys on, the registry's and the gateway's tables created."""
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.executescript(registry.SCHEMA + SCHEMA)
    registry.migrate(conn)  # columns added since (an older database gets them here)
    return conn


def open_configured(config_path: str | Path | None, db: str | None = None, must_exist: bool = False) -> sqlite3.Connection:
    """The gateway database a config file names (`gateway.db`), or `db` when given (a path
    relative to the working folder). Raises ConfigError for a bad config, FileNotFoundError when
    `must_exist` and there is no database yet."""
    from segel import config as cfgmod

    cfg = cfgmod.load(Path(config_path) if config_path else None, overrides={"gateway.db": db})
    path = cfg.path(cfg.gateway.db)
    if must_exist and not path.exists():
        raise FileNotFoundError(f"no gateway database at {path}: pass --config or --db")
    return connect(path)


def init(conn: sqlite3.Connection) -> None:
    """Create the tables on a connection opened elsewhere."""
    conn.executescript(registry.SCHEMA + SCHEMA)
    registry.migrate(conn)


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


_SEEN_COLS = "digest, received_at, rssi, snr, base_id, bridge_id, receptions"


def seen_rows(conn: sqlite3.Connection, keys: list[tuple[int, int]]) -> dict[tuple[int, int], list]:
    """The `seen` rows of (device, counter) keys: key -> [digest, received_at, rssi, snr, base_id,
    bridge_id, receptions], read in chunks of 400 keys."""
    out: dict[tuple[int, int], list] = {}
    for i in range(0, len(keys), 400):
        chunk = keys[i:i + 400]
        sql = (f"SELECT device_id, counter, {_SEEN_COLS} FROM seen "
               "WHERE (device_id, counter) IN (VALUES " + ",".join(["(?,?)"] * len(chunk)) + ")")
        for r in conn.execute(sql, [v for k in chunk for v in k]):
            out[(r[0], r[1])] = list(r[2:])
    return out


def write_seen(conn: sqlite3.Connection, rows: list[tuple]) -> None:
    """Insert or update `seen` rows (device, counter, *the seen_rows columns)."""
    conn.executemany(
        f"INSERT INTO seen(device_id, counter, {_SEEN_COLS}) VALUES (?,?,?,?,?,?,?,?,?) "
        "ON CONFLICT(device_id, counter) DO UPDATE SET rssi=excluded.rssi, snr=excluded.snr, "
        "base_id=excluded.base_id, bridge_id=excluded.bridge_id, receptions=excluded.receptions", rows)


def forget_seen(conn: sqlite3.Connection, device_id: int, up_to_counter: int | None = None) -> None:
    """Drop a device's `seen` rows up to a counter (those behind its replay window), or all of
    them (a re-keyed tracker's counters start again)."""
    if up_to_counter is None:
        conn.execute("DELETE FROM seen WHERE device_id=?", (device_id,))
    else:
        conn.execute("DELETE FROM seen WHERE device_id=? AND counter<=?", (device_id, up_to_counter))


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


def queue_publication(conn: sqlite3.Connection, kind: str, body: dict, at: float) -> None:
    """Queue a change for the gateway to publish (inside the caller's transaction). kind "alert":
    `body` is the alert's published JSON (docs/alerts.md)."""
    import json

    conn.execute("INSERT INTO publications(kind, body, at) VALUES (?, ?, ?)",
                 (kind, json.dumps(body, separators=(",", ":"), default=str), at))


def pending_publications(conn: sqlite3.Connection, limit: int = 500) -> list[tuple[int, str, dict]]:
    """The oldest queued publications: (id, kind, body)."""
    import json

    return [(i, k, json.loads(b)) for i, k, b in conn.execute(
        "SELECT id, kind, body FROM publications ORDER BY id LIMIT ?", (limit,))]


def forget_publications(conn: sqlite3.Connection, up_to_id: int) -> None:
    conn.execute("DELETE FROM publications WHERE id <= ?", (up_to_id,))
