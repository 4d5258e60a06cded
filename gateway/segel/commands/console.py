"""`segel console`: serve the operator's console (docs/console.md)."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from segel.commands._common import existing_db


def register(group: click.Group) -> None:
    @group.command("console", epilog="""\b
Examples:
  segel users add sari --role admin --db segel.db     first: an account (there is no default one)
  segel console --config segel.toml                  http://127.0.0.1:8080/
  segel console --db segel.db --port 8090
  segel console --config segel.toml --host 0.0.0.0   only behind a TLS proxy (deploy/console)

\b
Reads the gateway's database (it may run beside `segel gateway`, which can also serve the
console itself with [console] enabled = true) and follows new alerts live. Settings: the
[console] and [locale] sections of the config (docs/console.md).""")
    @click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), help="TOML config file.")
    @click.option("--db", help="SQLite database (overrides gateway.db).")
    @click.option("--host", help="Address to listen on (console.host, default 127.0.0.1).")
    @click.option("--port", type=click.IntRange(1, 65535), help="Port (console.port, default 8080).")
    def console_cmd(config_path: Path | None, db: str | None, host: str | None, port: int | None) -> None:
        """Serve the operator's console: live map, alert desk, box pages, fleet."""
        from segel.console import live, server

        cfg, path = existing_db(config_path, db, {"console.host": host, "console.port": port})
        logging.getLogger("segel").setLevel(min(logging.getLogger().level, logging.INFO))
        h = cfg.console.host
        click.echo(f"segel console on http://{'[' + h + ']' if ':' in h else h}:{cfg.console.port}/ "
                   f"(database {path}); Ctrl-C to stop", err=True)
        server.serve_forever(cfg, hooks=[live.attach])
