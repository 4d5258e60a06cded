"""Put MicroPython and a device image on boards through esptool's Python API, one session per board.

`plan()` decides what goes where (and fails early: wrong chip, image larger than its region, a
device already flashed at its key epoch); `FlashPlan.describe()` is the exact `--dry-run` text;
`execute()` connects once, checks the chip and the flash size it reports, writes (esptool
verifies every write) and resets the board; `flash_many()` walks a list of boards for a
technician (`segel flash --all`); `merged_file()` writes one owner-only flash image file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from segel import registry as reg
from segel.provision import devconfig, private
from segel.provision.builder import ImageBuilder
from segel.provision.fsregion import FsRegion, release_text
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


def _mib(n: int) -> str:
    return f"{n >> 20} MiB" if n % (1 << 20) == 0 else f"{n / (1 << 20):.2f} MiB"


@dataclass
class FlashPlan:
    device: reg.Device
    chip: str
    port: str
    baud: int
    region: FsRegion
    writes: list[Write] = field(default_factory=list)
    erase: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def flash_check(self) -> str:
        """What execute() checks about the flash before writing."""
        if self.region.runtime:
            return (f"check first: the chip is an {self.chip} with exactly {_mib(self.region.flash_bytes)} of flash "
                    "(the filesystem's place depends on it)")
        return (f"check first: the chip is an {self.chip} with at least {_mib(max(w.end for w in self.writes))} "
                "of flash")

    def describe(self, merged_into: str | None = None) -> str:
        """Exactly what would be written where (the --dry-run output), or what a merged file holds."""
        lines = [f"device {self.device.hex}  board {self.device.board}  role {self.device.role}  "
                 f"key epoch {self.device.key_epoch}",
                 f"port {self.port}  chip {self.chip}  baud {self.baud}"]
        lines += self.notes
        if self.erase:
            lines.append("erase the whole flash")
        for w in self.writes:
            lines.append(f"write {w.offset:#010x}..{w.end:#010x}  {len(w.data):>9,} B  {w.what:<21} {w.source}  "
                         f"sha256 {w.sha256[:16]}")
        if merged_into:
            lines.append(f"merged into {merged_into} (mode 600: it holds the device key), to be written at "
                         f"{self.writes[0].offset:#x} on a board with {_mib(self.region.flash_bytes)} of flash")
        else:
            lines += [self.flash_check, "verify every write, then hard-reset the board"]
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
    try:
        fw = builder.firmware_for(board)
        image = builder.build(device)
    except ImageError as e:
        raise FlashError(str(e)) from e
    region = fw.region
    if len(image.data) != region.size:  # make_littlefs sizes to the region; guard a stale or foreign image
        raise FlashError(f"image is {len(image.data)} bytes, but the filesystem region is {region.size} bytes")
    p = FlashPlan(device, fw.chip, port, baud, region, erase=erase, notes=notes + fw.notes)
    if write_micropython:
        p.writes.append(Write(fw.info.flash_offset, fw.path.read_bytes(), "MicroPython", str(fw.path)))
    img_path = builder.save(device, image)
    p.writes.append(Write(region.offset, image.data, "filesystem (littlefs)", str(img_path)))
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


def check_flash_size(p: FlashPlan, have: int | None, jedec_id: int = 0) -> None:
    """The flash size the chip reports (its JEDEC id, which MicroPython 1.26+ also reads at boot
    with esp_flash_get_physical_size) must be the one the filesystem was placed for."""
    board = f"hardware/boards/{p.device.board}.json"
    if have is None:
        if p.region.runtime:
            raise FlashError(f"cannot tell the flash size of the board on {p.port} (JEDEC id {jedec_id:#08x} is "
                             "not one esptool knows), and MicroPython places the filesystem by it: not writing")
        return
    r = p.region
    if r.runtime and have != r.flash_bytes:
        would = f"{r.offset:#x}..{have:#x} ({_mib(have - r.offset)})" if have > r.offset else "nowhere (no room)"
        raise FlashError(
            f"the board on {p.port} has {_mib(have)} of flash, but {board} says {_mib(r.flash_bytes)}: "
            f"MicroPython {release_text(r.release)} would put its filesystem at {would}, not at the "
            f"{_mib(r.size)} image built for {r.offset:#x}..{r.end:#x}, and find it corrupted. Wrong board "
            f"plugged in? If this board really has {_mib(have)}, give it a board file with that flash_mb, "
            "then provision and flash again. Nothing was written.")
    need = max(w.end for w in p.writes)
    if need > have:
        raise FlashError(f"the board on {p.port} has {_mib(have)} of flash; the writes reach {need:#x}: use the "
                         "firmware build for this flash size. Nothing was written.")


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
            check_flash_size(p, flash_size_bytes(size) if size else None, esp.flash_id())
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


def merged_image(p: FlashPlan) -> bytes:
    """Everything the plan writes as one flash image (esptool merge_bin), e.g. for a factory
    programmer or to inspect with `esptool image-info`; it starts at the plan's first write."""
    from esptool import cmds

    messages: list[str] = []
    with _esptool_output(None, messages):
        out = cmds.merge_bin([(w.offset, w.data) for w in p.writes], chip=p.chip, output=None,
                             target_offset=min(w.offset for w in p.writes))
    assert isinstance(out, bytes)
    return out


def merged_file(fleet: Fleet, builder: ImageBuilder, device: reg.Device, output: Path,
                write_micropython: bool = True, reimage: bool = False) -> FlashPlan:
    """Write the device's merged flash image to `output`, owner-only (it holds the device key).
    Its filesystem is placed for the flash size in the board file."""
    p = plan(fleet, builder, device, "-", write_micropython=write_micropython, reimage=reimage)
    private.write_bytes(output, merged_image(p))
    return p


def image_info(data: bytes, chip: str) -> str:
    """esptool's image-info report for an ESP image (the MicroPython .bin, or a merged image)."""
    from esptool import cmds

    messages: list[str] = []
    with _esptool_output(None, messages):
        cmds.image_info(data, chip=chip)
    return "\n".join(messages)


# ---- a technician's session: many boards, one port -------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    device: str  # hex id
    status: str  # "ok", "FAILED", "skipped", "not done", "planned" (dry run)
    note: str = ""
    plan: FlashPlan | None = None
    result: FlashResult | None = None


@dataclass
class SessionHooks:
    """How a session talks to its user (the CLI prints and prompts; tests script it)."""

    # before each board when walking several: returns "" (flash it), "s" (skip) or "q" (quit)
    ask: Callable[[int, int, reg.Device], str] | None = None
    planned: Callable[[FlashPlan], None] | None = None  # the plan, before writing (a dry run stops here)
    # per board: (progress callback, finish callback) around esptool's writes
    progress: Callable[[reg.Device], tuple[ProgressFn, Callable[[], None]]] | None = None
    finished: Callable[[Outcome], None] | None = None


def still_to_flash(fleet: Fleet, devices: list[reg.Device]) -> list[reg.Device]:
    """The devices not yet flashed at their current key epoch (what `--all` walks)."""
    todo = [d for d in devices if flashed_at(fleet, d.device_id, d.key_epoch) is None]
    if not todo:
        raise FlashError("every registered device was already flashed at its key epoch "
                         "(--include-flashed --reimage to do them again)")
    return todo


def flash_many(fleet: Fleet, builder: ImageBuilder, devices: list[reg.Device], port: str, *,
               baud: int = DEFAULT_BAUD, write_micropython: bool = True, erase: bool = False,
               reimage: bool = False, dry_run: bool = False, walking: bool | None = None,
               hooks: SessionHooks | None = None, connect_attempts: int = 3) -> list[Outcome]:
    """Flash each device's board on `port` in turn, logging every attempt in the flash log.

    Walking (several devices, or walking=True): the user is asked before each board, and a board
    that fails is reported and the session goes on. A single device's failure raises FlashError
    (or the planning error). A dry run plans every device and writes nothing."""
    h = hooks or SessionHooks()
    walking = len(devices) > 1 if walking is None else walking
    out: list[Outcome] = []

    def done(o: Outcome) -> None:
        out.append(o)
        if h.finished:
            h.finished(o)

    for i, dev in enumerate(devices):
        if walking and not dry_run and h.ask:
            answer = h.ask(i, len(devices), dev).strip().lower()
            if answer == "q":
                for d in devices[i:]:
                    done(Outcome(d.hex, "not done", "quit"))
                break
            if answer == "s":
                done(Outcome(dev.hex, "skipped"))
                continue
        try:
            p = plan(fleet, builder, dev, port, baud, write_micropython=write_micropython, erase=erase,
                     reimage=reimage, dry_run=dry_run)
        except Exception as e:  # one bad board (config, image, epoch) must not stop the others
            if not walking:
                raise
            done(Outcome(dev.hex, "FAILED", str(e)))
            continue
        if h.planned:
            h.planned(p)
        if dry_run:
            done(Outcome(dev.hex, "planned", plan=p))
            continue
        update, finish = h.progress(dev) if h.progress else (None, lambda: None)
        try:
            res = execute(p, on_progress=update, connect_attempts=connect_attempts)
        except FlashError as e:
            finish()
            log_flash(fleet, p, ok=False, error=str(e))
            if not walking:
                raise
            done(Outcome(dev.hex, "FAILED", str(e), plan=p))
            continue
        finish()
        log_flash(fleet, p, ok=True)
        done(Outcome(dev.hex, "ok", f"{res.chip}, {res.flash_size}, key epoch {p.device.key_epoch}, "
                                    f"{res.seconds:.0f} s", plan=p, result=res))
    return out
