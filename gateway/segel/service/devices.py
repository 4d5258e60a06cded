"""Device commands as the operator gives them: resolve a tracker or box, queue the command, record
who asked in the box's custody ledger (`segel device set`, and the console later)."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass

from segel.custody import ledger
from segel.ids import device_hex, parse_device
from segel.ingest import commands
from segel.registry import Registry


class DeviceError(ValueError):
    """An unknown tracker or box, or a command the tracker would refuse."""


@dataclass(frozen=True)
class Target:
    device_id: int
    box_id: str | None

    @property
    def subject(self) -> str:
        """The ledger the command goes into: the box's, or the unpaired tracker's."""
        return self.box_id or f"device:{device_hex(self.device_id)}"


def resolve(conn: sqlite3.Connection, target: str) -> Target:
    """A device id (`000101`, `SGL-000101`) or a box id -> the tracker and its box."""
    reg = Registry(conn)
    row = conn.execute("SELECT device_id FROM boxes WHERE box_id = ?", (target.strip(),)).fetchone()
    if row is not None:
        return Target(int(row[0]), target.strip())
    try:
        dev = parse_device(target)
    except ValueError:
        raise DeviceError(f"{target!r} is neither a box nor a device id (six hex digits, e.g. 000101)") from None
    if reg.get(dev) is None:
        raise DeviceError(f"device {device_hex(dev)} is not registered (segel fleet / segel provision)")
    box = reg.box_of(dev)
    return Target(dev, box[0] if box else None)


def set_device(conn: sqlite3.Connection, target: str, requested_by: str, *, interval_s: int | None = None,
               fix_timeout_s: int | None = None, sf: int | None = None, mode: str | None = None,
               rearm: bool = False, now: float | None = None) -> tuple[Target, commands.Command]:
    """Queue a configuration for a tracker (it goes out with the ack of its next uplink) and write
    who asked for what into the custody ledger, in one transaction."""
    t = resolve(conn, target)
    now = time.time() if now is None else now
    ledger.ensure_schema(conn)
    conn.execute("BEGIN IMMEDIATE")
    try:
        try:
            cmd = commands.queue(conn, t.device_id, t.box_id, requested_by, now, interval_s=interval_s,
                                 fix_timeout_s=fix_timeout_s, sf=sf, mode=mode, rearm=rearm)
        except commands.CommandError as e:
            raise DeviceError(str(e)) from None
        ledger.append(conn, t.subject, now, None, "device_command", {
            "device": device_hex(t.device_id), "command": cmd.id, "requested_by": requested_by,
            "interval_s": cmd.interval_s, "fix_timeout_s": cmd.fix_timeout_s, "sf": cmd.sf, "mode": cmd.mode,
            "rearm": cmd.rearm})
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return t, cmd


def device_commands(conn: sqlite3.Connection, target: str | None = None, limit: int = 50) -> list[commands.Command]:
    """Commands, newest first: every device's, or one tracker's / box's."""
    dev = resolve(conn, target).device_id if target else None
    return commands.listing(conn, dev, limit)
