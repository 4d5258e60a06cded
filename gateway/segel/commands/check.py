"""`segel check`: ask a flashed tracker over USB serial who it is and how its hardware is."""

from __future__ import annotations

import click

from segel.commands import _provisioning as shared


@click.command("check")
@shared.fleet_options
@click.option("--port", "-p", required=True, help="Serial port of the tracker (/dev/ttyUSB0, /dev/ttyACM0).")
@click.option("--expect", metavar="DEVICE_ID", default=None,
              help="The device that should be there: also compares its key epoch with the registry.")
@click.option("--timeout", type=float, default=10.0, show_default=True, help="Seconds to wait for the tracker.")
@shared.handles_errors
def check_cmd(fleet_dir: str | None, db: str | None, port: str, expect: str | None, timeout: float) -> None:
    """Report device id, firmware version, board, GNSS, seal, battery and radio self-test.

    \b
    Examples:
      segel check --port /dev/ttyUSB0
      segel check --port /dev/ttyUSB0 --expect 000101

    Stops the running firmware (Ctrl-C over the REPL) to ask; press RST afterwards. Exits 1 when
    something is wrong (wrong device, stale key epoch, failed self-test)."""
    from segel.provision import check, devconfig

    rep = check.run_probe(port, timeout=timeout)
    for line in rep.lines():
        click.echo(line)
    epoch = None
    if expect:
        dev = devconfig.resolve(shared.fleet_of(fleet_dir), expect, db)
        expect, epoch = dev.hex, dev.key_epoch
    problems = rep.problems(expect, epoch)
    if problems:
        raise click.ClickException("; ".join(problems))
    click.echo("ok")


def register(group: click.Group) -> None:
    group.add_command(check_cmd)
