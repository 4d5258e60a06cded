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

    The QR code reads SGL-<id>; `segel pair --csv` accepts those scans directly."""
    from segel.provision import labels

    devices = shared.select_devices(shared.fleet_of(fleet_dir), db, device_ids, all_, role="tracker" if all_ else None)
    pages = labels.render(devices, output)
    click.echo(f"{output}: {len(devices)} labels on {pages} page(s)")


def register(group: click.Group) -> None:
    group.add_command(labels_cmd)
