"""`segel provision`: register trackers, derive their keys, write their configs."""

from __future__ import annotations

import click

from segel.commands import _provisioning as shared
from segel.provision import devconfig


@click.command("provision")
@shared.fleet_options
@click.option("--count", "-n", type=int, default=None, help="How many new trackers to register.")
@click.option("--board", default=None, help="Board file name (default: [fleet] board in fleet.toml).")
@click.option("--role", type=click.Choice(["tracker", "base"]), default="tracker", show_default=True,
              help="tracker on a box, or base station.")
@click.option("--reimage", "reimage", metavar="DEVICE_ID", multiple=True,
              help="Give an existing tracker a new key epoch and rewrite its config (repeatable).")
@shared.handles_errors
def provision_cmd(fleet_dir: str | None, db: str | None, count: int | None, board: str | None, role: str,
                  reimage: tuple[str, ...]) -> None:
    """Allocate device ids, register them, derive each key and write each config.

    \b
    Examples:
      segel provision --count 100                      # 100 trackers on the default board
      segel provision --count 20 --board tbeam-supreme
      segel provision --count 1 --role base            # a base station
      segel provision --reimage 000123                 # new key epoch before re-flashing

    Configs go to FLEET/devices/<id>.json (mode 600: each holds that tracker's key) and are
    checked with the firmware's own validator first."""
    fleet = shared.fleet_of(fleet_dir)
    if not count and not reimage:
        raise click.UsageError("give --count N (new trackers) or --reimage DEVICE_ID")
    for d in reimage:
        dev = devconfig.reimage(fleet, d, db)
        click.echo(f"{dev.hex}  key epoch now {dev.key_epoch}  config {fleet.config_path(dev.hex)}")
    if reimage:
        click.echo("its printed label shows the old key epoch: reprint with segel labels --stale")
    if count:
        done = devconfig.provision(fleet, count, board=board, role=role, db=db)
        click.echo(f"registered {len(done)} {role}s: {done[0].device.hex} .. {done[-1].device.hex} "
                   f"({done[0].device.board}) in {fleet.registry_db(db)}")
        click.echo(f"configs in {fleet.devices_dir}; next: segel flash --port PORT {done[0].device.hex}")


def register(group: click.Group) -> None:
    group.add_command(provision_cmd)
