"""`segel flash`: MicroPython + the device image onto a board, through esptool's Python API."""

from __future__ import annotations

import sys

import click

from segel.provision import clikit


def _progress_bar(label: str):  # type: ignore[no-untyped-def]
    """A click progress bar driven by esptool's (current, total) callbacks."""
    state: dict[str, object] = {}

    def update(cur: int, total: int) -> None:
        bar = state.get("bar")
        if bar is None or state.get("total") != total or cur < int(state.get("cur", 0)):  # type: ignore[call-overload]
            if bar is not None:
                bar.render_finish()  # type: ignore[attr-defined]
            bar = click.progressbar(length=total, label=label, file=sys.stderr)
            bar.__enter__()
            state.update(bar=bar, total=total, cur=0)
        bar.update(cur - int(state["cur"]))  # type: ignore[attr-defined, call-overload]
        state["cur"] = cur

    def finish() -> None:
        bar = state.get("bar")
        if bar is not None:
            bar.render_finish()  # type: ignore[attr-defined]

    return update, finish


@click.command("flash")
@clikit.fleet_options
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
@clikit.handles_errors
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

    Put the board in download mode if it does not enter it by itself: hold BOOT, press RST,
    release BOOT. Afterwards run `segel check --port PORT`."""
    from segel.provision import flash
    from segel.provision.builder import ImageBuilder

    fleet = clikit.fleet_of(fleet_dir)
    devices = clikit.select_devices(fleet, db, device_ids, all_)
    if all_ and not include_flashed and not reimage:
        devices = [d for d in devices if flash.flashed_at(fleet, d.device_id, d.key_epoch) is None]
        if not devices:
            raise click.ClickException("every registered device was already flashed at its key epoch "
                                       "(--include-flashed --reimage to do them again)")
    builder = ImageBuilder(fleet, db=db, micropython_bin=micropython_bin)
    if merged:
        if len(devices) != 1:
            raise click.UsageError("--merged takes exactly one DEVICE_ID")
        p = flash.plan(fleet, builder, devices[0], port, baud, write_micropython=not fs_only, reimage=reimage,
                       dry_run=True)
        flash.merged_image(p, output=merged)
        click.echo(p.describe().replace("verify every write, then hard-reset the board",
                                        f"merged into {merged}, to be written at {p.writes[0].offset:#x}"))
        return
    walking = len(devices) > 1 or all_
    summary: list[tuple[str, str, str]] = []
    for i, dev in enumerate(devices):
        if walking and not dry_run:
            answer = click.prompt(f"[{i + 1}/{len(devices)}] plug in the board for {dev.hex} ({dev.board}) on {port}, "
                                  "then Enter (s skip, q quit)", default="", show_default=False)
            if answer.strip().lower() == "q":
                summary += [(d.hex, "not done", "quit") for d in devices[i:]]
                break
            if answer.strip().lower() == "s":
                summary.append((dev.hex, "skipped", ""))
                continue
        try:
            p = flash.plan(fleet, builder, dev, port, baud, write_micropython=not fs_only, erase=erase,
                           reimage=reimage, dry_run=dry_run)
        except (flash.FlashError, Exception) as e:
            if not walking:
                raise
            summary.append((dev.hex, "FAILED", str(e)))
            click.echo(f"{dev.hex}: {e}", err=True)
            continue
        if dry_run:
            click.echo(("" if i == 0 else "\n") + "dry run: nothing written\n" + p.describe())
            continue
        update, finish = _progress_bar(f"{dev.hex} writing")
        try:
            res = flash.execute(p, on_progress=update)
        except flash.FlashError as e:
            finish()
            flash.log_flash(fleet, p, ok=False, error=str(e))
            if not walking:
                raise
            summary.append((dev.hex, "FAILED", str(e)))
            click.echo(f"{dev.hex}: {e}", err=True)
            continue
        finish()
        flash.log_flash(fleet, p, ok=True)
        summary.append((dev.hex, "ok", f"{res.chip}, {res.flash_size}, key epoch {p.device.key_epoch}, "
                                      f"{res.seconds:.0f} s"))
        click.echo(f"{dev.hex}: written and verified ({res.chip}, {res.flash_size}) in {res.seconds:.1f} s; "
                   f"next: segel check --port {port}")
    if summary and walking:
        click.echo("\nsummary")
        for hexid, status, note in summary:
            click.echo(f"  {hexid}  {status:<8} {note}")
        failed = sum(1 for _, s, _ in summary if s == "FAILED")
        click.echo(f"  {sum(1 for _, s, _ in summary if s == 'ok')} ok, {failed} failed, "
                   f"{sum(1 for _, s, _ in summary if s not in ('ok', 'FAILED'))} skipped")
        if failed:
            raise SystemExit(1)


def register(group: click.Group) -> None:
    group.add_command(flash_cmd)
