"""Build device images for registered trackers (the library behind `segel image` and `segel flash`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from segel import paths
from segel import registry as reg
from segel.provision import devconfig, packages, private, roles
from segel.provision.fsregion import FsRegion, fs_region, release_for, unchecked_note
from segel.provision.image import BuiltImage, Compiler, ImageError, ImageSpec, firmware_files, make_littlefs, \
    mpy_version_for
from segel.provision.partitions import FirmwareInfo, PartitionError, image_chip, read_firmware
from segel.provision.settings import Fleet

FirmwareChoice = str | Path | list[str | Path] | tuple[str | Path, ...] | None


def firmware_bin(fleet: Fleet, mcu: str, override: FirmwareChoice = None) -> Path:
    """The MicroPython .bin for a chip: the --micropython file built for it (several may be given,
    one per chip), else fleet/firmware/<mcu>.bin (e.g. firmware/esp32s3.bin)."""
    given = [Path(o) for o in (override if isinstance(override, (list, tuple)) else [override] if override else [])]
    for p in given:
        if not p.is_file():
            raise ImageError(f"MicroPython firmware {p} not found")
    if len(given) == 1:
        return given[0]  # a wrong chip is reported by load_firmware with both names
    for p in given:
        try:
            if image_chip(p.read_bytes()[:64]) == mcu:
                return p
        except PartitionError as e:
            raise ImageError(f"{p}: {e}") from e
    if given:
        raise ImageError(f"none of the --micropython files ({', '.join(map(str, given))}) is built for {mcu}")
    p = fleet.root / "firmware" / f"{mcu}.bin"
    if not p.is_file():
        raise ImageError(f"MicroPython firmware for {mcu} not found: pass --micropython FIRMWARE.bin "
                         f"(or put the MicroPython .bin for {mcu} at {p})")
    return p


@dataclass(frozen=True)
class Firmware:
    """A MicroPython .bin for one board, and where that release will find its filesystem."""

    path: Path
    info: FirmwareInfo
    region: FsRegion
    notes: list[str] = field(default_factory=list)  # which release, and why the region is where it is

    @property
    def chip(self) -> str:
        return self.info.chip


def board_flash_bytes(board: dict[str, Any]) -> int:
    mb = board.get("flash_mb")
    if not isinstance(mb, int) or mb <= 0:
        raise ImageError(f"board file {board.get('id')} has no flash_mb (the flash size in MiB): add it")
    return mb << 20


def load_firmware(path: Path, board: dict[str, Any], fleet_release: str = "1.27") -> Firmware:
    """Parse the .bin, check it suits the board's chip, and compute its filesystem region for the
    board's flash size as the .bin's MicroPython release does (fsregion.py)."""
    try:
        data = path.read_bytes()
        info = read_firmware(data)
        mcu = board.get("mcu")
        if info.chip != mcu:
            raise ImageError(f"{path} is MicroPython for {info.chip}, but board {board.get('id')} has an "
                             f"{mcu}: use the {mcu} firmware")
        release, said = release_for(data, fleet_release)
        region = fs_region(info, board_flash_bytes(board), release)
        if info.end > region.offset:
            raise PartitionError(f"firmware ends at {info.end:#x}, inside the filesystem region at {region.offset:#x}")
    except PartitionError as e:
        raise ImageError(f"{path}: {e}") from e
    notes = [said, region.explain()]
    extra = unchecked_note(release)
    if extra:
        notes.append(extra)
    return Firmware(path, info, region, notes)


@dataclass
class ImageBuilder:
    """Builds images for one fleet; compiled firmware is shared by every device it builds."""

    fleet: Fleet
    db: str | None = None
    micropython_bin: FirmwareChoice = None
    firmware_dir: Path | None = None

    def __post_init__(self) -> None:
        self.settings = self.fleet.settings()
        self.target = mpy_version_for(self.settings.micropython)
        self.compiler = Compiler(self.fleet.images_dir / ".mpy-cache", self.target)
        self._fw_files: dict[str, dict[str, bytes]] = {}
        self._firmware: dict[tuple[str, str, int], Firmware] = {}
        self._secret = self.fleet.secret()

    def firmware_files(self, role: str) -> dict[str, bytes]:
        """main.py and the compiled modules an image for this role carries (roles.py)."""
        if role not in self._fw_files:
            fw_dir = self.firmware_dir or paths.firmware_dir()
            try:
                mods = roles.role_modules(fw_dir, role)
            except roles.RoleError as e:
                raise ImageError(str(e)) from e
            self._fw_files[role] = firmware_files(fw_dir, self.compiler, mods)
        return self._fw_files[role]

    def firmware_for(self, board: dict[str, Any]) -> Firmware:
        mcu = str(board.get("mcu"))
        path = firmware_bin(self.fleet, mcu, self.micropython_bin)
        key = (mcu, str(path), board_flash_bytes(board))
        if key not in self._firmware:
            self._firmware[key] = load_firmware(path, board, self.settings.micropython)
        return self._firmware[key]

    def build(self, dev: reg.Device) -> BuiltImage:
        board = devconfig.load_board(dev.board)
        fw = self.firmware_for(board)
        cfg = devconfig.load_config(self.fleet, dev, self.db)
        pkgs = packages.resolve(self.fleet.package_cache, packages.board_packages(board), self.target[0])
        spec = ImageSpec(cfg, board, self.firmware_files(dev.role), pkgs)
        img = make_littlefs(spec.files(), fw.region)
        # the fleet secret must never leave this laptop: refuse an image that holds it in any form
        for form in (self._secret, self._secret.hex().encode(), self._secret.hex().upper().encode()):
            if form in img.data:
                raise ImageError(f"device {dev.hex}: the fleet secret appears in the image; refusing to write it")
        return img

    def save(self, dev: reg.Device, img: BuiltImage) -> Path:
        """FLEET/images/<id>.img, owner-only (it holds the device key)."""
        private.private_dir(self.fleet.images_dir)
        return private.write_bytes(self.fleet.image_path(dev.hex), img.data)

    def build_to_file(self, dev: reg.Device) -> tuple[Path, BuiltImage]:
        img = self.build(dev)
        return self.save(dev, img), img


@dataclass(frozen=True)
class BenchResult:
    board: str
    count: int
    seconds_first: float
    seconds_total: float
    image_bytes: int
    used_bytes: int
    content_bytes: int


def bench(builder: ImageBuilder, devices: list[reg.Device], on_done: Callable[[], None] | None = None) -> BenchResult:
    """Build every device's image (in memory); the first includes compiling the firmware."""
    t0 = time.perf_counter()
    first = 0.0
    img = None
    for i, d in enumerate(devices):
        img = builder.build(d)
        if i == 0:
            first = time.perf_counter() - t0
        if on_done:
            on_done()
    assert img is not None
    return BenchResult(devices[0].board, len(devices), first, time.perf_counter() - t0, len(img.data),
                       img.used_bytes, img.content_bytes)
