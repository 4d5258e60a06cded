"""What several commands share: sub-groups, the --config/--db options and opening the gateway database."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from segel.config import Config

CONFIG_HELP = "The gateway's config file: use its database (gateway.db)."
DB_HELP = "The gateway database (overrides the config's gateway.db; default segel.db)."


def subgroup(group: click.Group, name: str, help: str) -> click.Group:
    """The sub-group `name` of `group`, created on first use: lets several command modules add
    commands to one group (e.g. `segel bench ingest`, `segel bench places`)."""
    existing = group.commands.get(name)
    if isinstance(existing, click.Group):
        return existing
    new = click.Group(name, help=help)
    group.add_command(new)
    return new


def load_config(config_path: Path | None, overrides: dict | None = None) -> Config:
    """The config file (or the embedded defaults) with `overrides`, or a clear error."""
    from segel import config as cfgmod

    try:
        return cfgmod.load(config_path, overrides=overrides or {})
    except cfgmod.ConfigError as e:
        raise click.ClickException(str(e)) from None


def existing_db(config_path: Path | None, db: str | None, overrides: dict | None = None) -> tuple[Config, Path]:
    """The config and the path of its gateway database, which must exist already."""
    cfg = load_config(config_path, {"gateway.db": db, **(overrides or {})})
    path = cfg.path(cfg.gateway.db)
    if not path.exists():
        raise click.ClickException(f"no gateway database at {path}: pass --config or --db")
    return cfg, path


def open_db(config_path: Path | None, db: str | None, must_exist: bool = False) -> sqlite3.Connection:
    """The gateway database named by --db or the config, or a clear error."""
    from segel import config as cfgmod
    from segel import store

    try:
        return store.open_configured(config_path, db, must_exist)
    except (cfgmod.ConfigError, FileNotFoundError) as e:
        raise click.ClickException(str(e)) from None


def db_options(fn):  # type: ignore[no-untyped-def]
    fn = click.option("--db", help=DB_HELP)(fn)
    return click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), help=CONFIG_HELP)(fn)
