"""Device commands: configuration a crew asks for, sent to the tracker with its next ack.

A command (`queue()`) becomes one config downlink (protocol type 9: interval, fix timeout,
flags for re-arm and storage/tracking mode, SF), signed with the device key and numbered with the
device's downlink counter, which the tracker accepts only above the last one it took: a forged
or replayed command is refused by the tracker itself. The pipeline puts the pending command in
front of the ack for the tracker's next uplink (`for_downlink()`), and again (at most once a
minute, so never twice in one wake) until the tracker confirms it with an applied frame
(`applied()`), which names the highest downlink counter it took and the settings now in force. A newer command for the same device replaces a pending one
(its settings merged over the older ones, a re-arm kept).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass

from segel import protocol
from segel.protocol import ConfigFlag

SCHEMA = """
CREATE TABLE IF NOT EXISTS device_commands (
    id INTEGER PRIMARY KEY, device_id INTEGER NOT NULL, box_id TEXT, created_at REAL NOT NULL,
    requested_by TEXT NOT NULL, interval_s INTEGER, fix_timeout_s INTEGER, sf INTEGER, mode TEXT,
    rearm INTEGER NOT NULL DEFAULT 0, state TEXT NOT NULL, down_counter INTEGER, sent_at REAL,
    sends INTEGER NOT NULL DEFAULT 0, applied_at REAL, applied TEXT
);
CREATE INDEX IF NOT EXISTS device_commands_open ON device_commands(device_id, state);
"""

PENDING, SENT, APPLIED, SUPERSEDED = "pending", "sent", "applied", "superseded"
MODES = protocol.MODES  # ("tracking", "storage")
SF_RANGE = (7, 10)  # SF11/12 break the 400 ms dwell limit with 24-byte frames (docs/protocol.md)
RESEND_S = 60  # not again within one wake (a wake lasts seconds): a re-arm must not run twice


class CommandError(ValueError):
    """A command the tracker would refuse: says which setting and why."""


@dataclass(frozen=True)
class Command:
    id: int
    device_id: int
    box_id: str | None
    created_at: float
    requested_by: str
    interval_s: int | None
    fix_timeout_s: int | None
    sf: int | None
    mode: str | None
    rearm: bool
    state: str
    down_counter: int | None
    sent_at: float | None
    sends: int
    applied_at: float | None
    applied: dict | None

    def describe(self) -> str:
        parts = []
        if self.interval_s:
            parts.append(f"interval {self.interval_s} s")
        if self.fix_timeout_s:
            parts.append(f"fix timeout {self.fix_timeout_s} s")
        if self.sf:
            parts.append(f"SF{self.sf}")
        if self.mode:
            parts.append(f"mode {self.mode}")
        if self.rearm:
            parts.append("re-arm the seal")
        return ", ".join(parts) or "nothing"


_COLS = ("id, device_id, box_id, created_at, requested_by, interval_s, fix_timeout_s, sf, mode, rearm, state, "
         "down_counter, sent_at, sends, applied_at, applied")


def _row(r: tuple) -> Command:
    return Command(*r[:9], bool(r[9]), *r[10:15], json.loads(r[15]) if r[15] else None)


def ensure_schema(conn: sqlite3.Connection) -> None:
    for stmt in SCHEMA.split(";"):
        if stmt.strip():
            conn.execute(stmt)


def check(interval_s: int | None, fix_timeout_s: int | None, sf: int | None, mode: str | None) -> None:
    """Refuse what the tracker would refuse (segelfw/cycle.py apply_config), before it is sent."""
    if interval_s is not None and not 30 <= interval_s <= 86400:
        raise CommandError(f"interval {interval_s} s: the tracker takes 30 to 86400 s")
    if fix_timeout_s is not None and not 5 <= fix_timeout_s <= 600:
        raise CommandError(f"fix timeout {fix_timeout_s} s: the tracker takes 5 to 600 s")
    if interval_s is not None and fix_timeout_s is not None and fix_timeout_s >= interval_s:
        raise CommandError(f"fix timeout {fix_timeout_s} s must be shorter than the interval ({interval_s} s)")
    if sf is not None and not SF_RANGE[0] <= sf <= SF_RANGE[1]:
        raise CommandError(f"SF{sf}: 24-byte frames fit the 400 ms dwell limit only at SF7 to SF10")
    if mode is not None and mode not in MODES:
        raise CommandError(f"mode {mode!r}: one of {', '.join(MODES)}")


def queue(conn: sqlite3.Connection, device_id: int, box_id: str | None, requested_by: str, now: float, *,
          interval_s: int | None = None, fix_timeout_s: int | None = None, sf: int | None = None,
          mode: str | None = None, rearm: bool = False) -> Command:
    """Queue a command (merged over a pending one). The caller commits."""
    if not requested_by.strip():
        raise CommandError("say who asks for it (the ledger records it)")
    if interval_s is None and fix_timeout_s is None and sf is None and mode is None and not rearm:
        raise CommandError("nothing to change: give --interval, --fix-timeout, --sf, --mode or --rearm")
    ensure_schema(conn)
    old = open_command(conn, device_id)
    if old is not None:
        interval_s = interval_s if interval_s is not None else old.interval_s
        fix_timeout_s = fix_timeout_s if fix_timeout_s is not None else old.fix_timeout_s
        sf = sf if sf is not None else old.sf
        mode = mode if mode is not None else old.mode
        rearm = rearm or old.rearm
    check(interval_s, fix_timeout_s, sf, mode)
    if old is not None:
        conn.execute("UPDATE device_commands SET state = ? WHERE id = ?", (SUPERSEDED, old.id))
    cur = conn.execute(
        "INSERT INTO device_commands(device_id, box_id, created_at, requested_by, interval_s, fix_timeout_s, sf, mode, rearm, state) "
        "VALUES (?,?,?,?,?,?,?,?,?,?)",
        (device_id, box_id, now, requested_by, interval_s, fix_timeout_s, sf, mode, int(rearm), PENDING))
    return get(conn, int(cur.lastrowid or 0))


def get(conn: sqlite3.Connection, command_id: int) -> Command:
    r = conn.execute(f"SELECT {_COLS} FROM device_commands WHERE id = ?", (command_id,)).fetchone()
    if r is None:
        raise CommandError(f"no command {command_id}")
    return _row(r)


def open_command(conn: sqlite3.Connection, device_id: int) -> Command | None:
    """The command waiting to be applied (pending or sent), if any."""
    ensure_schema(conn)
    r = conn.execute(f"SELECT {_COLS} FROM device_commands WHERE device_id = ? AND state IN (?, ?) ORDER BY id DESC LIMIT 1",
                     (device_id, PENDING, SENT)).fetchone()
    return _row(r) if r else None


def listing(conn: sqlite3.Connection, device_id: int | None = None, limit: int = 50) -> list[Command]:
    ensure_schema(conn)
    where, args = ("WHERE device_id = ?", (device_id,)) if device_id is not None else ("", ())
    return [_row(r) for r in conn.execute(f"SELECT {_COLS} FROM device_commands {where} ORDER BY id DESC LIMIT ?",
                                          (*args, limit))]


def waiting(conn: sqlite3.Connection) -> set[int]:
    """Devices with a command not yet applied (one query per ingest batch)."""
    return {r[0] for r in conn.execute("SELECT device_id FROM device_commands WHERE state IN (?, ?)", (PENDING, SENT))}


def config_body(c: Command) -> protocol.Config:
    flags = (ConfigFlag.REARM if c.rearm else 0) | (
        ConfigFlag.STORAGE if c.mode == "storage" else ConfigFlag.TRACKING if c.mode == "tracking" else 0)
    return protocol.Config(c.interval_s or 0, c.fix_timeout_s or 0, int(flags), c.sf or 0)


def for_downlink(conn: sqlite3.Connection, device_id: int, down_counter: int, now: float) -> protocol.Config | None:
    """The open command's config body for a downlink numbered `down_counter` (recorded), or None."""
    c = open_command(conn, device_id)
    if c is None or (c.sent_at is not None and now - c.sent_at < RESEND_S):
        return None
    conn.execute("UPDATE device_commands SET state = ?, down_counter = ?, sent_at = ?, sends = sends + 1 WHERE id = ?",
                 (SENT, down_counter, now, c.id))
    return config_body(c)


def applied(conn: sqlite3.Connection, device_id: int, body: protocol.Applied, now: float) -> Command | None:
    """An applied frame from the tracker: the open command it confirms (its last downlink counter
    at or below the frame's), marked applied with what the tracker reported; -> that command."""
    c = open_command(conn, device_id)
    if c is None or c.state != SENT or c.down_counter is None or body.down_counter < c.down_counter:
        return None
    res = body.result
    rep = {"down_counter": body.down_counter, "interval_s": body.report_interval_s, "fix_timeout_s": body.fix_timeout_s,
           "mode": MODES[body.mode] if body.mode < len(MODES) else str(body.mode), "sf": body.sf,
           "rearmed": bool(res & protocol.AppliedResult.REARMED),
           "refused": [name.lower() for name, bit in (("REARM", protocol.AppliedResult.REARM_REFUSED),
                                                       ("SF", protocol.AppliedResult.SF_REFUSED),
                                                       ("INTERVAL", protocol.AppliedResult.INTERVAL_REFUSED),
                                                       ("FIX_TIMEOUT", protocol.AppliedResult.FIX_TIMEOUT_REFUSED))
                       if res & bit]}
    conn.execute("UPDATE device_commands SET state = ?, applied_at = ?, applied = ? WHERE id = ?",
                 (APPLIED, now, json.dumps(rep, sort_keys=True), c.id))
    return get(conn, c.id)
