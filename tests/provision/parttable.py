"""Test helper: ESP-IDF partition tables from CSV to the binary the bootloader reads at flash 0x8000.

Written from ESP-IDF's description of the format (components/partition_table/gen_esp32part.py and
the "Partition Tables" API guide), independently of segel.provision.partitions, which reads it:

CSV: one partition a line, `Name, Type, SubType, Offset, Size, Flags`; `#` comments and blank
lines skipped; Type `app` (0x00) or `data` (0x01) or a number; SubType a name of that type
(app: factory 0x00, ota_0..ota_15 0x10.., test 0x20; data: ota 0x00, phy 0x01, nvs 0x02, coredump
0x03, nvs_keys 0x04, efuse 0x05, undefined 0x06, esphttpd 0x80, fat 0x81, spiffs 0x82,
littlefs 0x83) or a number, empty for data = undefined; Offset and Size in decimal, hex or with a
K/M suffix, an empty Offset follows the previous partition (the first one the table's 0x1000
bytes), aligned to 0x10000 for app and 0x1000 for data; Flags `encrypted` (bit 0), `readonly`
(bit 1), joined by `:`.

Binary: each partition a 32-byte little-endian entry `<2sBBLL16sL`: magic AA 50, type, subtype,
offset, size, name (NUL-padded to 16 bytes), flags; then (MD5 on, the ESP-IDF default
CONFIG_PARTITION_TABLE_MD5) the entry `EB EB` + 14 x FF + MD5 of all entries before it; the rest
up to 0xC00 bytes filled with FF (the first all-FF entry ends the table).
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

TABLE_OFFSET = 0x8000
TABLE_SIZE = 0x1000  # the partition-table partition; entries start after it
MAX_LEN = 0xC00
ENTRY = "<2sBBLL16sL"
TYPES = {"app": 0x00, "data": 0x01}
SUBTYPES = {
    0x00: {"factory": 0x00, "test": 0x20, **{f"ota_{i}": 0x10 + i for i in range(16)}},
    0x01: {"ota": 0x00, "phy": 0x01, "nvs": 0x02, "coredump": 0x03, "nvs_keys": 0x04, "efuse": 0x05,
           "undefined": 0x06, "esphttpd": 0x80, "fat": 0x81, "spiffs": 0x82, "littlefs": 0x83},
}
ALIGN = {0x00: 0x10000, 0x01: 0x1000}
FLAGS = {"encrypted": 0, "readonly": 1}


@dataclass(frozen=True)
class Row:
    name: str
    type: int
    subtype: int
    offset: int
    size: int
    flags: int = 0

    def astuple(self) -> tuple[str, int, int, int, int]:
        return self.name, self.type, self.subtype, self.offset, self.size


def _int(text: str, names: dict[str, int] | None = None) -> int:
    t = text.strip()
    if names and t in names:
        return names[t]
    for suffix, mult in (("k", 1024), ("m", 1024 * 1024)):
        if t.lower().endswith(suffix):
            return _int(t[:-1]) * mult
    return int(t, 0)


def parse_csv(text: str) -> list[Row]:
    rows: list[Row] = []
    end = TABLE_OFFSET + TABLE_SIZE
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        f = [x.strip() for x in (line + ",,,,").split(",")]
        ptype = _int(f[1], TYPES)
        if f[2] == "":
            if ptype == 0x00:
                raise ValueError(f"line {n}: an app partition needs a subtype")
            subtype = SUBTYPES[0x01]["undefined"]
        else:
            subtype = _int(f[2], SUBTYPES.get(ptype, {}))
        if f[3]:
            offset = _int(f[3])
        else:
            align = ALIGN.get(ptype, 0x1000)
            offset = -(-end // align) * align
        if offset < end:
            raise ValueError(f"line {n}: offset {offset:#x} overlaps what comes before ({end:#x})")
        size = _int(f[4])
        flags = 0
        for flag in filter(None, f[5].split(":")):
            flags |= 1 << FLAGS[flag]
        rows.append(Row(f[0], ptype, subtype, offset, size, flags))
        end = offset + size
    return rows


def to_binary(rows: list[Row], md5: bool = True) -> bytes:
    out = b"".join(struct.pack(ENTRY, b"\xaa\x50", r.type, r.subtype, r.offset, r.size, r.name.encode(), r.flags)
                   for r in rows)
    if md5:
        out += b"\xeb\xeb" + b"\xff" * 14 + hashlib.md5(out).digest()
    if len(out) >= MAX_LEN:
        raise ValueError("partition table too long")
    return out + b"\xff" * (MAX_LEN - len(out))
