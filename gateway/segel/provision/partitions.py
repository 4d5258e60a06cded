"""Read the ESP-IDF partition table out of a MicroPython firmware .bin.

The table sits at flash offset 0x8000 (CONFIG_PARTITION_TABLE_OFFSET default). MicroPython's
ESP32 download is a merged image that starts at flash 0x1000 (the bootloader), so the table is
at file offset 0x7000; the ESP32-S3 image starts at flash 0, table at file offset 0x8000.

Binary format (ESP-IDF `gen_esp32part.py`): 32-byte little-endian entries
`magic 0x50AA (bytes AA 50), type u8, subtype u8, offset u32, size u32, label 16 B, flags u32`,
optionally followed by an MD5 entry (`EB EB` + 14 × FF + MD5 of the entries before it), ended by
an entry of 32 × FF. At most 0xC00 bytes of entries.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

TABLE_OFFSET = 0x8000
MAX_TABLE_LEN = 0xC00
ENTRY = struct.Struct("<2sBBII16sI")
MAGIC = b"\xaa\x50"
MD5_MAGIC = b"\xeb\xeb" + b"\xff" * 14
APP, DATA = 0x00, 0x01
DATA_SUBTYPES = {0x00: "ota", 0x01: "phy", 0x02: "nvs", 0x03: "coredump", 0x04: "nvs_keys", 0x05: "efuse",
                 0x06: "undefined", 0x80: "esphttpd", 0x81: "fat", 0x82: "spiffs", 0x83: "littlefs"}

# the ESP image header: magic E9, ...; extended header chip id (u16 at byte 12) (ESP-IDF app image format)
IMAGE_MAGIC = 0xE9
CHIP_IDS = {0x0000: "esp32", 0x0002: "esp32s2", 0x0005: "esp32c3", 0x0009: "esp32s3", 0x000C: "esp32c2",
            0x000D: "esp32c6", 0x0010: "esp32h2", 0x0012: "esp32p4"}
# where each chip's bootloader (and so a merged MicroPython .bin) starts in flash
BOOTLOADER_OFFSET = {"esp32": 0x1000, "esp32s2": 0x1000, "esp32s3": 0x0, "esp32c3": 0x0, "esp32c6": 0x0,
                     "esp32c2": 0x0, "esp32h2": 0x0, "esp32p4": 0x2000}


class PartitionError(ValueError):
    """The firmware file or its partition table is not what it should be."""


@dataclass(frozen=True)
class Partition:
    label: str
    type: int
    subtype: int
    offset: int
    size: int
    flags: int = 0

    @property
    def kind(self) -> str:
        if self.type == APP:
            return "app"
        if self.type == DATA:
            return "data/" + DATA_SUBTYPES.get(self.subtype, hex(self.subtype))
        return f"{self.type:#x}/{self.subtype:#x}"

    @property
    def end(self) -> int:
        return self.offset + self.size


def parse_table(raw: bytes) -> list[Partition]:
    """Parse a binary partition table (the bytes at flash 0x8000)."""
    parts: list[Partition] = []
    seen = b""
    for pos in range(0, MAX_TABLE_LEN, ENTRY.size):
        chunk = raw[pos:pos + ENTRY.size]
        if len(chunk) < ENTRY.size:
            raise PartitionError(f"partition table truncated at byte {pos:#x}")
        if chunk == b"\xff" * ENTRY.size:
            break
        if chunk[:16] == MD5_MAGIC:
            if hashlib.md5(seen).digest() != chunk[16:]:
                raise PartitionError("partition table MD5 does not match its entries (corrupt firmware file?)")
            continue
        magic, ptype, subtype, offset, size, label, flags = ENTRY.unpack(chunk)
        if magic != MAGIC:
            raise PartitionError(f"no partition entry at table byte {pos:#x} (magic {magic.hex()}, want aa50)")
        parts.append(Partition(label.rstrip(b"\x00").decode("ascii", "replace"), ptype, subtype, offset, size, flags))
        seen += chunk
    else:
        raise PartitionError("partition table has no end marker within 0xC00 bytes")
    if not parts:
        raise PartitionError("partition table is empty")
    return parts


def image_chip(bin_data: bytes) -> str:
    """The chip an ESP image (a MicroPython .bin starts with its bootloader) is built for."""
    if len(bin_data) < 24 or bin_data[0] != IMAGE_MAGIC:
        raise PartitionError("not an ESP firmware image (first byte is not 0xE9): is this a MicroPython .bin "
                             "for ESP32? (.uf2, .elf and .hex files are not)")
    chip_id = struct.unpack_from("<H", bin_data, 12)[0]
    chip = CHIP_IDS.get(chip_id)
    if chip is None:
        raise PartitionError(f"firmware image has unknown chip id {chip_id:#x}")
    return chip


@dataclass(frozen=True)
class FirmwareInfo:
    chip: str
    flash_offset: int  # where the .bin is written (the bootloader offset)
    size: int
    partitions: list[Partition]

    def find(self, label: str) -> Partition | None:
        return next((p for p in self.partitions if p.label == label), None)

    @property
    def end(self) -> int:
        """Where the .bin's last byte lands in flash."""
        return self.flash_offset + self.size

    @property
    def app(self) -> Partition:
        p = next((q for q in self.partitions if q.type == APP), None)
        if p is None:
            raise PartitionError("this firmware's partition table has no app partition")
        return p


def read_firmware(bin_data: bytes) -> FirmwareInfo:
    """Chip, flash offset and partition table of a MicroPython firmware .bin."""
    chip = image_chip(bin_data)
    base = BOOTLOADER_OFFSET.get(chip, 0)
    at = TABLE_OFFSET - base
    if len(bin_data) < at + ENTRY.size:
        raise PartitionError(f"firmware file is {len(bin_data)} bytes: too short to hold a partition table at "
                             f"flash {TABLE_OFFSET:#x} (file offset {at:#x} for {chip}); is this the full "
                             "MicroPython .bin (not just the app)?")
    parts = parse_table(bin_data[at:at + MAX_TABLE_LEN + ENTRY.size])
    return FirmwareInfo(chip, base, len(bin_data), parts)


def format_table(parts: list[Partition]) -> str:
    rows = [f"{'label':<10} {'type':<14} {'offset':>10} {'size':>10}"]
    rows += [f"{p.label:<10} {p.kind:<14} {p.offset:#10x} {p.size:#10x}" for p in parts]
    return "\n".join(rows)
