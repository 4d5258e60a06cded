"""`segel labels`: a printable PDF sheet of tracker labels (id text + QR code)."""

from __future__ import annotations

from pathlib import Path

import click

from segel.commands import _provisioning as shared


@click.command("labels")
@shared.fleet_options
@click.argument("device_ids", nargs=-1, metavar="DEVICE_ID...")
@click.option("--all", "all_", is_flag=True, help="Every registered tracker.")
@click.option("--stale", is_flag=True,
              help="Only trackers whose printed label is out of date (new key epoch, new box) or was never printed.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=Path("labels.pdf"),
              show_default=True, help="PDF to write.")
@shared.handles_errors
def labels_cmd(fleet_dir: str | None, db: str | None, device_ids: tuple[str, ...], all_: bool, stale: bool,
               output: Path) -> None:
    """Render an A4 sheet (3 x 8 labels of 70 x 37 mm) with each device id as text and QR code.

    \b
    Examples:
      segel labels --all -o labels.pdf
      segel labels 000101 000102
      segel labels --stale -o reprint.pdf      # after re-imaging, segel keys rotate or re-pairing

    The QR code reads SGL-<id>; `segel pair --csv` accepts those scans directly. A tracker already
    paired with a box gets its box label instead: the box code under the id, and a QR code
    SGL1:<fleet>:<box>:<tracker> that the receiving officers' phones scan for handover receipts.
    Each label shows the tracker's current key epoch; the fleet folder remembers what was printed,
    so --stale reprints exactly the labels a re-image, a key rotation or a re-pairing made out of
    date."""
    from segel.ids import fleet_id
    from segel.provision import labels

    fleet = shared.fleet_of(fleet_dir)
    if stale:
        if device_ids:
            raise click.UsageError("give DEVICE_IDs or --stale, not both")
        devices = labels.stale(fleet.root, shared.select_devices(fleet, db, (), True, role="tracker"))
        if not devices:
            click.echo("every printed label is up to date")
            return
    else:
        devices = shared.select_devices(fleet, db, device_ids, all_, role="tracker" if all_ else None)
    pages = labels.render(devices, output, fleet=fleet_id(fleet.secret()))
    labels.record_printed(fleet.root, devices)
    click.echo(f"{output}: {len(devices)} labels on {pages} page(s)")


def register(group: click.Group) -> None:
    group.add_command(labels_cmd)
