"""`segel device revoke|unrevoke`: a stolen or lost tracker's frames refused, an alert if it speaks."""

from __future__ import annotations

import click

from segel.commands import _provisioning as shared
from segel.commands._common import subgroup


@click.command("revoke")
@shared.fleet_options
@click.argument("device_id")
@click.option("--reason", required=True, help="Why (goes into the alert), e.g. 'stolen at PPS Sangatta 2024-11-26'.")
@shared.handles_errors
def revoke_cmd(fleet_dir: str | None, db: str | None, device_id: str, reason: str) -> None:
    """Revoke a stolen or lost tracker: its frames are refused from now on.

    \b
    Example:
      segel device revoke 000123 --reason "lost on the river crossing, 2024-11-25"

    A frame that verifies under the revoked tracker's key is refused (counted as rejected:revoked)
    and raises the critical alert revoked_tracker_heard with where it was heard (base station,
    bridge, signal strength): the tracker, or whoever has it, is talking. Frames with a bad MAC
    under its id stay forged_frame. The running gateway picks this up within seconds."""
    from segel.provision import devconfig, keys

    fleet = shared.fleet_of(fleet_dir)
    dev = keys.revoke(fleet, devconfig.resolve(fleet, device_id, db), reason, db)
    box = f" (box {dev.box_id})" if dev.box_id else ""
    click.echo(f"{dev.hex}{box} revoked: {dev.revoked_reason}")
    click.echo("its frames are refused from now on; if its key may have been read out, `segel keys rotate` the "
               "trackers imaged with the same fleet folder (docs/security.md)")


@click.command("unrevoke")
@shared.fleet_options
@click.argument("device_id")
@shared.handles_errors
def unrevoke_cmd(fleet_dir: str | None, db: str | None, device_id: str) -> None:
    """Accept a revoked tracker again (it was found). Re-image it first if it was out of your hands.

    \b
    Example:
      segel device unrevoke 000123"""
    from segel.provision import devconfig, keys

    fleet = shared.fleet_of(fleet_dir)
    dev = keys.unrevoke(fleet, devconfig.resolve(fleet, device_id, db), db)
    click.echo(f"{dev.hex} accepted again")


def register(group: click.Group) -> None:
    g = subgroup(group, "device", "A tracker's lifecycle: revoke a stolen or lost one (docs/security.md).")
    g.add_command(revoke_cmd)
    g.add_command(unrevoke_cmd)
