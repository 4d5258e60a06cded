"""Put MicroPython and a device image on a board through esptool's Python API, in one session.

`plan()` decides what goes where (and fails early: wrong chip, image larger than its partition,
a device already flashed at its key epoch); `FlashPlan.describe()` is the exact `--dry-run`
text; `execute()` connects once, checks the chip and flash size, writes (esptool verifies every
write) and resets the board.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from segel import registry as reg
from segel.provision import devconfig
from segel.provision.builder import ImageBuilder
from segel.provision.image import ImageError
from segel.provision.settings import Fleet

DEFAULT_BAUD = 460800
ProgressFn = Callable[[int, int], None]


class FlashError(RuntimeError):
    """A flashing failure, explained for a technician."""


@dataclass(frozen=True)
class Write:
    offset: int
    data: bytes
    what: str
    source: str

    @property
    def end(self) -> int:
        return self.offset + len(self.data)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass
class FlashPlan:
    device: reg.Device
    chip: str
    port: str
    baud: int
    writes: list[Write] = field(default_factory=list)
    erase: bool = False
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """Exactly what would be written where (the --dry-run output)."""
        lines = [f"device {self.device.hex}  board {self.device.board}  key epoch {self.device.key_epoch}",
                 f"port {self.port}  chip {self.chip}  baud {self.baud}"]
        lines += self.notes
        if self.erase:
            lines.append("erase the whole flash")
        for w in self.writes:
            lines.append(f"write {w.offset:#010x}..{w.end:#010x}  {len(w.data):>9,} B  {w.what:<24} {w.source}  "
                         f"sha256 {w.sha256[:16]}")
        lines.append("verify every write, then hard-reset the board")
        return "\n".join(lines)


# ---- flash log: re-imaging needs a new key epoch --------------------------------------------------


def flashed_at(fleet: Fleet, device_id: int, key_epoch: int) -> float | None:
    """When this device was last flashed successfully at this key epoch (None: never)."""
    if not fleet.flash_log.is_file():
        return None
    when = None
    for line in fleet.flash_log.read_text().splitlines():
        rec = json.loads(line)
        if rec.get("device") == f"{device_id:06x}" and rec.get("key_epoch") == key_epoch and rec.get("ok"):
            when = float(rec["at"])
    return when


def log_flash(fleet: Fleet, plan: FlashPlan, ok: bool, error: str | None = None) -> None:
    rec: dict[str, Any] = {"at": time.time(), "device": plan.device.hex, "key_epoch": plan.device.key_epoch,
                           "board": plan.device.board, "port": plan.port, "ok": ok}
    if error:
        rec["error"] = error
    with fleet.flash_log.open("a") as fh:
        fh.write(json.dumps(rec) + "\n")


def plan(fleet: Fleet, builder: ImageBuilder, device: reg.Device, port: str, baud: int = DEFAULT_BAUD,
         write_micropython: bool = True, erase: bool = False, reimage: bool = False,
         dry_run: bool = False) -> FlashPlan:
    """Build the device's image and decide every write. Refuses to flash a device a second time
    at the same key epoch (its counters would repeat under one key) unless reimage=True, which
    bumps the epoch first (a dry run only says it would)."""
    when = flashed_at(fleet, device.device_id, device.key_epoch)
    notes = []
    if when is not None:
        if not reimage:
            raise FlashError(
                f"device {device.hex} was already flashed at key epoch {device.key_epoch} "
                f"({time.strftime('%Y-%m-%d %H:%M', time.localtime(when))}); flashing it again restarts its "
                "counters, so it needs a new key epoch: add --reimage")
        if dry_run:
            notes.append(f"re-image: key epoch {device.key_epoch} -> {device.key_epoch + 1} (not bumped in a dry run; "
                         "the image below is at the current epoch)")
        else:
            device = devconfig.reimage(fleet, device.hex, builder.db)
    board = devconfig.load_board(device.board)
    fw_path, info = builder.firmware_info(board)
    try:
        image = builder.build(device)
    except ImageError as e:
        raise FlashError(str(e)) from e
    vfs = info.vfs
    if len(image.data) > vfs.size:  # make_littlefs sizes to the partition; guard a stale or foreign image
        raise FlashError(f"image is {len(image.data)} bytes, larger than the vfs partition ({vfs.size} bytes)")
    p = FlashPlan(device, info.chip, port, baud, erase=erase, notes=notes)
    if write_micropython:
        p.writes.append(Write(info.flash_offset, fw_path.read_bytes(), "MicroPython", str(fw_path)))
    img_path = fleet.image_path(device.hex)
    img_path.parent.mkdir(parents=True, exist_ok=True)
    devconfig.write_private(img_path.with_suffix(".tmp"), "")
    img_path.with_suffix(".tmp").write_bytes(image.data)
    img_path.with_suffix(".tmp").replace(img_path)
    p.writes.append(Write(vfs.offset, image.data, f"filesystem ({vfs.label} partition)", str(img_path)))
    return p


# ---- esptool session ------------------------------------------------------------------------------


def _chip_name(esp: Any) -> str:
    return str(getattr(esp, "CHIP_NAME", "?")).lower().replace("-", "")


def explain(err: BaseException, port: str) -> str:
    """esptool's error, turned into what to do."""
    text = str(err)
    low = text.lower()
    if "doesn't exist" in low or "no such file" in low or "could not open" in low and "busy" in low:
        return (f"cannot open {port}: the port does not exist or another program holds it. Check the USB "
                "cable, then list ports with `ls /dev/ttyUSB* /dev/ttyACM*` (macOS: /dev/cu.*); close any "
                "serial monitor using it.")
    if "permission denied" in low:
        return f"no permission to open {port}: add your user to the dialout group (then log in again)"
    if "failed to connect" in low or "no serial data" in low or "wrong boot mode" in low or "invalid head" in low:
        return (f"no answer from a bootloader on {port}: the board is not in download mode. Hold BOOT (IO0), "
                "press and release RST, release BOOT, then run the command again. "
                f"(esptool: {text.splitlines()[0]})")
    return f"esptool: {text.strip()}"


@contextlib.contextmanager
def _esptool_output(on_progress: ProgressFn | None, messages: list[str]) -> Iterator[None]:
    """Route esptool's log through us: its progress to on_progress, its text into messages."""
    from esp_pylib.logger import EspLog
    from esptool.logger import TemplateLogger, log

    class Relay(TemplateLogger):  # type: ignore[misc]
        def print(self, *args: Any, **kwargs: Any) -> None:
            messages.append(" ".join(str(a) for a in args))

        def note(self, message: str) -> None:
            messages.append("note: " + message)

        def warning(self, message: str) -> None:
            messages.append("warning: " + message)

        def error(self, message: str) -> None:
            messages.append("error: " + message)

        def stage(self, finish: bool = False) -> None:
            pass

        def progress_bar(self, cur_iter: int, total_iters: int, prefix: str = "", suffix: str = "",
                         bar_length: int = 30) -> None:
            if on_progress:
                on_progress(cur_iter, total_iters)

        def set_verbosity(self, verbosity: str) -> None:
            pass

    previous = EspLog.instance
    log.set_logger(Relay())
    try:
        yield
    finally:
        EspLog.instance = previous


@dataclass
class FlashResult:
    chip: str
    flash_size: str | None
    seconds: float
    messages: list[str]


def check_chip(detected: str, expected: str, port: str) -> None:
    if detected != expected:
        raise FlashError(f"the board on {port} is an {detected}, but this firmware and board file are for "
                         f"{expected}: wrong board plugged in, or wrong --micropython file")


def execute(p: FlashPlan, on_progress: ProgressFn | None = None, connect_attempts: int = 3) -> FlashResult:
    """Connect, check chip and flash size, write everything (esptool verifies), hard-reset."""
    from esptool import cmds
    from esptool.util import FatalError, flash_size_bytes

    messages: list[str] = []
    t0 = time.perf_counter()
    with _esptool_output(on_progress, messages):
        try:
            esp = cmds.detect_chip(p.port, 115200, "default-reset", False, connect_attempts)
        except (FatalError, OSError) as e:
            raise FlashError(explain(e, p.port)) from e
        try:
            chip = _chip_name(esp)
            check_chip(chip, p.chip, p.port)
            esp = cmds.run_stub(esp)
            if p.baud != 115200:
                esp.change_baud(p.baud)
            cmds.attach_flash(esp)
            size = cmds.detect_flash_size(esp)
            need = max(w.end for w in p.writes)
            have = flash_size_bytes(size) if size else None
            if have is not None and need > have:
                raise FlashError(f"the board on {p.port} has {size} of flash; the writes reach {need:#x}: "
                                 "use the firmware build for this flash size")
            if p.erase:
                cmds.erase_flash(esp)
            cmds.write_flash(esp, [(w.offset, w.data) for w in p.writes])  # esptool 5 always verifies
            cmds.reset_chip(esp, "hard-reset")
        except FatalError as e:
            raise FlashError(explain(e, p.port)) from e
        finally:
            with contextlib.suppress(Exception):
                esp._port.close()
    return FlashResult(chip, size, time.perf_counter() - t0, messages)


def merged_image(p: FlashPlan, output: str | None = None) -> bytes | None:
    """Everything the plan writes as one flash image (esptool merge_bin), e.g. for a factory
    programmer or to inspect with `esptool image-info`."""
    from esptool import cmds

    messages: list[str] = []
    with _esptool_output(None, messages):
        out: bytes | None = cmds.merge_bin([(w.offset, w.data) for w in p.writes], chip=p.chip, output=output,
                                           target_offset=min(w.offset for w in p.writes))
        return out


def image_info(data: bytes, chip: str) -> str:
    """esptool's image-info report for an ESP image (the MicroPython .bin, or a merged image)."""
    from esptool import cmds

    messages: list[str] = []
    with _esptool_output(None, messages):
        cmds.image_info(data, chip=chip)
    return "\n".join(messages)
