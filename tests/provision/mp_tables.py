"""Test data: MicroPython's esp32 partition CSVs and stock build settings at tags v1.24.0 to v1.27.0.

The partition rows are those of ports/esp32/partitions-*.csv at each tag (the same rows hold for
the .0 releases listed); which table and flash-size header a stock build uses comes from
ports/esp32/boards/sdkconfig.base (ESP32_GENERIC) and ports/esp32/boards/ESP32_GENERIC_S3/sdkconfig.board.
"""

from __future__ import annotations

from dataclasses import dataclass

HEADER = "# Name,   Type, SubType, Offset,  Size, Flags\n"

# v1.26.0, v1.27.0 (also v1.28.0): no vfs row; MicroPython makes one at boot
P4MIBPLUS = HEADER + """nvs,      data, nvs,     0x9000,  0x6000,
phy_init, data, phy,     0xf000,  0x1000,
factory,  app,  factory, 0x10000, 0x1F0000,
"""
P4MIB_OTA = HEADER + """nvs,      data, nvs,     0x9000,   0x4000,
otadata,  data, ota,     0xd000,   0x2000,
phy_init, data, phy,     0xf000,   0x1000,
ota_0,    app,  ota_0,   0x10000,  0x180000,
ota_1,    app,  ota_1,   0x190000, 0x180000,
"""
# v1.24.0, v1.25.0: the same rows and a vfs row (v1.26.0 dropped it and renamed 4MiB to 4MiBplus)
P4MIB = P4MIBPLUS + "vfs,      data, fat,     0x200000, 0x200000,\n"
P8MIB = P4MIBPLUS + "vfs,      data, fat,     0x200000, 0x600000,\n"
P4MIB_OTA_OLD = P4MIB_OTA + "vfs,      data, fat,     0x310000, 0x0f0000,\n"

CSV = {
    ("v1.24.0", "partitions-4MiB.csv"): P4MIB, ("v1.24.0", "partitions-8MiB.csv"): P8MIB,
    ("v1.24.0", "partitions-4MiB-ota.csv"): P4MIB_OTA_OLD,
    ("v1.25.0", "partitions-4MiB.csv"): P4MIB, ("v1.25.0", "partitions-8MiB.csv"): P8MIB,
    ("v1.25.0", "partitions-4MiB-ota.csv"): P4MIB_OTA_OLD,
    ("v1.26.0", "partitions-4MiBplus.csv"): P4MIBPLUS, ("v1.26.0", "partitions-4MiB-ota.csv"): P4MIB_OTA,
    ("v1.27.0", "partitions-4MiBplus.csv"): P4MIBPLUS, ("v1.27.0", "partitions-4MiB-ota.csv"): P4MIB_OTA,
}

RELEASES = ("v1.24.0", "v1.25.0", "v1.26.0", "v1.27.0")


@dataclass(frozen=True)
class Stock:
    """A stock MicroPython build: which CSV, and the flash size its bootloader header names."""

    tag: str
    board: str  # MicroPython's board name
    chip: str
    csv: str
    header_flash_mb: int
    flash_mode: str  # "dio" or "qio"


def stock(tag: str, chip: str) -> Stock:
    old = tag in ("v1.24.0", "v1.25.0")
    if chip == "esp32":  # sdkconfig.base: 4MB, partitions-4MiB.csv -> partitions-4MiBplus.csv at v1.26.0
        return Stock(tag, "ESP32_GENERIC-SPIRAM", chip, "partitions-4MiB.csv" if old else "partitions-4MiBplus.csv",
                     4, "dio")
    # ESP32_GENERIC_S3/sdkconfig.board: 8MB + partitions-8MiB.csv up to v1.25.0; from v1.26.0 it sets
    # neither, so sdkconfig.base's 4MB + partitions-4MiBplus.csv apply (the flash is sized at boot)
    return Stock(tag, "ESP32_GENERIC_S3-SPIRAM_OCT", chip, "partitions-8MiB.csv" if old else "partitions-4MiBplus.csv",
                 8 if old else 4, "qio")
