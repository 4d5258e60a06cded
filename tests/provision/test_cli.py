"""The provisioning commands end to end through click's runner: the technician's day, exact
--dry-run output, and each bad input giving a clear message and exit status 1. The fleet secret
appears in no output, log, image or config."""

from __future__ import annotations

import hashlib
import shutil
import stat
from pathlib import Path

import fwbuild
import pytest
from click.testing import CliRunner, Result

from segel.cli import main
from segel.provision.settings import Fleet


@pytest.fixture
def run(tmp_path: Path, firmware_tree: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SEGEL_FLEET", str(tmp_path / "fleet"))
    monkeypatch.setenv("SEGEL_FIRMWARE_DIR", str(firmware_tree))
    outputs: list[str] = []

    def _run(*args: str, input: str | None = None, code: int = 0) -> Result:
        res = CliRunner().invoke(main, ["-vv", *args], input=input, catch_exceptions=False)
        outputs.append(res.output)
        assert res.exit_code == code, (args, res.output)
        return res

    _run.outputs = outputs  # type: ignore[attr-defined]
    return _run


def _day(run, tmp_path: Path, index_dir: Path) -> Fleet:  # type: ignore[no-untyped-def]
    run("fleet", "init", "--region", "AS923-2", "--sf", "9")
    run("provision", "--count", "3")
    run("provision", "-n", "1", "--board", "tbeam-supreme")
    run("packages", "fetch", "--index", index_dir.as_uri())
    fleet = Fleet(tmp_path / "fleet")
    (fleet.root / "firmware").mkdir()
    fwbuild.write_bin(fleet.root / "firmware" / "esp32.bin", "esp32")
    fwbuild.write_bin(fleet.root / "firmware" / "esp32s3.bin", "esp32s3")
    return fleet


def test_a_technicians_day(run, tmp_path: Path, index_dir: Path) -> None:  # type: ignore[no-untyped-def]
    fleet = _day(run, tmp_path, index_dir)
    res = run("image", "--all")
    assert "000104  tbeam-supreme    tracker  " in res.output
    assert "6,291,456 B at 0x200000 (made at boot)" in res.output
    dry = run("flash", "--port", "/dev/ttyUSB0", "000102", "--dry-run")
    fw = (fleet.root / "firmware" / "esp32.bin").read_bytes()
    img = fleet.image_path("000102").read_bytes()
    assert dry.stdout == (
        "dry run: nothing written\n"
        "device 000102  board tbeam-v1.1  role tracker  key epoch 0\n"
        "port /dev/ttyUSB0  chip esp32  baud 460800\n"
        "MicroPython 1.27.0 (named in the .bin)\n"
        "filesystem: no vfs row, so MicroPython 1.27 makes one at boot from the end of the last partition "
        "(factory ends 0x200000) to the end of the 4 MiB flash: 0x200000..0x400000 (2 MiB, 512 blocks of 4096 B)\n"
        f"write 0x00001000..{0x1000 + len(fw):#010x}  {len(fw):>9,} B  MicroPython           "
        f"{fleet.root / 'firmware' / 'esp32.bin'}  sha256 {hashlib.sha256(fw).hexdigest()[:16]}\n"
        f"write 0x00200000..0x00400000  2,097,152 B  filesystem (littlefs) {fleet.image_path('000102')}  "
        f"sha256 {hashlib.sha256(img).hexdigest()[:16]}\n"
        "check first: the chip is an esp32 with exactly 4 MiB of flash (the filesystem's place depends on it)\n"
        "verify every write, then hard-reset the board\n")
    run("labels", "--all", "-o", str(tmp_path / "labels.pdf"))
    assert (tmp_path / "labels.pdf").read_bytes().startswith(b"%PDF")
    out = run("pair", "KT-0001", "SGL-000101", "--tps", "TPS 001").output
    assert out.splitlines()[0] == "000101 -> box KT-0001 (TPS 001)"
    # no places imported in this registry: the TPS is kept as typed, and the technician is told
    assert out.splitlines()[1].startswith("warning: TPS 'TPS 001' not checked: no places are imported")
    run("pair", "KT-0002", "000101", code=1)
    assert "already on box KT-0001; use --force" in run.outputs[-1]
    assert "(moved from KT-0001)" in run("pair", "KT-0002", "000101", "--force").output
    scans = tmp_path / "scans.csv"
    scans.write_text("box,scan\nKT-0003,SGL-000102\nKT-0004,SGL-0009ff\n")
    res = run("pair", "--csv", str(scans), code=1)
    assert "scans.csv:3: device 0009ff is not registered" in res.output and "1 paired, 1 refused" in res.output
    run("provision", "--reimage", "000103")
    run("fleet", "show")

    secret = fleet.secret()
    for text in run.outputs:
        assert secret.hex() not in text.lower()
    for p in fleet.root.rglob("*"):
        if p.is_file() and p != fleet.secret_path:
            data = p.read_bytes()
            assert secret not in data and secret.hex().encode() not in data.lower(), p


def test_bad_input_is_a_clear_message_and_exit_1(run, tmp_path: Path, index_dir: Path) -> None:  # type: ignore[no-untyped-def]
    fleet = _day(run, tmp_path, index_dir)
    cases = [
        (["flash", "--port", "/dev/ttySEGEL-NOPE", "000101"], "cannot open /dev/ttySEGEL-NOPE: the port does not exist"),
        (["provision", "-n", "1", "--board", "tbeam-v9"], "unknown board 'tbeam-v9'; known boards:"),
        (["image", "0009ff"], "device 0009ff is not registered: run `segel provision` first"),
        (["flash", "--port", "/dev/ttyUSB0", "0009ff", "--dry-run"], "device 0009ff is not registered"),
        (["check", "--port", "/dev/ttySEGEL-NOPE", "--timeout", "1"], "cannot open /dev/ttySEGEL-NOPE"),
        (["image", "000104", "--micropython", str(fleet.root / "firmware" / "esp32.bin")],
         "is MicroPython for esp32, but board tbeam-supreme has an esp32s3"),
        (["pair", "KT-9", "kotak"], "'kotak' is not a device id"),
    ]
    small = fwbuild.write_bin(tmp_path / "small-vfs.bin", "esp32",
                              [("nvs", 1, 2, 0x9000, 0x6000), ("factory", 0, 0, 0x10000, 0x300000),
                               ("vfs", 1, 0x81, 0x310000, 0x4000)])
    cases.append((["flash", "--port", "/dev/ttyUSB0", "000101", "--dry-run", "--micropython", str(small)],
                  "larger than the filesystem region (16,384 bytes at 0x310000)"))
    old = fwbuild.write_bin(tmp_path / "plus-1.25.bin", "esp32", fwbuild.TABLE_4MIBPLUS, tag="v1.25.0")
    cases.append((["flash", "--port", "/dev/ttyUSB0", "000101", "--dry-run", "--micropython", str(old)],
                  "and MicroPython 1.25 creates no filesystem without one (that came in 1.26)"))
    shutil.rmtree(fleet.package_cache / "package" / "6" / "lora-sx126x")
    cases.append((["image", "000104"], "package lora-sx126x (latest, .mpy v6) is not in the package cache"))
    for args, message in cases:
        res = run(*args, code=1)
        assert message in res.output, (args, res.output)
        assert "Traceback" not in res.output


def test_flash_all_walks_boards_and_summarises(run, tmp_path: Path, index_dir: Path) -> None:  # type: ignore[no-untyped-def]
    _day(run, tmp_path, index_dir)
    res = run("flash", "--port", "/dev/ttySEGEL-NOPE", "--all", input="\ns\n\nq\n", code=1)
    out = res.output
    assert out.count("plug in the board for") == 4
    assert "summary\n  000101  FAILED   cannot open /dev/ttySEGEL-NOPE" in out
    assert "  000102  skipped  \n" in out
    assert "  000104  not done quit" in out
    assert "0 ok, 2 failed, 2 skipped" in out


def test_flash_then_reflash_needs_reimage(run, tmp_path: Path, index_dir: Path) -> None:  # type: ignore[no-untyped-def]
    from esprom_board import EspRomBoard

    fleet = _day(run, tmp_path, index_dir)
    with EspRomBoard("esp32") as board:
        out = run("flash", "--port", board.port, "000101").output
    assert "000101: written and verified (esp32, 4MB)" in out
    assert '"ok": true' in fleet.flash_log.read_text()
    with EspRomBoard("esp32") as board:
        again = run("flash", "--port", board.port, "000101", code=1).output
        assert "already flashed at key epoch 0" in again and "add --reimage" in again
        assert board.commands == []  # refused before touching the port
        run("flash", "--port", board.port, "000101", "--reimage")
    assert fleet.open_registry().get(0x101).key_epoch == 1  # type: ignore[union-attr]
    assert b'"key_epoch": 1' in bytes(board.flash[0x200000:0x400000])


def test_flash_all_on_one_port_with_a_summary(run, tmp_path: Path, index_dir: Path) -> None:  # type: ignore[no-untyped-def]
    from esprom_board import EspRomBoard

    fleet = _day(run, tmp_path, index_dir)
    with EspRomBoard("esp32") as board:  # the technician plugs an ESP32 T-Beam in every time
        out = run("flash", "--port", board.port, "--all", input="\n\n\n\n", code=1).output
    assert out.count("written and verified (esp32, 4MB)") == 3
    assert "000104  FAILED   the board on" in out and "is an esp32, but this firmware and board file are for esp32s3" in out
    assert "3 ok, 1 failed, 0 skipped" in out
    flashed = [ln for ln in fleet.flash_log.read_text().splitlines() if '"ok": true' in ln]
    assert len(flashed) == 3
    # the next --all only offers the board that is still to do
    with EspRomBoard("esp32s3", flash_mb=8) as board:
        out = run("flash", "--port", board.port, "--all", input="\n").output
    assert out.count("plug in the board for") == 1 and "000104: written and verified (esp32s3, 8MB)" in out


def test_flash_merged_writes_one_image_file(run, tmp_path: Path, index_dir: Path) -> None:  # type: ignore[no-untyped-def]
    from segel.provision import flash
    from segel.provision.image import read_littlefs

    _day(run, tmp_path, index_dir)
    out_file = tmp_path / "000104-full.bin"
    res = run("flash", "--port", "-", "000104", "--merged", str(out_file))
    assert res.output.rstrip().endswith(f"merged into {out_file} (mode 600: it holds the device key), "
                                        "to be written at 0x0 on a board with 8 MiB of flash")
    data = out_file.read_bytes()
    assert len(data) == 0x800000  # ESP32-S3 image from flash 0 to the end of the 8 MiB
    assert b'"device_id": "000104"' in read_littlefs(data[0x200000:])["config.json"]
    assert stat.S_IMODE(out_file.stat().st_mode) == 0o600  # it holds the device key
    assert "Chip ID: 9 (ESP32-S3)" in flash.image_info(data, "esp32s3")
