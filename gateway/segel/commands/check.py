"""`segel check`: run the first-board checklist on a flashed tracker over USB serial."""

from __future__ import annotations

import click

from segel.commands import _provisioning as shared


@click.command("check")
@shared.fleet_options
@click.option("--port", "-p", required=True, help="Serial port of the tracker (/dev/ttyUSB0, /dev/ttyACM0).")
@click.option("--expect", metavar="DEVICE_ID", default=None,
              help="The device that should be there: also compares its key epoch with the registry.")
@click.option("--timeout", type=float, default=10.0, show_default=True, help="Seconds to wait for the tracker.")
@click.option("--gnss-seconds", type=click.IntRange(1, 900), default=3, show_default=True,
              help="Seconds to listen to the GNSS (120 outdoors for a first fix).")
@shared.handles_errors
def check_cmd(fleet_dir: str | None, db: str | None, port: str, expect: str | None, timeout: float,
              gnss_seconds: int) -> None:
    """Identity, firmware, PMU rails, battery, seal, GNSS, radio and EIRP: a pass/fail table.

    \b
    Examples:
      segel check --port /dev/ttyUSB0
      segel check --port /dev/ttyUSB0 --expect 000101
      segel check --port /dev/ttyUSB0 --gnss-seconds 120   # outdoors: wait for a fix

    Stops the running firmware (Ctrl-C over the REPL) to measure; press RST afterwards. Every
    item that did not pass says what to do. Exits 1 when an item FAILs (WARN: look at it, e.g.
    no GNSS fix indoors; SKIP: needs a person with an instrument, see docs/provisioning.md)."""
    from segel.provision import check, checklist, devconfig

    rep = check.run_probe(port, timeout=timeout, gnss_seconds=gnss_seconds)
    for line in rep.lines():
        click.echo(line)
    epoch = None
    if expect:
        dev = devconfig.resolve(shared.fleet_of(fleet_dir), expect, db)
        expect, epoch = dev.hex, dev.key_epoch
    items = rep.items(expect, epoch, gnss_seconds)
    click.echo("")
    for line in checklist.table(items):
        click.echo(line)
    failed = [i.name for i in items if i.result == checklist.FAIL]
    if failed:
        raise click.ClickException(f"{len(failed)} item(s) failed: {', '.join(failed)}")


def register(group: click.Group) -> None:
    group.add_command(check_cmd)
