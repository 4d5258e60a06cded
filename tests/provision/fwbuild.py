"""Test-made MicroPython-like firmware files: a real ESP image bootloader and app (esptool's image
classes), a partition table written in the ESP-IDF binary format, merged with esptool's merge_bin
exactly as MicroPython's build merges its download .bin. No downloaded firmware is needed."""

from __future__ import annotations

import hashlib
import struct
import tempfile
from pathlib import Path

from esptool import bin_image, cmds

# MicroPython ports/esp32/partitions-4MiB.csv (ESP32_GENERIC) and partitions-8MiB.csv (ESP32_GENERIC_S3)
TABLE_4MIB = [("nvs", 1, 0x02, 0x9000, 0x6000), ("phy_init", 1, 0x01, 0xF000, 0x1000),
              ("factory", 0, 0x00, 0x10000, 0x300000), ("vfs", 1, 0x81, 0x310000, 0x0F0000)]
TABLE_8MIB = [("nvs", 1, 0x02, 0x9000, 0x6000), ("phy_init", 1, 0x01, 0xF000, 0x1000),
              ("factory", 0, 0x00, 0x10000, 0x300000), ("vfs", 1, 0x81, 0x310000, 0x4F0000)]
# the older ESP32 4 MiB layout (MicroPython up to 1.2x): 2 MiB app, 2 MiB vfs
TABLE_4MIB_OLD = [("nvs", 1, 0x02, 0x9000, 0x6000), ("phy_init", 1, 0x01, 0xF000, 0x1000),
                  ("factory", 0, 0x00, 0x10000, 0x1F0000), ("vfs", 1, 0x81, 0x200000, 0x200000)]


def table_bytes(rows: list[tuple[str, int, int, int, int]], md5: bool = True) -> bytes:
    """ESP-IDF binary partition table: 32-byte entries <2sBBLL16sL, MD5 entry, 0xFF end."""
    out = b""
    for label, ptype, sub, off, size in rows:
        out += b"\xaa\x50" + struct.pack("<BBLL", ptype, sub, off, size) + label.encode().ljust(16, b"\0") + \
            struct.pack("<L", 0)
    if md5:
        out += b"\xeb\xeb" + b"\xff" * 14 + hashlib.md5(out).digest()
    return out + b"\xff" * 32


def _image(chip: str, nbytes: int, seed: int) -> bytes:
    cls = bin_image.ESP32FirmwareImage if chip == "esp32" else bin_image.ESP32S3FirmwareImage
    dram = 0x3FFF0000 if chip == "esp32" else 0x3FCE0000
    img = cls()
    payload = bytes((seed + i * 7) & 0xFF for i in range(nbytes))
    img.segments = [bin_image.ELFSection(b".dram0.data", dram, payload, 0)]
    img.entrypoint = 0x40080000 if chip == "esp32" else 0x40370000
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "img.bin"
        img.save(str(f))
        return f.read_bytes()


def micropython_bin(chip: str, rows: list[tuple[str, int, int, int, int]], app_bytes: int = 4096,
                    md5: bool = True) -> bytes:
    """A MicroPython-shaped download .bin: bootloader at its chip's offset, table at 0x8000, app."""
    boot = 0x1000 if chip == "esp32" else 0x0
    app_off = next(r[3] for r in rows if r[1] == 0)
    out = cmds.merge_bin([(boot, _image(chip, 1024, 1)), (0x8000, table_bytes(rows, md5)),
                          (app_off, _image(chip, app_bytes, 2))], chip=chip, target_offset=boot)
    assert isinstance(out, bytes)
    return out


def write_bin(path: Path, chip: str, rows: list[tuple[str, int, int, int, int]] | None = None, **kw: object) -> Path:
    rows = rows or (TABLE_4MIB if chip == "esp32" else TABLE_8MIB)
    path.write_bytes(micropython_bin(chip, rows, **kw))  # type: ignore[arg-type]
    return path
