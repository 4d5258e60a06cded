"""`segel device set|commands`: change a tracker's settings over the air, see what is pending and applied."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import click

from segel.commands._common import db_options, open_db

WITA = dt.timezone(dt.timedelta(hours=8), "WITA")  # Kutai Timur's time (Asia/Makassar, no daylight saving)


def _when(t: float | None) -> str:
    return dt.datetime.fromtimestamp(t, WITA).strftime("%Y-%m-%d %H:%M WITA") if t else "-"


def register(group: click.Group) -> None:
    from segel.commands._common import subgroup

    grp = subgroup(group, "device", "A tracker's settings over the air: set, and see pending and applied commands.")

    @grp.command("set", epilog="""\b
The command goes out with the acknowledgement of the tracker's next uplink (LoRa or
depot WiFi), signed with its key and numbered so that it cannot be replayed; the
tracker confirms it and `segel device commands` shows it as applied. Who asked goes
into the box's custody ledger.
\b
Examples:
  segel device set 000101 --interval 600 --by "Budi (PPK Sangatta)"
  segel device set 64.08.04.2001-001-GUB --rearm --by "Siti, TPS 001 after counting"
  segel device set 000101 --mode storage --by gudang      the warehouse weeks after the count
  segel device set 000101 --mode tracking --sf 9 --by ops""")
    @click.argument("target", metavar="DEVICE|BOX")
    @click.option("--interval", "interval_s", type=int, help="Report interval in seconds (30-86400).")
    @click.option("--fix-timeout", "fix_timeout_s", type=int, help="GNSS fix timeout in seconds (5-600, below the interval).")
    @click.option("--sf", type=int, help="LoRa spreading factor (7-10: SF11/12 break the 400 ms dwell limit).")
    @click.option("--mode", type=click.Choice(["tracking", "storage"]),
                  help="storage: a status every 4 h, no routine fixes, seal still armed; tracking: normal reports.")
    @click.option("--rearm", is_flag=True, help="Re-arm the seal after an authorised opening (clears the tamper latch).")
    @click.option("--by", "requested_by", required=True, help="Who asks for it (recorded in the custody ledger).")
    @click.option("--json", "as_json", is_flag=True, help="Print the queued command as JSON.")
    @db_options
    def set_cmd(target: str, interval_s: int | None, fix_timeout_s: int | None, sf: int | None, mode: str | None,
                rearm: bool, requested_by: str, as_json: bool, config_path: Path | None, db: str | None) -> None:
        """Queue new settings (or a seal re-arm) for a tracker, by device id or box."""
        from segel.service import devices

        conn = open_db(config_path, db, must_exist=True)
        try:
            t, cmd = devices.set_device(conn, target, requested_by, interval_s=interval_s, fix_timeout_s=fix_timeout_s,
                                        sf=sf, mode=mode, rearm=rearm)
        except devices.DeviceError as e:
            raise click.ClickException(str(e)) from None
        if as_json:
            click.echo(json.dumps(_json(cmd)))
            return
        who = f"box {t.box_id} (tracker {t.device_id:06x})" if t.box_id else f"tracker {t.device_id:06x} (no box)"
        click.echo(f"queued command {cmd.id} for {who}: {cmd.describe()}")
        click.echo("it goes out with the ack of the tracker's next uplink; `segel device commands "
                   f"{target}` shows when it is applied")

    @grp.command("commands", epilog="""\b
Examples:
  segel device commands                 every tracker's commands, newest first
  segel device commands 000101
  segel device commands 64.08.04.2001-001-GUB --json""")
    @click.argument("target", metavar="[DEVICE|BOX]", required=False)
    @click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1), help="Show at most this many, newest first.")
    @click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
    @db_options
    def commands_cmd(target: str | None, limit: int, as_json: bool, config_path: Path | None, db: str | None) -> None:
        """Pending, sent and applied commands (what the tracker confirmed it runs now)."""
        from segel.service import devices

        conn = open_db(config_path, db, must_exist=True)
        try:
            rows = devices.device_commands(conn, target, limit)
        except devices.DeviceError as e:
            raise click.ClickException(str(e)) from None
        for c in rows:
            if as_json:
                click.echo(json.dumps(_json(c)))
                continue
            state = c.state
            if c.state == "sent":
                state = f"sent x{c.sends}"
            line = (f"{c.id:>5}  {c.device_id:06x}  {c.box_id or '-':<24} {state:<11} {_when(c.created_at)}  "
                    f"by {c.requested_by}: {c.describe()}")
            click.echo(line)
            if c.applied:
                a = c.applied
                refused = f"; refused: {', '.join(a['refused'])}" if a["refused"] else ""
                click.echo(f"       applied {_when(c.applied_at)}: interval {a['interval_s']} s, fix timeout "
                           f"{a['fix_timeout_s']} s, SF{a['sf']}, mode {a['mode']}"
                           f"{', seal re-armed' if a['rearmed'] else ''}{refused}")
        if not rows and not as_json:
            click.echo("no commands")


def _json(c) -> dict:  # type: ignore[no-untyped-def]
    return {"id": c.id, "device": f"{c.device_id:06x}", "box": c.box_id, "state": c.state, "requested_by": c.requested_by,
            "created_at": c.created_at, "interval_s": c.interval_s, "fix_timeout_s": c.fix_timeout_s, "sf": c.sf,
            "mode": c.mode, "rearm": c.rearm, "down_counter": c.down_counter, "sends": c.sends,
            "applied_at": c.applied_at, "applied": c.applied}
