"""`segel status`: the gateway's health from its database."""

from __future__ import annotations

from pathlib import Path

import click

from segel.commands._common import existing_db


def register(group: click.Group) -> None:
    @group.command("status", epilog="""\b
Examples:
  segel status --config segel.toml
  segel status --db /var/lib/segel/segel.db
  segel status --config segel.toml --security 20   # also the last 20 rejected frames

\b
Shows whether the gateway is running (its last heartbeat, written every gateway.health_interval_s:
the time of that snapshot is shown in locale.timezone, so you know how old the figures are), its counters since start
(accepted, duplicates, rejected by reason), lifetime counters, the InfluxDB outbox (depth, age
of the oldest line, parked lines) and the trackers heard. Live metrics: /metrics (Prometheus).""")
    @click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), help="TOML config file.")
    @click.option("--db", help="SQLite database (overrides gateway.db).")
    @click.option("--security", type=int, default=0, show_default=True,
                  help="Also list the last N security events (rejected frames, raw bytes in hex).")
    def status_cmd(config_path: Path | None, db: str | None, security: int) -> None:
        """Show the gateway's health: counters, outbox, security events."""
        from segel import i18n, store
        from segel.service import health

        cfg, path = existing_db(config_path, db)
        conn = store.connect(path)
        click.echo(health.status_text(conn, tz=cfg.locale.timezone, every_s=cfg.gateway.health_interval_s))
        if security:
            click.echo(f"last {security} security events:")
            t = i18n.translator("en", cfg.locale.timezone)
            for i, at, topic, reason, detail, dev, frame in store.security_events(conn, security):
                click.echo(f"  #{i} {t.local(at):%Y-%m-%d %H:%M:%S} {t.zone_name} {reason:<15} {topic} {detail} "
                           f"frame={frame.lower()}")
