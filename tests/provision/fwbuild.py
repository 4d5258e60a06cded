"""Test-made MicroPython firmware .bins laid out byte for byte as MicroPython's build lays out its own:
ports/esp32/makeimg.py writes the bootloader at its chip's offset (ESP32 0x1000, ESP32-S3 0),
0xFF up to the partition table at 0x8000, 0xFF up to the first app partition, then the app. The
bootloader and app are real ESP images (esptool's image classes) whose headers carry the flash
mode and size the release's sdkconfig names; the app holds an ESP-IDF app descriptor and
MicroPython's version string ("MicroPython v1.27.0 on ..." as in sys.version); the table is
generated from the release's own CSV (parttable.py, mp_tables.py). Only the code is missing."""

from __future__ import annotations

import struct
import tempfile
from pathlib import Path

import mp_tables
import parttable
from esptool import bin_image

BOOTLOADER_OFFSET = {"esp32": 0x1000, "esp32s3": 0x0}
FLASH_SIZE_NIBBLE = {1: 0x00, 2: 0x10, 4: 0x20, 8: 0x30, 16: 0x40}  # image header byte 3, high nibble
FLASH_MODE = {"qio": 0, "qout": 1, "dio": 2, "dout": 3}
DROM = {"esp32": 0x3F400020, "esp32s3": 0x3C000020}
Rows = list[tuple[str, int, int, int, int]]


def table_rows(csv_text: str) -> Rows:
    return [r.astuple() for r in parttable.parse_csv(csv_text)]


# shorthands for tests that want one layout
TABLE_4MIB = table_rows(mp_tables.P4MIB)  # v1.24/v1.25 ESP32_GENERIC: vfs 0x200000 + 2 MiB
TABLE_8MIB = table_rows(mp_tables.P8MIB)  # v1.24/v1.25 ESP32_GENERIC_S3: vfs 0x200000 + 6 MiB
TABLE_4MIBPLUS = table_rows(mp_tables.P4MIBPLUS)  # v1.26+ both: no vfs row


def table_bytes(rows: Rows, md5: bool = True) -> bytes:
    return parttable.to_binary([parttable.Row(*r) for r in rows], md5)


def _app_desc(version: str) -> bytes:
    """esp_app_desc_t (ESP-IDF esp_app_format.h): magic, secure_version, reserv1[2], version[32]
    (empty: MicroPython sets CONFIG_APP_EXCLUDE_PROJECT_VER_VAR), project_name[32], time[16],
    date[16], idf_ver[32], app_elf_sha256[32], the rest reserved."""
    idf = {"v1.24.0": "v5.2.2", "v1.25.0": "v5.2.2", "v1.26.0": "v5.4.2"}.get(version, "v5.5.1")
    return struct.pack("<IIII32s32s16s16s32s32s", 0xABCD5432, 0, 0, 0, b"", b"micropython", b"12:00:00",
                       b"Dec  9 2025", idf.encode(), bytes(32)) + bytes(80)


def _image(chip: str, segments: list[tuple[str, int, bytes]], mode: str, flash_mb: int) -> bytes:
    cls = bin_image.ESP32FirmwareImage if chip == "esp32" else bin_image.ESP32S3FirmwareImage
    img = cls()
    img.segments = [bin_image.ELFSection(name.encode(), addr, data, 0) for name, addr, data in segments]
    img.entrypoint = 0x40080000 if chip == "esp32" else 0x40370000
    img.flash_mode = FLASH_MODE[mode]
    img.flash_size_freq = FLASH_SIZE_NIBBLE[flash_mb] | (0x0 if mode == "dio" else 0xF)  # 40 / 80 MHz
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "img.bin"
        img.save(str(f))
        return f.read_bytes()


def micropython_bin(chip: str, rows: Rows, app_bytes: int = 4096, md5: bool = True, version: str = "v1.27.0",
                    flash_mb: int | None = None, mode: str | None = None) -> bytes:
    """A MicroPython-shaped download .bin, as makeimg.py concatenates it (version=None: no version string)."""
    boot = BOOTLOADER_OFFSET[chip]
    mode = mode or ("dio" if chip == "esp32" else "qio")
    flash_mb = flash_mb or 4
    dram = 0x3FFF0000 if chip == "esp32" else 0x3FCE0000
    bootloader = _image(chip, [(".dram0.data", dram, bytes((1 + i * 7) & 0xFF for i in range(1024)))], mode, flash_mb)
    banner = f"3.4.0; MicroPython {version} on 2025-12-09".encode() if version else b""
    filler = bytes((2 + i * 7) & 0xFF for i in range(app_bytes))
    app = _image(chip, [(".flash.appdesc", DROM[chip], _app_desc(version or "") + banner + b"\0" + filler)],
                 mode, flash_mb)
    app_off = next(r[3] for r in rows if r[1] == 0)
    out = bytearray(bootloader)
    for offset, blob in ((parttable.TABLE_OFFSET, table_bytes(rows, md5)), (app_off, app)):
        assert boot + len(out) <= offset, "overlap"
        out += b"\xff" * (offset - boot - len(out))
        out += blob
    return bytes(out)


def stock_bin(tag: str, chip: str, csv: str | None = None, **kw: object) -> bytes:
    """The stock ESP32_GENERIC / ESP32_GENERIC_S3 build of a release (or that build with another of the
    release's tables, e.g. partitions-4MiB-ota.csv)."""
    s = mp_tables.stock(tag, chip)
    rows = table_rows(mp_tables.CSV[(tag, csv or s.csv)])
    return micropython_bin(chip, rows, version=tag, flash_mb=s.header_flash_mb, mode=s.flash_mode, **kw)  # type: ignore[arg-type]


def write_bin(path: Path, chip: str, rows: Rows | None = None, tag: str = "v1.27.0", **kw: object) -> Path:
    """Without rows: the release's stock build; with rows: that release's build with this table."""
    if rows is None:
        path.write_bytes(stock_bin(tag, chip, **kw))
    else:
        s = mp_tables.stock(tag, chip)
        path.write_bytes(micropython_bin(chip, rows, version=tag, flash_mb=s.header_flash_mb,  # type: ignore[arg-type]
                                         mode=s.flash_mode, **kw))
    return path
