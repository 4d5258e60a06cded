"""`segel labels`: a printable PDF sheet of tracker labels (id text + QR code)."""

from __future__ import annotations

from pathlib import Path

import click

from segel.commands import _provisioning as shared


@click.command("labels")
@shared.fleet_options
@click.argument("device_ids", nargs=-1, metavar="DEVICE_ID...")
@click.option("--all", "all_", is_flag=True, help="Every registered tracker.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=Path("labels.pdf"),
              show_default=True, help="PDF to write.")
@shared.handles_errors
def labels_cmd(fleet_dir: str | None, db: str | None, device_ids: tuple[str, ...], all_: bool, output: Path) -> None:
    """Render an A4 sheet (3 x 8 labels of 70 x 37 mm) with each device id as text and QR code.

    \b
    Examples:
      segel labels --all -o labels.pdf
      segel labels 000101 000102

    The QR code reads SGL-<id>; `segel pair --csv` accepts those scans directly. A tracker already
    paired with a box gets its box label instead: the box code under the id, and a QR code
    SGL1:<fleet>:<box>:<tracker> that the receiving officers' phones scan for handover receipts."""
    from segel.provision import labels

    from segel.ids import fleet_id

    fleet = shared.fleet_of(fleet_dir)
    devices = shared.select_devices(fleet, db, device_ids, all_, role="tracker" if all_ else None)
    pages = labels.render(devices, output, fleet=fleet_id(fleet.secret()))
    click.echo(f"{output}: {len(devices)} labels on {pages} page(s)")


def register(group: click.Group) -> None:
    group.add_command(labels_cmd)
