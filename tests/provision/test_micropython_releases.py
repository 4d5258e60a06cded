"""Stock MicroPython 1.24 to 1.27 on a T-Beam v1.x (ESP32, 4 MiB) and a T-Beam Supreme (ESP32-S3, 8 MiB):
the filesystem lands where each release mounts it, with and without a "vfs" row, is mounted back
with MicroPython's littlefs settings, is written through esptool to a simulated board that reports
its flash size as the chip does, and a board whose flash size differs is refused before any write.

The .bins carry partition tables generated from the CSVs in MicroPython's source at each tag
(mp_tables.py) in the ESP-IDF binary format (parttable.py)."""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

import fwbuild
import mp_tables
import parttable
import pytest
from esprom_board import EspRomBoard
from littlefs import LittleFS

from segel.provision import devconfig, flash
from segel.provision import partitions as P
from segel.provision.builder import ImageBuilder
from segel.provision.image import ImageError, mount_as_micropython, read_littlefs
from segel.provision.settings import Fleet

BOARDS = {"tbeam-v1.1": ("esp32", 4), "tbeam-supreme": ("esp32s3", 8)}
# (offset, size, made at boot) from the sources: partitions-4MiB.csv / partitions-8MiB.csv vfs rows
# up to v1.25.0; from v1.26.0 partitions-4MiBplus.csv ends at 0x200000 and main.c takes the rest
EXPECTED = {
    ("v1.24.0", "tbeam-v1.1"): (0x200000, 0x200000, False), ("v1.24.0", "tbeam-supreme"): (0x200000, 0x600000, False),
    ("v1.25.0", "tbeam-v1.1"): (0x200000, 0x200000, False), ("v1.25.0", "tbeam-supreme"): (0x200000, 0x600000, False),
    ("v1.26.0", "tbeam-v1.1"): (0x200000, 0x200000, True), ("v1.26.0", "tbeam-supreme"): (0x200000, 0x600000, True),
    ("v1.27.0", "tbeam-v1.1"): (0x200000, 0x200000, True), ("v1.27.0", "tbeam-supreme"): (0x200000, 0x600000, True),
}


def _builder(fleet: Fleet, firmware_tree: Path, bin_path: Path) -> ImageBuilder:
    return ImageBuilder(fleet, firmware_dir=firmware_tree, micropython_bin=bin_path)


def _bin(fleet: Fleet, tag: str, chip: str, csv: str | None = None, **kw: object) -> Path:
    p = fleet.root / "firmware" / f"{chip}-{tag}-{csv or 'stock'}.bin"
    p.write_bytes(fwbuild.stock_bin(tag, chip, csv, **kw))
    return p


# ---- the partition-table generator against ESP-IDF's format description ------------------------------


def test_generated_table_is_the_esp_idf_binary_format() -> None:
    raw = parttable.to_binary(parttable.parse_csv(mp_tables.P4MIB))
    assert len(raw) == 0xC00  # MAX_PARTITION_LENGTH, padded with 0xFF
    # entry 0, field by field (<2sBBLL16sL): magic, type data, subtype nvs, offset, size, name, flags
    assert raw[:32] == bytes.fromhex("aa50" "01" "02" "00900000" "00600000") + b"nvs".ljust(16, b"\0") + bytes(4)
    assert raw[64:96] == bytes.fromhex("aa50" "00" "00" "00000100" "00001f00") + b"factory".ljust(16, b"\0") + bytes(4)
    assert raw[96:104] == bytes.fromhex("aa50" "01" "81" "00002000")  # vfs: data, fat, at 0x200000
    assert raw[128:144] == b"\xeb\xeb" + b"\xff" * 14  # the MD5 entry ...
    assert raw[144:160] == hashlib.md5(raw[:128]).digest()  # ... over the entries before it
    assert raw[160:] == b"\xff" * (0xC00 - 160)
    # and segel's reader (written separately) reads back the CSV's rows
    assert [(p.label, p.type, p.subtype, p.offset, p.size) for p in P.parse_table(raw)] == fwbuild.TABLE_4MIB


def test_generator_fills_offsets_and_sizes_as_gen_esp32part_does() -> None:
    # ESP-IDF's single-app default: blank offsets follow the 0x8000 table's 0x1000 bytes, app aligned to 64 KiB
    rows = parttable.parse_csv("nvs, data, nvs, , 0x6000,\nphy_init, data, phy, , 0x1000,\n"
                               "factory, app, factory, , 1M,\nstore, data, , , 4K, readonly\n")
    assert [r.astuple() for r in rows] == [("nvs", 1, 2, 0x9000, 0x6000), ("phy_init", 1, 1, 0xF000, 0x1000),
                                           ("factory", 0, 0, 0x10000, 0x100000), ("store", 1, 6, 0x110000, 0x1000)]
    assert rows[3].flags == 2
    with pytest.raises(ValueError, match="overlaps"):
        parttable.parse_csv("a, data, nvs, 0x9000, 0x6000\nb, data, phy, 0xa000, 0x1000\n")


def test_stock_bins_are_laid_out_like_makeimg() -> None:
    b = fwbuild.stock_bin("v1.27.0", "esp32")
    assert b[0] == 0xE9 and b[0x7000:0x7002] == b"\xaa\x50"  # bootloader at 0x1000, table at flash 0x8000
    assert b[0x7000 + 0xC00:0xF000] == b"\xff" * (0xF000 - 0x7C00)  # 0xFF up to the app at 0x10000
    assert b[0xF000] == 0xE9
    assert struct.unpack_from("<I", b, 0xF000 + 0x20)[0] == 0xABCD5432  # esp_app_desc_t
    s3 = fwbuild.stock_bin("v1.25.0", "esp32s3")
    assert s3[0x8000:0x8002] == b"\xaa\x50" and s3[3] >> 4 == 3  # S3 at 0, header says 8 MB up to 1.25
    assert fwbuild.stock_bin("v1.26.0", "esp32s3")[3] >> 4 == 2  # from 1.26 it says 4 MB


# ---- every release, both boards -------------------------------------------------------------------


@pytest.mark.parametrize("tag", mp_tables.RELEASES)
@pytest.mark.parametrize("board", sorted(BOARDS))
def test_stock_release_flashes_where_it_mounts(fleet: Fleet, firmware_tree: Path, tag: str, board: str) -> None:
    chip, flash_mb = BOARDS[board]
    builder = _builder(fleet, firmware_tree, _bin(fleet, tag, chip))
    dev = devconfig.provision(fleet, 1, board=board)[0].device
    p = flash.plan(fleet, builder, dev, "unused")
    offset, size, runtime = EXPECTED[(tag, board)]
    assert (p.region.offset, p.region.size, p.region.runtime) == (offset, size, runtime)
    assert p.writes[1].offset == offset and len(p.writes[1].data) == size
    assert p.region.release == (1, int(tag.split(".")[1]))

    # the image mounts with MicroPython's littlefs settings, and its superblock says so
    st = mount_as_micropython(p.writes[1].data).fs_stat()
    assert (st.block_size, st.block_count) == (4096, size // 4096)
    assert (st.disk_version, st.name_max, st.file_max, st.attr_max) == (0x00020001, 255, 2147483647, 1022)

    with EspRomBoard(chip, flash_mb=flash_mb) as sim:
        p.port = sim.port
        res = flash.execute(p, connect_attempts=2)
    assert res.flash_size == f"{flash_mb}MB"
    on_board = read_littlefs(bytes(sim.flash[offset:offset + size]))
    assert b'"device_id": "%s"' % dev.hex.encode() in on_board["config.json"]
    assert sim.flash[offset:offset + size] == p.writes[1].data


def test_a_wrong_block_count_does_not_mount(fleet: Fleet, firmware_tree: Path) -> None:
    builder = _builder(fleet, firmware_tree, _bin(fleet, "v1.27.0", "esp32s3"))
    img = builder.build(devconfig.provision(fleet, 1, board="tbeam-supreme")[0].device)
    fs = LittleFS(block_size=4096, block_count=512, mount=False)  # the 4 MiB board's count, for a 6 MiB image
    fs.context.buffer = bytearray(img.data[:512 * 4096])
    with pytest.raises(Exception, match="INVAL|CORRUPT"):
        fs.mount()


# ---- with and without a vfs row ---------------------------------------------------------------------


@pytest.mark.parametrize("tag", ["v1.26.0", "v1.27.0"])
def test_a_vfs_row_wins_on_releases_that_make_one_at_boot(fleet: Fleet, firmware_tree: Path, tag: str) -> None:
    rows = fwbuild.TABLE_4MIB  # a custom 1.26/1.27 build keeping the old table with its vfs row
    fw = fwbuild.write_bin(fleet.root / "firmware" / "custom.bin", "esp32", rows, tag=tag)
    dev = devconfig.provision(fleet, 1)[0].device
    p = flash.plan(fleet, _builder(fleet, firmware_tree, fw), dev, "unused")
    assert (p.region.offset, p.region.size, p.region.runtime) == (0x200000, 0x200000, False)
    assert "the table's vfs row, 0x200000..0x400000" in p.describe()


@pytest.mark.parametrize("tag", ["v1.26.0", "v1.27.0"])
def test_ota_table_without_vfs_gets_the_rest_of_flash(fleet: Fleet, firmware_tree: Path, tag: str) -> None:
    fw = _bin(fleet, tag, "esp32", "partitions-4MiB-ota.csv")  # ends with ota_1 at 0x310000
    dev = devconfig.provision(fleet, 1)[0].device
    p = flash.plan(fleet, _builder(fleet, firmware_tree, fw), dev, "unused")
    assert (p.region.offset, p.region.size, p.region.runtime) == (0x310000, 0xF0000, True)
    assert "(ota_1 ends 0x310000)" in p.describe()
    with EspRomBoard("esp32", flash_mb=4) as sim:
        p.port = sim.port
        flash.execute(p, connect_attempts=2)
    assert "config.json" in read_littlefs(bytes(sim.flash[0x310000:0x400000]))


@pytest.mark.parametrize("tag", ["v1.24.0", "v1.25.0"])
def test_no_vfs_row_before_1_26_is_refused(fleet: Fleet, firmware_tree: Path, tag: str) -> None:
    fw = fwbuild.write_bin(fleet.root / "firmware" / "plus.bin", "esp32", fwbuild.TABLE_4MIBPLUS, tag=tag)
    dev = devconfig.provision(fleet, 1)[0].device
    with pytest.raises(flash.FlashError, match=rf"no 'vfs' row .* MicroPython 1\.{tag[3:5]} creates no filesystem"):
        flash.plan(fleet, _builder(fleet, firmware_tree, fw), dev, "unused")


def test_a_tinyuf2_ffat_table_is_refused(fleet: Fleet, firmware_tree: Path) -> None:
    rows = [*fwbuild.TABLE_4MIBPLUS, ("ffat", 1, 0x81, 0x200000, 0x200000)]
    fw = fwbuild.write_bin(fleet.root / "firmware" / "ffat.bin", "esp32", rows)
    with pytest.raises(ImageError, match="'ffat' partition .* FAT filesystem with 512-byte blocks"):
        _builder(fleet, firmware_tree, fw).build(devconfig.provision(fleet, 1)[0].device)


def test_release_comes_from_fleet_settings_when_the_bin_names_none(fleet: Fleet, firmware_tree: Path) -> None:
    fw = fleet.root / "firmware" / "anon.bin"
    fw.write_bytes(fwbuild.micropython_bin("esp32", fwbuild.TABLE_4MIBPLUS, version=None))  # type: ignore[arg-type]
    dev = devconfig.provision(fleet, 1)[0].device
    p = flash.plan(fleet, _builder(fleet, firmware_tree, fw), dev, "/dev/ttyUSB0", dry_run=True)
    assert "MicroPython 1.27 ([fleet] micropython; the .bin names no release)" in p.describe()
    assert p.region.runtime
    fleet.settings_path.write_text(fleet.settings_path.read_text().replace('"1.27"', '"1.25"'))
    with pytest.raises(flash.FlashError, match=r"MicroPython 1\.25 creates no filesystem"):
        flash.plan(fleet, _builder(fleet, firmware_tree, fw), dev, "/dev/ttyUSB0", dry_run=True)


# ---- the flash size read from the chip ----------------------------------------------------------------


@pytest.mark.parametrize(("board", "chip_mb"), [("tbeam-v1.1", 8), ("tbeam-v1.1", 2), ("tbeam-supreme", 4),
                                                 ("tbeam-supreme", 16)])
def test_a_chip_with_other_flash_is_refused_before_writing(fleet: Fleet, firmware_tree: Path, board: str,
                                                            chip_mb: int) -> None:
    chip, flash_mb = BOARDS[board]
    builder = _builder(fleet, firmware_tree, _bin(fleet, "v1.27.0", chip))
    p = flash.plan(fleet, builder, devconfig.provision(fleet, 1, board=board)[0].device, "unused")
    with EspRomBoard(chip, flash_mb=chip_mb) as sim:
        p.port = sim.port
        with pytest.raises(flash.FlashError) as err:
            flash.execute(p, connect_attempts=2)
    msg = str(err.value)
    assert f"has {chip_mb} MiB of flash, but hardware/boards/{board}.json says {flash_mb} MiB" in msg
    assert "MicroPython 1.27 would put its filesystem at " in msg and "Nothing was written." in msg
    assert sim.flash.count(0xFF) == len(sim.flash)
    assert 0x9F in sim.spi_commands
