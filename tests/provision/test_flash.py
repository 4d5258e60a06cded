"""Flashing up to the board: the plan, the exact --dry-run text, esptool's real merge_bin and
image_info on the result, and esptool's real connect path failing on a missing or silent port."""

from __future__ import annotations

import hashlib
import os
import pty
from pathlib import Path

import fwbuild
import pytest
from esprom_board import EspRomBoard

from segel.provision import devconfig, flash
from segel.provision.builder import ImageBuilder
from segel.provision.image import read_littlefs
from segel.provision.settings import Fleet


def test_dry_run_prints_exactly_what_goes_where(fleet: Fleet, builder: ImageBuilder) -> None:
    dev = devconfig.provision(fleet, 1)[0].device
    p = flash.plan(fleet, builder, dev, "/dev/ttyUSB0")
    fw = (fleet.root / "firmware" / "esp32.bin").read_bytes()
    img = fleet.image_path(dev.hex).read_bytes()
    assert len(img) == 0x200000  # stock 1.27 on a 4 MiB T-Beam: 0x200000 to the end of flash
    end_fw = 0x1000 + len(fw)
    assert p.describe() == "\n".join([
        "device 000101  board tbeam-v1.1  role tracker  key epoch 0",
        "port /dev/ttyUSB0  chip esp32  baud 460800",
        "MicroPython 1.27.0 (named in the .bin)",
        "filesystem: no vfs row, so MicroPython 1.27 makes one at boot from the end of the last partition "
        "(factory ends 0x200000) to the end of the 4 MiB flash: 0x200000..0x400000 (2 MiB, 512 blocks of 4096 B)",
        f"write 0x00001000..{end_fw:#010x}  {len(fw):>9,} B  MicroPython           "
        f"{fleet.root / 'firmware' / 'esp32.bin'}  sha256 {hashlib.sha256(fw).hexdigest()[:16]}",
        f"write 0x00200000..0x00400000  2,097,152 B  filesystem (littlefs) {fleet.image_path(dev.hex)}  "
        f"sha256 {hashlib.sha256(img).hexdigest()[:16]}",
        "check first: the chip is an esp32 with exactly 4 MiB of flash (the filesystem's place depends on it)",
        "verify every write, then hard-reset the board",
    ])


def test_s3_firmware_is_written_at_zero(fleet: Fleet, builder: ImageBuilder) -> None:
    dev = devconfig.provision(fleet, 1, board="tbeam-supreme")[0].device
    p = flash.plan(fleet, builder, dev, "/dev/ttyACM0", write_micropython=True)
    assert [(w.offset, w.what) for w in p.writes] == [(0, "MicroPython"), (0x200000, "filesystem (littlefs)")]
    assert len(p.writes[1].data) == 0x600000  # to the end of the Supreme's 8 MiB
    assert p.chip == "esp32s3"


def test_merged_flash_image_holds_firmware_and_filesystem(fleet: Fleet, builder: ImageBuilder) -> None:
    dev = devconfig.provision(fleet, 1)[0].device
    p = flash.plan(fleet, builder, dev, "/dev/ttyUSB0")
    merged = flash.merged_image(p)
    base = p.writes[0].offset
    assert merged[: len(p.writes[0].data)] == p.writes[0].data
    files = read_littlefs(merged[0x200000 - base: 0x400000 - base])
    assert files["config.json"].startswith(b'{"ack_window_ms"')
    info = flash.image_info(merged, "esp32")
    assert "Chip ID: 0 (ESP32)" in info and "Checksum:" in info and "(valid)" in info


def test_a_port_that_does_not_exist(fleet: Fleet, builder: ImageBuilder) -> None:
    dev = devconfig.provision(fleet, 1)[0].device
    p = flash.plan(fleet, builder, dev, "/dev/ttySEGEL-NOPE")
    with pytest.raises(flash.FlashError, match=r"cannot open /dev/ttySEGEL-NOPE: the port does not exist"):
        flash.execute(p, connect_attempts=1)


def test_a_board_not_in_download_mode(fleet: Fleet, builder: ImageBuilder) -> None:
    master, slave = pty.openpty()  # a serial port nobody answers on: esptool's real connect times out
    try:
        dev = devconfig.provision(fleet, 1)[0].device
        p = flash.plan(fleet, builder, dev, os.ttyname(slave))
        with pytest.raises(flash.FlashError, match="not in download mode. Hold BOOT"):
            flash.execute(p, connect_attempts=1)
    finally:
        os.close(master)
        os.close(slave)


def test_wrong_chip() -> None:
    flash.check_chip("esp32", "esp32", "/dev/ttyUSB0")
    with pytest.raises(flash.FlashError, match="the board on /dev/ttyUSB0 is an esp32s3, but this firmware"):
        flash.check_chip("esp32s3", "esp32", "/dev/ttyUSB0")


def test_second_flash_at_one_key_epoch_needs_reimage(fleet: Fleet, builder: ImageBuilder) -> None:
    dev = devconfig.provision(fleet, 1)[0].device
    p = flash.plan(fleet, builder, dev, "/dev/ttyUSB0")
    flash.log_flash(fleet, p, ok=True)
    with pytest.raises(flash.FlashError, match="already flashed at key epoch 0 .* add --reimage"):
        flash.plan(fleet, builder, dev, "/dev/ttyUSB0")
    again = flash.plan(fleet, builder, dev, "/dev/ttyUSB0", reimage=True)
    assert again.device.key_epoch == 1
    assert fleet.open_registry().get(dev.device_id).key_epoch == 1  # type: ignore[union-attr]
    assert b'"key_epoch": 1' in read_littlefs(again.writes[1].data)["config.json"]


# ---- a board in download mode, simulated at the serial line (esprom_board.py) -----------------------


def test_flash_writes_and_verifies_through_esptool(fleet: Fleet, builder: ImageBuilder) -> None:
    dev = devconfig.provision(fleet, 1)[0].device
    p = flash.plan(fleet, builder, dev, "unused")
    seen: list[tuple[int, int]] = []
    with EspRomBoard("esp32", flash_mb=4) as board:
        p.port = board.port
        res = flash.execute(p, on_progress=lambda cur, total: seen.append((cur, total)), connect_attempts=2)
    assert (res.chip, res.flash_size) == ("esp32", "4MB")
    assert 0x9F in board.spi_commands  # the size came from the flash chip's JEDEC id (RDID)
    fw = p.writes[0].data
    assert board.flash[0x1000:0x1000 + len(fw)] == fw
    files = read_littlefs(bytes(board.flash[0x200000:0x400000]))
    assert b'"device_id": "000101"' in files["config.json"]
    assert seen and seen[-1][0] == seen[-1][1]  # esptool's progress reached 100 %
    assert any("Hash of data verified" in m for m in res.messages)


def test_wrong_chip_on_the_port_writes_nothing(fleet: Fleet, builder: ImageBuilder) -> None:
    dev = devconfig.provision(fleet, 1)[0].device
    p = flash.plan(fleet, builder, dev, "unused")
    with EspRomBoard("esp32s3") as board:
        p.port = board.port
        with pytest.raises(flash.FlashError, match=r"is an esp32s3, but this firmware and board file are for esp32"):
            flash.execute(p, connect_attempts=2)
    assert board.flash.count(0xFF) == len(board.flash)


def test_board_with_less_flash_than_the_writes_need(fleet: Fleet, firmware_tree: Path) -> None:
    fw = fwbuild.write_bin(fleet.root / "firmware" / "s3-v1.25.bin", "esp32s3", tag="v1.25.0")  # vfs row to 8 MiB
    builder = ImageBuilder(fleet, firmware_dir=firmware_tree, micropython_bin=fw)
    dev = devconfig.provision(fleet, 1, board="tbeam-supreme")[0].device
    p = flash.plan(fleet, builder, dev, "unused")
    assert not p.region.runtime
    with EspRomBoard("esp32s3", flash_mb=4) as board:
        p.port = board.port
        with pytest.raises(flash.FlashError, match=r"has 4 MiB of flash; the writes reach 0x800000"):
            flash.execute(p, connect_attempts=2)
    assert board.flash.count(0xFF) == len(board.flash)


def test_a_dry_run_never_bumps_the_key_epoch(fleet: Fleet, builder: ImageBuilder) -> None:
    dev = devconfig.provision(fleet, 1)[0].device
    flash.log_flash(fleet, flash.plan(fleet, builder, dev, "/dev/ttyUSB0"), ok=True)
    p = flash.plan(fleet, builder, dev, "/dev/ttyUSB0", reimage=True, dry_run=True)
    assert p.describe().splitlines()[2] == ("re-image: key epoch 0 -> 1 (not bumped in a dry run; the image below "
                                           "is at the current epoch)")
    assert fleet.open_registry().get(dev.device_id).key_epoch == 0  # type: ignore[union-attr]


def test_flash_many_walks_boards_through_its_hooks(fleet: Fleet, builder: ImageBuilder) -> None:
    devs = [p.device for p in devconfig.provision(fleet, 3)]
    answers = iter(["", "s", "q"])
    asked: list[str] = []
    progress: list[tuple[int, int]] = []
    finished: list[str] = []
    hooks = flash.SessionHooks(
        ask=lambda i, n, d: (asked.append(f"{i + 1}/{n} {d.hex}"), next(answers))[1],
        progress=lambda d: (lambda cur, total: progress.append((cur, total)), lambda: None),
        finished=lambda o: finished.append(f"{o.device} {o.status}"))
    with EspRomBoard("esp32", flash_mb=4) as board:
        out = flash.flash_many(fleet, builder, devs, board.port, hooks=hooks, connect_attempts=2)
    assert asked == ["1/3 000101", "2/3 000102", "3/3 000103"]
    assert [(o.device, o.status) for o in out] == [("000101", "ok"), ("000102", "skipped"), ("000103", "not done")]
    assert finished == ["000101 ok", "000102 skipped", "000103 not done"]
    assert progress and progress[-1][0] == progress[-1][1]
    assert flash.flashed_at(fleet, 0x101, 0) is not None and flash.flashed_at(fleet, 0x102, 0) is None
    assert flash.still_to_flash(fleet, devs) == devs[1:]
    # a dry run plans every board, asks nothing and writes nothing
    dry = flash.flash_many(fleet, builder, devs[1:], "/dev/ttyUSB0", dry_run=True,
                           hooks=flash.SessionHooks(ask=lambda *a: pytest.fail("asked")))
    assert [o.status for o in dry] == ["planned", "planned"] and dry[0].plan is not None
    # one board alone: its failure is raised, not summarised
    with pytest.raises(flash.FlashError, match="cannot open /dev/ttySEGEL-NOPE"):
        flash.flash_many(fleet, builder, devs[1:2], "/dev/ttySEGEL-NOPE", connect_attempts=1)
