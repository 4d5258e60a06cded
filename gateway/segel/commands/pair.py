"""`segel pair`: bind trackers to ballot boxes (and their TPS) in the registry."""

from __future__ import annotations

from pathlib import Path

import click

from segel.commands import _provisioning as shared


@click.command("pair")
@shared.fleet_options
@click.argument("box_id", required=False)
@click.argument("device_id", required=False)
@click.option("--tps", default=None, help="The TPS the box serves: its code, or a name that names exactly one TPS.")
@click.option("--contest", default=None, help="The contest the box holds (e.g. DPR, DPRD, president).")
@click.option("--csv", "csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="CSV of scans: columns box (or box_id), device (or scan, the SGL-... label), tps, contest.")
@click.option("--force", is_flag=True, help="Move a tracker that is already on another box (recorded).")
@click.option("--by", default=None, help="Who paired (recorded in the pairing history).")
@shared.handles_errors
def pair_cmd(fleet_dir: str | None, db: str | None, box_id: str | None, device_id: str | None, tps: str | None,
             contest: str | None, csv_file: Path | None, force: bool, by: str | None) -> None:
    """Pair a tracker with a box: BOX_ID DEVICE_ID, or --csv FILE of scans.

    \b
    Examples:
      segel pair KT-0001 000101 --tps 64.08.04.2001-001
      segel pair KT-0001 000101 --tps "TPS 001 Sangatta Utara"   # a name that names one TPS
      segel pair KT-0001 SGL-000102 --force --by tech-7   # move a tracker to another box
      segel pair --csv scans.csv

    The TPS is checked against the imported places (segel places import first) and stored as its
    code. Every pairing is kept in the history; a tracker already on another box is refused unless
    --force. With --csv, bad rows are listed with their line numbers and the exit status is 1."""
    from segel.provision import pairing

    registry = shared.fleet_of(fleet_dir).open_registry(db)
    if csv_file is not None:
        if box_id or device_id:
            raise click.UsageError("give BOX_ID DEVICE_ID or --csv, not both")
        res = pairing.pair_csv(registry, csv_file.read_text(encoding="utf-8-sig"), force=force, by=by)
        for p in res.paired:
            click.echo(_line(p))
            if p.warning:
                click.echo(f"warning: {p.warning}", err=True)
        for line, reason in res.refused:
            click.echo(f"{csv_file}:{line}: {reason}", err=True)
        click.echo(f"{len(res.paired)} paired, {len(res.refused)} refused")
        if res.refused:
            raise SystemExit(1)
        return
    if not (box_id and device_id):
        raise click.UsageError("give BOX_ID DEVICE_ID, or --csv FILE")
    p = pairing.pair(registry, box_id, device_id, tps=tps, contest=contest, force=force, by=by)
    click.echo(_line(p))
    if p.warning:
        click.echo(f"warning: {p.warning}", err=True)


def _line(p: object) -> str:
    from segel.provision.pairing import Pairing

    assert isinstance(p, Pairing)
    if p.unchanged:
        return f"{p.device} already on box {p.box_id}"
    move = f" (moved from {p.previous_box})" if p.previous_box else ""
    return f"{p.device} -> box {p.box_id}{' (' + p.tps + ')' if p.tps else ''}{move}"


def register(group: click.Group) -> None:
    group.add_command(pair_cmd)
