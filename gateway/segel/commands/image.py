"""`segel image`: build trackers' filesystem images; `segel bench images`: how fast that is."""

from __future__ import annotations

import sys

import click

from segel.commands._common import subgroup
from segel.commands import _provisioning as shared


@click.command("image")
@shared.fleet_options
@click.argument("device_ids", nargs=-1, metavar="DEVICE_ID...")
@click.option("--all", "all_", is_flag=True, help="Every registered device.")
@click.option("--micropython", "micropython_bin", metavar="FIRMWARE.bin", multiple=True,
              help="MicroPython .bin whose partition table sizes the image (repeat: one per chip; default: FLEET/firmware/<mcu>.bin).")
@click.option("--list", "list_files", is_flag=True, help="List the files in each image.")
@shared.handles_errors
def image_cmd(fleet_dir: str | None, db: str | None, device_ids: tuple[str, ...], all_: bool,
              micropython_bin: tuple[str, ...], list_files: bool) -> None:
    """Build each device's littlefs image (firmware as .mpy, LoRa packages, board file, config).

    \b
    Examples:
      segel image 000101
      segel image --all --micropython ESP32_GENERIC-SPIRAM-v1.27.0.bin
      segel image 000101 --list

    The image is exactly the size of the filesystem the .bin's MicroPython release mounts: its
    partition table's "vfs" row, or (1.26 and later, no such row) the rest of the board file's
    flash after the last partition. It carries only the firmware modules the device's role
    (tracker or base) imports. Packages come only from the local cache (segel packages fetch).
    Images go to FLEET/images/<id>.img (mode 600: each holds that tracker's key)."""
    from segel.provision.builder import ImageBuilder

    fleet = shared.fleet_of(fleet_dir)
    devices = shared.select_devices(fleet, db, device_ids, all_)
    builder = ImageBuilder(fleet, db=db, micropython_bin=micropython_bin)
    results = []
    with click.progressbar(devices, label="building images", file=sys.stderr,
                           item_show_func=lambda d: d.hex if d else "") as bar:
        for dev in bar:
            results.append((dev, *builder.build_to_file(dev)))
    for dev, path, img in results:
        click.echo(f"{dev.hex}  {dev.board:<16} {dev.role:<8} {path}  {len(img.data):,} B at "
                   f"{img.region.offset:#x} ({'made at boot' if img.region.runtime else 'vfs row'}), "
                   f"{img.used_bytes:,} B used, {len(img.files)} files")
        if list_files:
            for name in sorted(img.files):
                click.echo(f"    {len(img.files[name]):>8,}  /{name}")


@click.command("images")
@shared.fleet_options
@click.option("--count", "-n", type=int, default=100, show_default=True, help="Images to build per board.")
@click.option("--board", "boards", multiple=True, help="Board(s) to measure (default: every board file).")
@shared.handles_errors
def bench_images(fleet_dir: str | None, db: str | None, count: int, boards: tuple[str, ...]) -> None:
    """Seconds to build one device image and COUNT images, and the image size per board.

    \b
    Example:
      segel bench images --fleet ./fleet --count 100

    Registers COUNT throw-away devices per board in a temporary copy of the fleet (the real
    registry is untouched) and builds their images in memory."""
    import tempfile
    from pathlib import Path

    from segel.provision import devconfig
    from segel.provision.builder import ImageBuilder, bench
    from segel.provision.settings import copy_fleet

    src = shared.fleet_of(fleet_dir)
    with tempfile.TemporaryDirectory() as tmp:
        fleet = copy_fleet(src, Path(tmp) / "fleet", registry_path="bench.db")
        click.echo(f"{'board':<18} {'images':>6} {'first s':>8} {'all s':>8} {'per image ms':>12} "
                   f"{'image B':>10} {'used B':>10} {'files B':>9}")
        for board in boards or devconfig.known_boards():
            devs = [p.device for p in devconfig.provision(fleet, count, board=board)]
            builder = ImageBuilder(fleet)
            with click.progressbar(length=count, label=board, file=sys.stderr) as bar:
                r = bench(builder, devs, on_done=lambda: bar.update(1))
            click.echo(f"{board:<18} {r.count:>6} {r.seconds_first:>8.3f} {r.seconds_total:>8.2f} "
                       f"{1000 * r.seconds_total / r.count:>12.1f} {r.image_bytes:>10,} {r.used_bytes:>10,} "
                       f"{r.content_bytes:>9,}")


def register(group: click.Group) -> None:
    group.add_command(image_cmd)
    subgroup(group, "bench", "Benchmarks that print figures.").add_command(bench_images)
