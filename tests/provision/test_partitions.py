"""Partition tables parsed out of MicroPython-shaped .bins for ESP32 (at 0x1000) and ESP32-S3 (at 0)."""

from __future__ import annotations

import hashlib

import fwbuild
import pytest

from segel.provision import partitions as P


@pytest.mark.parametrize(("chip", "rows", "base", "vfs"), [
    ("esp32", fwbuild.TABLE_4MIB, 0x1000, (0x200000, 0x200000)),
    ("esp32s3", fwbuild.TABLE_8MIB, 0x0, (0x200000, 0x600000)),
    ("esp32", fwbuild.TABLE_4MIBPLUS, 0x1000, None),
])
def test_partitions_come_from_the_firmwares_own_table(chip: str, rows: list, base: int, vfs: tuple | None) -> None:
    info = P.read_firmware(fwbuild.micropython_bin(chip, rows))
    assert info.chip == chip
    assert info.flash_offset == base
    assert [(p.label, p.type, p.subtype, p.offset, p.size) for p in info.partitions] == rows
    found = info.find("vfs")
    assert (found.offset, found.size) == vfs if found else vfs is None
    assert found is None or found.kind == "data/fat"
    assert info.app.label == "factory"


def test_table_without_md5_entry_parses() -> None:
    info = P.read_firmware(fwbuild.micropython_bin("esp32", fwbuild.TABLE_4MIB, md5=False))
    assert info.find("vfs").size == 0x200000  # type: ignore[union-attr]


def test_corrupt_md5_is_refused() -> None:
    raw = bytearray(fwbuild.table_bytes(fwbuild.TABLE_4MIB))
    raw[4] ^= 1  # offset of the first entry
    with pytest.raises(P.PartitionError, match="MD5"):
        P.parse_table(bytes(raw))
    good = fwbuild.table_bytes(fwbuild.TABLE_4MIB)
    assert good[128 + 16:128 + 32] == hashlib.md5(good[:128]).digest()
    assert len(good) == 0xC00 and good[160:] == b"\xff" * (0xC00 - 160)


def test_not_a_firmware_file() -> None:
    with pytest.raises(P.PartitionError, match="not an ESP firmware image"):
        P.read_firmware(b"UF2\n" + b"\0" * 100)
    with pytest.raises(P.PartitionError, match="too short"):
        P.read_firmware(fwbuild.micropython_bin("esp32", fwbuild.TABLE_4MIB)[:0x2000])


def test_garbage_where_the_table_should_be() -> None:
    b = bytearray(fwbuild.micropython_bin("esp32s3", fwbuild.TABLE_8MIB))
    b[0x8000:0x8002] = b"\x12\x34"
    with pytest.raises(P.PartitionError, match="magic 1234"):
        P.read_firmware(bytes(b))
