"""`segel keys rotate|finish`: new key epochs for trackers (optionally under a new fleet secret)."""

from __future__ import annotations

import time

import click

from segel.commands import _provisioning as shared
from segel.commands._common import subgroup


@click.command("rotate")
@shared.fleet_options
@click.argument("device_ids", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Every registered tracker.")
@click.option("--transition-days", type=click.FloatRange(min=0), default=30.0, show_default=True,
              help="How long the previous key epoch is still accepted (trackers not yet re-imaged).")
@click.option("--new-secret", is_flag=True,
              help="Also a new fleet secret (the old one leaked): needs --all; the old one is kept as "
                   "fleet.secret.previous for the transition.")
@shared.handles_errors
def rotate_cmd(fleet_dir: str | None, db: str | None, device_ids: tuple[str, ...], all_: bool, transition_days: float,
               new_secret: bool) -> None:
    """A new key epoch for trackers; they take the new key at their next re-imaging.

    \b
    Examples:
      segel keys rotate 000123                       # a tracker whose image may have been copied
      segel keys rotate --all --transition-days 14   # a technician left with device configs
      segel keys rotate --all --new-secret           # the fleet secret leaked

    The registry gets the new epochs and every tracker's config is rewritten, so `segel image` and
    `segel flash` give the new key from now on. Until the transition ends the gateway also accepts
    the previous epoch; a tracker heard under its new key is refused under the old one from then
    on. With --new-secret, install the new fleet.secret on the gateway and set
    gateway.previous_fleet_secret to fleet.secret.previous until `segel keys finish`.
    Procedures: docs/security.md."""
    from segel.provision import keys

    fleet = shared.fleet_of(fleet_dir)
    devices = shared.select_devices(fleet, db, device_ids, all_, role="tracker" if all_ else None)
    if new_secret and not all_:
        raise click.UsageError("--new-secret changes every tracker's key: use it with --all")
    r = keys.rotate(fleet, devices, transition_days, new_secret, db)
    for dev, old, new in r.devices:
        click.echo(f"{dev}  key epoch {old} -> {new}")
    until = time.strftime("%Y-%m-%d %H:%M %Z", time.localtime(r.until))
    click.echo(f"{len(r.devices)} tracker(s) rotated; configs rewritten: {r.configs_rewritten}; "
               f"the previous epoch is accepted until {until}")
    if r.new_secret:
        click.echo(f"new fleet secret   {r.new_secret} (install it as the gateway's gateway.fleet_secret)")
        click.echo(f"previous secret    {r.previous_secret} (set gateway.previous_fleet_secret to it until "
                   "`segel keys finish`)")
    click.echo("next: segel image --all, then re-flash each tracker (segel flash); reprint labels: segel labels --all")


@click.command("finish")
@shared.fleet_options
@click.option("--force", is_flag=True, help="Cut off trackers not yet heard under their new key.")
@shared.handles_errors
def finish_cmd(fleet_dir: str | None, db: str | None, force: bool) -> None:
    """End a rotation: previous key epochs (and a previous fleet secret) are refused from now on.

    \b
    Example:
      segel keys finish"""
    from segel.provision import keys

    behind = keys.finish(shared.fleet_of(fleet_dir), db, force)
    if behind:
        click.echo(f"cut off {len(behind)} tracker(s) still on their old key: {', '.join(behind[:20])}", err=True)
    click.echo("rotation finished: only the current key epochs are accepted; remove gateway.previous_fleet_secret")


def register(group: click.Group) -> None:
    g = subgroup(group, "keys", "Keys: the fleet's key epochs and secret over time (docs/security.md).")
    g.add_command(rotate_cmd)
    g.add_command(finish_cmd)
