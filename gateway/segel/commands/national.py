"""`segel national ...`: the national tier's ingester and view, and the regency uplink's status."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path

import click

from segel.commands._common import db_options, open_db, subgroup

NATIONAL_CONFIG_HELP = "The national node's config (national.toml from `segel deploy federation`)."


def _load(config_path: Path | None, dsn: str | None = None):  # type: ignore[no-untyped-def]
    from segel.config import ConfigError
    from segel.national import settings

    try:
        return settings.load(config_path, overrides={"store.dsn": dsn})
    except ConfigError as e:
        raise click.ClickException(str(e)) from None


def register(group: click.Group) -> None:
    grp = subgroup(group, "national", "The national tier: ingester, national view, the regency uplink's status.")

    @grp.command("ingest", epilog="""\b
Examples:
  segel national ingest --config /etc/segel/national/national.toml
  SEGEL_NATIONAL_STORE_DSN=postgresql://segel:...@db/segel segel national ingest --config national.toml

\b
Takes regency messages off the national message layer (MQTT on NATS, QoS 1, durable session),
applies them to PostgreSQL exactly once and in order per regency, acknowledges them after the
commit and answers each regency with a receipt. Run one on every national node: one works, the
others wait as standbys (a PostgreSQL advisory lock per ingester name). Stop with Ctrl-C or
SIGTERM: unacknowledged messages are delivered again to whichever ingester takes over.""")
    @click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                  help=NATIONAL_CONFIG_HELP)
    @click.option("--dsn", help="PostgreSQL DSN of the national store (store.dsn).")
    def ingest_cmd(config_path: Path | None, dsn: str | None) -> None:
        """Run a national ingester: regency items into the national store."""
        from segel.national.ingest import Ingester

        cfg = _load(config_path, dsn)
        logging.getLogger("segel").setLevel(min(logging.getLogger().level, logging.INFO))
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        ing = Ingester(cfg).start()
        click.echo(f"segel national ingester {cfg.ingest.name} running (partitions {', '.join(cfg.ingest.partitions)}); "
                   "Ctrl-C to stop", err=True)
        stop.wait()
        ing.stop()
        s = ing.stats
        click.echo(f"stopped: {s.messages} messages, {s.items} items applied, {s.duplicates} duplicates ignored, "
                   f"{s.refused} refused", err=True)

    @grp.command("show", epilog="""\b
Examples:
  segel national show --config national.toml                  # every province and regency
  segel national show --config national.toml 64.08            # one regency: districts, open alerts
  segel national show --config national.toml 64.08 64.08.01.2001-001-GUB   # one box

\b
Read-only. Columns: boxes, boxes by custody state (where each box last arrived or left), open
critical alerts, late legs (open behind_schedule), silent trackers (open silent), boxes whose
seal is open. Times in the regency's own zone (WIB, WITA or WIT).""")
    @click.argument("regency", required=False)
    @click.argument("box", required=False)
    @click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                  help=NATIONAL_CONFIG_HELP)
    @click.option("--dsn", help="PostgreSQL DSN of the national store (store.dsn).")
    def show_cmd(regency: str | None, box: str | None, config_path: Path | None, dsn: str | None) -> None:
        """Show the national view: provinces and regencies, one regency, or one box."""
        import psycopg

        from segel.national import codes, text, view

        cfg = _load(config_path, dsn)
        try:
            conn = psycopg.connect(cfg.store.dsn, autocommit=True)
        except psycopg.Error as e:
            raise click.ClickException(f"cannot open the national store: {str(e).strip()}") from None
        with conn:
            if regency is None:
                click.echo(text.overview(view.overview(conn)))
                return
            try:
                code = codes.parse(regency)
            except codes.CodeError as e:
                raise click.BadParameter(str(e), param_hint="REGENCY") from None
            if box is None:
                info = view.regency(conn, code)
                if info is None:
                    raise click.ClickException(f"regency {code} has sent nothing yet")
                click.echo(text.regency(info))
                return
            b = view.box(conn, code, box)
            if b is None:
                raise click.ClickException(f"no box {box!r} in regency {code}")
            click.echo(text.box(b))

    @grp.command("status", epilog="""\b
Examples:
  segel national status --config segel.toml

\b
The regency side: how many items the gateway recorded for the national tier, how many the
national store confirmed, and what still waits, by kind and age.""")
    @db_options
    def status_cmd(config_path: Path | None, db: str | None) -> None:
        """Show what this regency still owes the national tier."""
        from segel.national import text

        conn = open_db(config_path, db, must_exist=True)
        click.echo(text.uplink_status(conn))

    @grp.command("view", epilog="""\b
Examples:
  segel national view --config national-console.toml
  segel national view --config national-console.toml --port 8090

\b
The console in national mode: every province and regency (boxes by custody state, open critical
alerts, late legs, silent trackers), a regency's districts and open alerts, one box's custody,
alerts and positions. Read-only, for every role that can view (oversight: `segel users add NAME
--role viewer`, optionally scoped to a province `--district 64` or a regency `--district 64.08`).
The config names the accounts database (gateway.db), [locale] and [console] as for `segel
console`, and national.store_dsn: the national store.""")
    @click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
                  help="Config with gateway.db (accounts), [console], [locale] and national.store_dsn.")
    @click.option("--host", help="Address to listen on (console.host).")
    @click.option("--port", type=int, help="Port (console.port).")
    def view_cmd(config_path: Path, host: str | None, port: int | None) -> None:
        """Serve the national view: the console's national pages over the national store."""
        import uvicorn

        from segel import config as cfgmod
        from segel.console.app import create_app
        from segel.console.server import uvicorn_config
        from segel.national.pages import router

        try:
            cfg = cfgmod.load(config_path)
        except cfgmod.ConfigError as e:
            raise click.ClickException(str(e)) from None
        if not cfg.national.store_dsn:
            raise click.ClickException(f"{config_path}: national.store_dsn is not set (the national store to show)")
        click.echo(f"segel national view on http://{host or cfg.console.host}:{port or cfg.console.port}/national; "
                   "Ctrl-C to stop", err=True)
        app = create_app(cfg, [router], discover=False, regency_pages=False)
        uvicorn.Server(uvicorn_config(cfg, app, port, host)).run()
