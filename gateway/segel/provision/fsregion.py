"""Where MicroPython's filesystem lives in flash: computed for a firmware .bin exactly as its release does.

Read from MicroPython's esp32 port at tags v1.24.0, v1.25.0, v1.26.0, v1.27.0 and v1.28.0:

- `ports/esp32/modules/flashbdev.py` (all tags): the block device is the data partition labelled
  "vfs" (`esp32.Partition.find(TYPE_DATA, label="vfs")`, block size 4096); failing that the
  TinyUF2 "ffat" partition, with 512-byte blocks, which `inisetup.py` formats as FAT.
- `ports/esp32/modules/_boot.py` mounts it (`vfs.mount(bdev, "/")`, littlefs detected by its
  superblock); when that fails, `inisetup.py` formats it only if its first block is erased, and
  otherwise prints "The filesystem appears to be corrupted" every 3 s for ever.
- `ports/esp32/main.c`, `boardctrl_startup()`, from v1.26.0: `esp_flash_get_physical_size()`
  (the JEDEC id the chip answers) becomes the flash size, and when the table has neither "vfs"
  nor "ffat" a "vfs" partition is registered from the end of the last partition in the table
  (`max(address + size)` over every partition) to the end of that physical flash. v1.24.0 and
  v1.25.0 have no such code: a table without "vfs" leaves MicroPython with no filesystem.
- `ports/esp32/esp32_partition.c`: block count = partition size // block size (4096).
- The stock tables: `boards/sdkconfig.base` and `boards/ESP32_GENERIC_S3/sdkconfig.board` name
  `partitions-4MiB.csv` (ESP32_GENERIC) and `partitions-8MiB.csv` (ESP32_GENERIC_S3), both with a
  "vfs" row, up to v1.25.0; from v1.26.0 both boards use `partitions-4MiBplus.csv`, which has
  none (nvs, phy_init, factory up to 0x200000).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from segel.provision.partitions import DATA, FirmwareInfo, Partition, PartitionError

BLOCK_SIZE = 4096  # esp32_partition.c NATIVE_BLOCK_SIZE_BYTES: the block size flashbdev.py asks for
RUNTIME_VFS_SINCE = (1, 26)  # main.c boardctrl_startup() registers "vfs" at run time from v1.26.0
CHECKED_RELEASES = ((1, 24), (1, 28))  # the releases whose source this module was checked against

# sys.version and the REPL banner: "MicroPython " MICROPY_GIT_TAG " on " MICROPY_BUILD_DATE (py/mpconfig.h)
_BANNER = re.compile(rb"MicroPython v(\d+)\.(\d+)\.(\d+)[-.\w]* on \d{4}-\d\d-\d\d")

Release = tuple[int, int]


def release_in_bin(bin_data: bytes) -> tuple[int, int, int] | None:
    """The MicroPython release a firmware .bin was built from, read from its version string."""
    m = _BANNER.search(bin_data)
    return (int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else None


def parse_release(text: str) -> Release:
    m = re.fullmatch(r"v?(\d+)\.(\d+)(?:\.\d+)?", text.strip())
    if not m:
        raise PartitionError(f"MicroPython release {text!r} is not like '1.27'")
    return int(m.group(1)), int(m.group(2))


def release_text(rel: Release) -> str:
    return f"{rel[0]}.{rel[1]}"


@dataclass(frozen=True)
class FsRegion:
    """The flash MicroPython mounts as its filesystem, and how that was decided."""

    offset: int
    size: int  # a whole number of 4096-byte blocks
    runtime: bool  # True: created at boot from the flash size (no "vfs" row), False: the table's "vfs" row
    release: Release
    flash_bytes: int  # the flash size the region was computed for (the board file's)
    after: Partition | None = None  # runtime: the partition the region follows
    label: str = "vfs"

    @property
    def end(self) -> int:
        return self.offset + self.size

    @property
    def block_count(self) -> int:
        return self.size // BLOCK_SIZE

    def explain(self) -> str:
        """One line a technician can check against MicroPython's source."""
        rel = release_text(self.release)
        mib = _size_text(self.size)
        if not self.runtime:
            return (f"filesystem: the table's vfs row, {self.offset:#x}..{self.end:#x} ({mib}, "
                    f"{self.block_count} blocks of {BLOCK_SIZE} B), mounted by MicroPython {rel} as littlefs")
        after = f"{self.after.label} ends {self.after.end:#x}" if self.after else f"table ends {self.offset:#x}"
        return (f"filesystem: no vfs row, so MicroPython {rel} makes one at boot from the end of the last "
                f"partition ({after}) to the end of the {_size_text(self.flash_bytes)} flash: "
                f"{self.offset:#x}..{self.end:#x} ({mib}, {self.block_count} blocks of {BLOCK_SIZE} B)")

    def as_partition(self) -> Partition:
        return Partition(self.label, DATA, 0x81, self.offset, self.size)


def _size_text(n: int) -> str:
    if n % (1 << 20) == 0:
        return f"{n >> 20} MiB"
    return f"{n / (1 << 20):.2f} MiB" if n >= 1 << 20 else f"{n >> 10} KiB"


def fs_region(info: FirmwareInfo, flash_bytes: int, release: Release) -> FsRegion:
    """The filesystem region MicroPython `release` uses with this partition table on a chip with
    `flash_bytes` of flash (see the module docstring for where each rule comes from)."""
    vfs = info.find("vfs")
    if vfs is not None:
        if vfs.type != DATA:
            raise PartitionError(f"the partition labelled 'vfs' is {vfs.kind}, not a data partition: "
                                 "MicroPython would not mount it (flashbdev.py looks for a data partition)")
        if vfs.end > flash_bytes:
            raise PartitionError(f"vfs partition ends at {vfs.end:#x}, beyond this board's "
                                 f"{_size_text(flash_bytes)} flash: use the firmware build for this flash size")
        return FsRegion(vfs.offset, vfs.size - vfs.size % BLOCK_SIZE, False, release, flash_bytes)
    if info.find("ffat") is not None:
        raise PartitionError("this firmware's table has an 'ffat' partition and no 'vfs' one (a TinyUF2 layout): "
                             "MicroPython puts a FAT filesystem with 512-byte blocks there, not littlefs; "
                             "use the stock ESP32_GENERIC / ESP32_GENERIC_S3 build")
    labels = ", ".join(f"{q.label} ({q.kind})" for q in info.partitions)
    if release < RUNTIME_VFS_SINCE:
        raise PartitionError(
            f"this firmware's partition table has no 'vfs' row ({labels}), and MicroPython {release_text(release)} "
            "creates no filesystem without one (that came in 1.26): use the stock ESP32_GENERIC / "
            "ESP32_GENERIC_S3 build of that release, whose table has one, or MicroPython 1.26 or later")
    last = max(info.partitions, key=lambda p: p.end)
    if flash_bytes <= last.end:
        raise PartitionError(f"no room for a filesystem: the last partition ({last.label}) ends at {last.end:#x}, "
                             f"at or past the end of the {_size_text(flash_bytes)} flash")
    size = flash_bytes - last.end
    size -= size % BLOCK_SIZE  # esp32_partition.c: block count = size // 4096
    return FsRegion(last.end, size, True, release, flash_bytes, after=last)


def release_for(bin_data: bytes, fallback: str) -> tuple[Release, str]:
    """The release to compute the region for: the one named inside the .bin, else the fleet's
    setting; with a note saying which."""
    found = release_in_bin(bin_data)
    if found:
        return (found[0], found[1]), f"MicroPython {found[0]}.{found[1]}.{found[2]} (named in the .bin)"
    rel = parse_release(fallback)
    return rel, f"MicroPython {release_text(rel)} ([fleet] micropython; the .bin names no release)"


def unchecked_note(rel: Release) -> str | None:
    """A note when the release is outside those whose source was read for these rules."""
    lo, hi = CHECKED_RELEASES
    if lo <= rel <= hi:
        return None
    return (f"note: MicroPython {release_text(rel)} is outside the releases whose esp32 port was checked "
            f"({release_text(lo)} to {release_text(hi)}); the filesystem rules of the nearest one are used")
