"""`segel db stats|prune`: what the gateway database holds per frame; pruning what judging no longer needs."""

from __future__ import annotations

from pathlib import Path

import click

from segel.commands._common import existing_db, subgroup


def register(group: click.Group) -> None:
    db_group = subgroup(group, "db", "The gateway database: its size per frame, pruning.")

    def _open(config_path: Path | None, db: str | None) -> tuple[object, Path, float]:
        from segel import store

        cfg, path = existing_db(config_path, db)
        return store.connect(path), path, cfg.gateway.retention_days

    @db_group.command("stats", epilog="""\b
Examples:
  segel db stats --config segel.toml
  segel db stats --db segel.db

\b
Prints the database's size on disk and in use, the frames accepted over its life, bytes per
frame, and per table (with its indexes) its size and bytes per frame.""")
    @click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), help="TOML config file.")
    @click.option("--db", help="SQLite database (overrides gateway.db).")
    def stats_cmd(config_path: Path | None, db: str | None) -> None:
        """Show bytes per frame in the gateway database, per table."""
        from segel.custody import storage

        conn, path, _days = _open(config_path, db)
        click.echo(storage.stats(conn, path).report())  # type: ignore[arg-type]

    @db_group.command("prune", epilog="""\b
Examples:
  segel db prune --config segel.toml              # keep gateway.retention_days (30) of judged frames
  segel db prune --db segel.db --keep-days 7 --vacuum

\b
Removes the custody judge's copies of frames received more than --keep-days ago (cut at a stored
rule state, so later frames are still judged exactly; a frame older than the cut that arrives
late is recorded but not judged again). Never removed: the custody ledger (every box's chain stays
verifiable: `segel ledger verify`), alerts and their history, findings, the frames' `seen`
rows (which refuse re-sent frames), device state and the registry. Safe while the gateway runs;
--vacuum gives the space back to the file system (it waits for the gateway's writes).""")
    @click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), help="TOML config file.")
    @click.option("--db", help="SQLite database (overrides gateway.db).")
    @click.option("--keep-days", type=click.FloatRange(0), help="Days of frames to keep (default: gateway.retention_days).")
    @click.option("--vacuum", is_flag=True, help="Then VACUUM the database (the file shrinks).")
    @click.option("--as-of", type=float, help="Count the days back from this unix time instead of now "
                  "(a rehearsal's database, whose clock is the simulation's).")
    def prune_cmd(config_path: Path | None, db: str | None, keep_days: float | None, vacuum: bool,
                  as_of: float | None) -> None:
        """Remove what judging no longer needs; print the sizes before and after."""
        from segel.custody import storage

        conn, path, days = _open(config_path, db)
        before = storage.stats(conn, path)  # type: ignore[arg-type]
        res = storage.prune(conn, days if keep_days is None else keep_days, as_of, vacuum=vacuum)  # type: ignore[arg-type]
        after = storage.stats(conn, path)  # type: ignore[arg-type]
        click.echo(f"removed {res.frames_removed:,} judged frames of {res.devices:,} trackers "
                   f"(received before {res.cutoff:.0f}, {days if keep_days is None else keep_days:g} days kept)")
        click.echo("before: " + before.report().splitlines()[0])
        click.echo("after:  " + after.report())
