"""`segel alerts list|show|ack|resolve|kinds|ledger`: the operator's side of the alerts."""

from __future__ import annotations

import json
from pathlib import Path

import click

from segel.commands._common import db_options, load_config, open_db


def _config(config_path: Path | None, db: str | None):  # type: ignore[no-untyped-def]
    return load_config(config_path, {"gateway.db": db})


def register(group: click.Group) -> None:
    from segel.commands._common import subgroup

    grp = subgroup(group, "alerts", "Alerts for the operator: list, show, acknowledge, resolve (docs/alerts.md).")

    @grp.command("list", epilog="""\b
Examples:
  segel alerts list                          open and acknowledged alerts, newest first
  segel alerts list --severity critical
  segel alerts list --state all --box 64.08.04.2001-001-GUB --json
  segel alerts list --language en            headers and words in English

\b
Times are local ([locale] timezone in the config; WITA by default), places are shown by name,
words in [locale] language (Bahasa Indonesia by default).""")
    @click.option("--state", default="active", show_default=True,
                  type=click.Choice(["active", "open", "acknowledged", "resolved", "withdrawn", "all"]),
                  help="active = open or acknowledged.")
    @click.option("--kind", help="Only this kind (segel alerts kinds).")
    @click.option("--severity", type=click.Choice(["critical", "high", "warning", "info"]),
                  help="Only alerts of this severity.")
    @click.option("--box", help="Only this box.")
    @click.option("--limit", default=100, show_default=True, type=click.IntRange(min=1),
                  help="Show at most this many alerts, newest first.")
    @click.option("--json", "as_json", is_flag=True, help="One JSON object per line (the published schema).")
    @click.option("--language", type=click.Choice(["id", "en"]), help="Language of the table (default: locale.language).")
    @db_options
    def list_cmd(state: str, kind: str | None, severity: str | None, box: str | None, limit: int, as_json: bool,
                 language: str | None, config_path: Path | None, db: str | None) -> None:
        """List alerts."""
        from segel.custody import alerts as al
        from segel.custody import display

        conn = open_db(config_path, db, must_exist=True)
        states = {"active": ("open", "acknowledged"), "all": (None,)}.get(state, (state,))
        rows = [r for s in states for r in al.listing(conn, state=s, kind=kind, box=box, severity=severity, limit=limit)]
        rows.sort(key=lambda r: (-r["raised_at"], r["id"]))
        rows = rows[:limit]
        if as_json:
            for r in rows:
                click.echo(json.dumps(al.to_json(r, "listed")))
            return
        cfg = _config(config_path, db)
        click.echo(display.alert_table(conn, rows, cfg.locale.language if language is None else language,
                                       cfg.locale.timezone))

    @grp.command("show", epilog="""\b
Examples:
  segel alerts show AL-3f2a9c1b0d4e
  segel alerts show AL-3f2a9c1b0d4e --language en
  segel alerts show AL-3f2a9c1b0d4e --json     the published schema (English message) and its history""")
    @click.argument("alert_id")
    @click.option("--json", "as_json", is_flag=True, help="The alert and its history as one JSON object.")
    @click.option("--language", type=click.Choice(["id", "en"]), help="Language of the text (default: locale.language).")
    @db_options
    def show_cmd(alert_id: str, as_json: bool, language: str | None, config_path: Path | None, db: str | None) -> None:
        """Show one alert with its history."""
        from segel.custody import alerts as al
        from segel.custody import display

        conn = open_db(config_path, db, must_exist=True)
        row = al.get(conn, alert_id)
        if row is None:
            raise click.ClickException(f"no alert {alert_id!r} (see `segel alerts list`)")
        history = al.history(conn, alert_id)
        if as_json:
            d = al.to_json(row, "shown")
            d["history"] = [{"at": al.iso(at), "event": ev, "by": by, "note": note} for at, ev, by, note in history]
            click.echo(json.dumps(d, indent=2))
            return
        cfg = _config(config_path, db)
        click.echo(display.alert_sheet(conn, row, history, cfg.locale.language if language is None else language,
                                       cfg.locale.timezone))

    def _change(action: str, alert_id: str, by: str, note: str | None, config_path: Path | None, db: str | None) -> None:
        from segel.custody import actions

        conn = open_db(config_path, db, must_exist=True)
        try:
            d = getattr(actions, action)(conn, alert_id, by, note, via="cli")
        except actions.AlertError as e:
            raise click.ClickException(str(e)) from None
        click.echo(f"{d['id']} {d['state']} by {by}; written to the box's ledger, published on MQTT and to the "
                   "webhooks by the running gateway")

    @grp.command("ack", epilog="""\b
Examples:
  segel alerts ack AL-3f2a9c1b0d4e --by "Sari, command post" --note "police on the way"
\b
Stops re-notification of a critical alert; the alert stays the one open alert of its kind for
the box until resolved.""")
    @click.argument("alert_id")
    @click.option("--by", required=True, help="Who acknowledges (recorded).")
    @click.option("--note", help="What is being done.")
    @db_options
    def ack_cmd(alert_id: str, by: str, note: str | None, config_path: Path | None, db: str | None) -> None:
        """Acknowledge an open alert (who, when, note)."""
        _change("acknowledge", alert_id, by, note, config_path, db)

    @grp.command("resolve", epilog="""\b
Examples:
  segel alerts resolve AL-3f2a9c1b0d4e --by Sari --note "seal replaced before witnesses, BA signed\"""")
    @click.argument("alert_id")
    @click.option("--by", required=True, help="Who resolves (recorded).")
    @click.option("--note", help="How it was resolved.")
    @db_options
    def resolve_cmd(alert_id: str, by: str, note: str | None, config_path: Path | None, db: str | None) -> None:
        """Resolve an open or acknowledged alert."""
        _change("resolve", alert_id, by, note, config_path, db)

    @grp.command("kinds", epilog="""\b
Examples:
  segel alerts kinds""")
    def kinds_cmd() -> None:
        """Every alert kind with its severity."""
        from segel.custody.alerts import KINDS

        for k in KINDS.values():
            click.echo(f"{k.name:<18} {k.severity:<8} {k.doc}")

    @grp.command("ledger", epilog="""\b
Examples:
  segel alerts ledger 64.08.04.2001-001-GUB            verify the box's custody chain
  segel alerts ledger 64.08.04.2001-001-GUB --export   print every entry (JSON lines)""")
    @click.argument("box")
    @click.option("--export", is_flag=True, help="Print the entries as JSON lines (for oversight).")
    @db_options
    def ledger_cmd(box: str, export: bool, config_path: Path | None, db: str | None) -> None:
        """Verify (or export) a box's hash-chained custody ledger."""
        from segel.custody import ledger

        conn = open_db(config_path, db, must_exist=True)
        if export:
            for e in ledger.export(conn, box):
                click.echo(json.dumps(e))
            return
        v = ledger.verify(conn, box)
        if not v.ok:
            raise click.ClickException(f"ledger of {box} BROKEN after {v.entries} good entries: {v.reason}")
        click.echo(f"ledger of {box}: {v.entries} entries, chain intact, head {v.head}")
