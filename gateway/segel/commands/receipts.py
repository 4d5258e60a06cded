"""`segel receipts list`: handover receipts as the gateway recorded them (docs/custody.md)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from segel.commands._common import db_options, open_db, subgroup


def register(group: click.Group) -> None:
    grp = subgroup(group, "receipts", "Handover receipts of the receiving officers (docs/custody.md).")

    @grp.command("list", epilog="""\b
Examples:
  segel receipts list --config segel.toml
  segel receipts list --box 64.08.17.2002-002-GUB --json
  segel receipts list --state unmatched          receipts the tracker never confirmed
\b
State: linked (the tracker recorded the box's arrival there), pending (not yet: its frames may
still be on the way), unmatched (no arrival after the grace: alert receipt_no_arrival).""")
    @click.option("--box", help="Only this box.")
    @click.option("--state", type=click.Choice(["linked", "pending", "unmatched"]), help="Only receipts in this state.")
    @click.option("--json", "as_json", is_flag=True, help="One JSON object per receipt.")
    @db_options
    def list_cmd(box: str | None, state: str | None, as_json: bool, config_path: Path | None, db: str | None) -> None:
        """List handover receipts, oldest first."""
        from segel.custody import alerts as al
        from segel.custody import receipts

        conn = open_db(config_path, db, must_exist=True)
        rows = receipts.listing(conn, box=box, state=state)
        for r in rows:
            if as_json:
                click.echo(json.dumps({k: v for k, v in r.items() if k != "submitted"}))
            else:
                o = r["officer"]
                click.echo(f"{r['id']}  {al.iso(r['confirmed_at'])}  {r['box']:<24} {r['place']:<18} {r['state']:<9} "
                           f"{o['name']} ({o['role']})  seals {', '.join(r['seals'])}")
        if not rows and not as_json:
            click.echo("no receipts")
