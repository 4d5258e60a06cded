"""`segel flash`: MicroPython + the device image onto boards, through esptool's Python API."""

from __future__ import annotations

from pathlib import Path

import click

from segel.commands import _provisioning as shared


@click.command("flash")
@shared.fleet_options
@click.argument("device_ids", nargs=-1, metavar="DEVICE_ID...")
@click.option("--port", "-p", required=True, help="Serial port of the board (/dev/ttyUSB0, /dev/ttyACM0, COM3).")
@click.option("--micropython", "micropython_bin", metavar="FIRMWARE.bin", multiple=True,
              help="MicroPython .bin to write (repeat: one per chip; default: FLEET/firmware/<mcu>.bin).")
@click.option("--all", "all_", is_flag=True, help="Walk every registered tracker, prompting to plug in each board.")
@click.option("--dry-run", is_flag=True, help="Print exactly what would be written where; touch no board.")
@click.option("--merged", "merged", metavar="OUT.bin", default=None,
              help="Write everything as one flash image file (esptool merge-bin) instead of flashing.")
@click.option("--baud", type=int, default=460800, show_default=True, help="Baud rate for writing.")
@click.option("--erase", is_flag=True, help="Erase the whole flash first (clears old NVS data).")
@click.option("--fs-only", is_flag=True, help="Write only the filesystem image (MicroPython already on the board).")
@click.option("--reimage", is_flag=True,
              help="The board was flashed before at this key epoch: bump the epoch (new key) and flash.")
@click.option("--include-flashed", is_flag=True, help="With --all: also boards already flashed at their epoch.")
@shared.handles_errors
def flash_cmd(fleet_dir: str | None, db: str | None, device_ids: tuple[str, ...], port: str,
              micropython_bin: tuple[str, ...], all_: bool, dry_run: bool, baud: int, erase: bool, fs_only: bool,
              reimage: bool, include_flashed: bool, merged: str | None) -> None:
    """Write MicroPython and a tracker's image in one esptool session, verified.

    \b
    Examples:
      segel flash --port /dev/ttyUSB0 000101 --micropython ESP32_GENERIC-SPIRAM-v1.27.0.bin
      segel flash --port /dev/ttyUSB0 000101 --dry-run
      segel flash --port /dev/ttyUSB0 --all            # prompts for each board, then a summary
      segel flash --port /dev/ttyUSB0 000101 --reimage # second flash: new key epoch
      segel flash --port - 000101 --merged 000101-full.bin  # one file for a factory programmer

    The filesystem goes where the .bin's MicroPython release mounts it: the "vfs" row of its
    partition table, or (MicroPython 1.26 and later, whose stock tables have none) from the end
    of the last partition to the end of the flash. The flash size the chip reports is checked
    against the board file before anything is written.

    Put the board in download mode if it does not enter it by itself: hold BOOT, press RST,
    release BOOT. Afterwards run `segel check --port PORT`."""
    from segel.provision import flash
    from segel.provision.builder import ImageBuilder

    fleet = shared.fleet_of(fleet_dir)
    devices = shared.select_devices(fleet, db, device_ids, all_)
    if all_ and not include_flashed and not reimage:
        devices = flash.still_to_flash(fleet, devices)
    builder = ImageBuilder(fleet, db=db, micropython_bin=micropython_bin)
    if merged:
        if len(devices) != 1:
            raise click.UsageError("--merged takes exactly one DEVICE_ID")
        p = flash.merged_file(fleet, builder, devices[0], Path(merged), write_micropython=not fs_only,
                              reimage=reimage)
        click.echo(p.describe(merged_into=merged))
        return

    def ask(i: int, n: int, dev: object) -> str:
        return str(click.prompt(f"[{i + 1}/{n}] plug in the board for {dev.hex} ({dev.board}) on {port}, "  # type: ignore[attr-defined]
                                "then Enter (s skip, q quit)", default="", show_default=False))

    def planned(p: flash.FlashPlan) -> None:
        if dry_run:
            click.echo(("" if p.device.hex == devices[0].hex else "\n") + "dry run: nothing written\n" + p.describe())

    def finished(o: flash.Outcome) -> None:
        if o.status == "FAILED":
            click.echo(f"{o.device}: {o.note}", err=True)
        elif o.status == "ok" and o.result is not None:
            click.echo(f"{o.device}: written and verified ({o.result.chip}, {o.result.flash_size}) in "
                       f"{o.result.seconds:.1f} s; next: segel check --port {port}")

    walking = len(devices) > 1 or all_
    hooks = flash.SessionHooks(ask=ask, planned=planned, finished=finished,
                               progress=lambda dev: shared.progress_bar(f"{dev.hex} writing"))
    outcomes = flash.flash_many(fleet, builder, devices, port, baud=baud, write_micropython=not fs_only,
                                erase=erase, reimage=reimage, dry_run=dry_run, walking=walking, hooks=hooks)
    summary = [o for o in outcomes if o.status != "planned"]  # a dry run lists only what failed
    if walking and summary:
        click.echo("\nsummary")
        for o in summary:
            click.echo(f"  {o.device}  {o.status:<8} {o.note}")
        failed = sum(1 for o in outcomes if o.status == "FAILED")
        ok = sum(1 for o in outcomes if o.status == "ok")
        click.echo(f"  {ok} ok, {failed} failed, {len(summary) - ok - failed} skipped")
        if failed:
            raise SystemExit(1)


def register(group: click.Group) -> None:
    group.add_command(flash_cmd)
