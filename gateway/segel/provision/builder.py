"""Build device images for registered trackers (the library behind `segel image` and `segel flash`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from segel import paths
from segel import registry as reg
from segel.provision import devconfig, packages
from segel.provision.image import BuiltImage, Compiler, ImageError, ImageSpec, firmware_files, make_littlefs, \
    mpy_version_for
from segel.provision.partitions import FirmwareInfo, PartitionError, check_layout, image_chip, read_firmware
from segel.provision.settings import Fleet


def firmware_bin(fleet: Fleet, mcu: str, override: str | Path | list[str | Path] | tuple[str | Path, ...] | None = None
                 ) -> Path:
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


def load_firmware(path: Path, board: dict[str, object]) -> FirmwareInfo:
    """Parse the .bin and check it suits the board: chip and flash size."""
    try:
        info = read_firmware(path.read_bytes())
        mcu = board.get("mcu")
        if info.chip != mcu:
            raise ImageError(f"{path} is MicroPython for {info.chip}, but board {board.get('id')} has an "
                                 f"{mcu}: use the {mcu} firmware")
        flash_mb = board.get("flash_mb")
        check_layout(info, int(flash_mb) << 20 if isinstance(flash_mb, int) else None)
    except PartitionError as e:
        raise ImageError(f"{path}: {e}") from e
    return info


@dataclass
class ImageBuilder:
    """Builds images for one fleet; compiled firmware is shared by every device it builds."""

    fleet: Fleet
    db: str | None = None
    micropython_bin: str | Path | list[str | Path] | tuple[str | Path, ...] | None = None
    firmware_dir: Path | None = None

    def __post_init__(self) -> None:
        s = self.fleet.settings()
        self.target = mpy_version_for(s.micropython)
        self.compiler = Compiler(self.fleet.images_dir / ".mpy-cache", self.target)
        self._fw_files: dict[str, bytes] | None = None
        self._fw_info: dict[str, FirmwareInfo] = {}
        self._secret = self.fleet.secret()

    def firmware(self) -> dict[str, bytes]:
        if self._fw_files is None:
            self._fw_files = firmware_files(self.firmware_dir or paths.firmware_dir(), self.compiler)
        return self._fw_files

    def firmware_info(self, board: dict[str, object]) -> tuple[Path, FirmwareInfo]:
        mcu = str(board.get("mcu"))
        path = firmware_bin(self.fleet, mcu, self.micropython_bin)
        key = f"{mcu}:{path}"
        if key not in self._fw_info:
            self._fw_info[key] = load_firmware(path, board)
        return path, self._fw_info[key]

    def build(self, dev: reg.Device) -> BuiltImage:
        board = devconfig.load_board(dev.board)
        _, info = self.firmware_info(board)
        cfg = devconfig.load_config(self.fleet, dev, self.db)
        pkgs = packages.resolve(self.fleet.package_cache, packages.board_packages(board), self.target[0])
        spec = ImageSpec(cfg, board, self.firmware(), pkgs)
        img = make_littlefs(spec.files(), info.vfs)
        # the fleet secret must never leave this laptop: refuse an image that holds it in any form
        for form in (self._secret, self._secret.hex().encode(), self._secret.hex().upper().encode()):
            if form in img.data:
                raise ImageError(f"device {dev.hex}: the fleet secret appears in the image; refusing to write it")
        return img

    def build_to_file(self, dev: reg.Device) -> tuple[Path, BuiltImage]:
        img = self.build(dev)
        out = self.fleet.image_path(dev.hex)
        devconfig.write_private(out.with_suffix(".tmp"), "")
        out.with_suffix(".tmp").write_bytes(img.data)  # holds the device key: owner-only
        out.with_suffix(".tmp").replace(out)
        return out, img


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
