"""`segel check` through mpremote's serial transport against a tracker on a pseudo-terminal that
runs the probe on real MicroPython over the device image's files."""

from __future__ import annotations

import os
import pty
import shutil
from pathlib import Path

import pytest
from rawrepl_board import ROOT, RawReplBoard

from segel.provision import check, devconfig
from segel.provision.builder import ImageBuilder
from segel.provision.image import read_littlefs
from segel.provision.settings import Fleet


def _node() -> str:
    node = shutil.which("node")
    if node is None or not (ROOT / "tools/mpy-node/node_modules/@micropython").is_dir():
        pytest.skip("node or the MicroPython WebAssembly port is not installed (scripts/test.sh installs them)")
    return node


def test_check_reports_the_flashed_trackers_identity(fleet: Fleet, builder: ImageBuilder, tmp_path: Path) -> None:
    node = _node()
    dev = devconfig.provision(fleet, 1, board="tbeam-v1.2")[0].device
    img = builder.build(dev)
    files = tmp_path / "flash"
    for name, content in read_littlefs(img.data).items():
        (files / name).parent.mkdir(parents=True, exist_ok=True)
        (files / name).write_bytes(content)
    with RawReplBoard(files, node) as board:
        rep = check.run_probe(board.port, timeout=20)
    assert (rep.device_id, rep.board, rep.key_epoch) == (dev.hex, "tbeam-v1.2", 0)
    assert rep.micropython and rep.micropython.startswith("1.")
    assert rep.raw["mpy"] == 6 and rep.raw["board_file"] is True
    assert rep.firmware is not None, rep.errors
    assert rep.problems(expect_device=dev.hex, expect_epoch=0) == []
    # the WebAssembly port has no `machine`: each part ran its driver and reports it unavailable
    assert rep.selftest is not None
    for part in ("radio", "seal", "gnss", "battery"):
        assert rep.selftest[part].startswith("unavailable: ImportError"), (part, rep.selftest)
    text = "\n".join(rep.lines())
    assert f"device id      {dev.hex}" in text and "board          tbeam-v1.2" in text
    key = devconfig.load_config(fleet, dev)["key"]
    assert key not in text and key not in "".join(board.executed)
    assert rep.problems(expect_device="000999") [-1] == f"the tracker says it is {dev.hex}, the registry expected 000999"


def test_check_on_a_port_that_does_not_exist() -> None:
    with pytest.raises(check.CheckError, match="cannot open /dev/ttySEGEL-NOPE"):
        check.run_probe("/dev/ttySEGEL-NOPE", timeout=2)


def test_check_on_a_silent_port() -> None:
    master, slave = pty.openpty()
    try:
        with pytest.raises(check.CheckError, match=r"no MicroPython REPL answered on .*\(press RST\)"):
            check.run_probe(os.ttyname(slave), timeout=1)
    finally:
        os.close(master)
        os.close(slave)


def test_report_parsing_and_problems() -> None:
    rep = check.CheckReport.from_output(
        'noise\nSEGEL-CHECK {"device_id": "000101", "board": "tbeam-v1.1", "key_epoch": 1, "firmware": "0.1", '
        '"micropython": "1.27.0", "selftest": {"gnss": "12 NMEA sentences, fix, 07 satellites", '
        '"seal": "lid closed, loop open", "battery_mv": 4012, '
        '"radio": "failed: RuntimeError(\'unexpected chip version\')"}, "errors": []}\n')
    assert rep.lines()[4:8] == ["GNSS           12 NMEA sentences, fix, 07 satellites",
                                "seal           lid closed, loop open", "battery        4012 mV",
                                "radio          failed: RuntimeError('unexpected chip version')"]
    assert rep.problems("000101", 2) == ["the tracker has key epoch 1, the registry has 2: re-flash it",
                                         "radio self-test: failed: RuntimeError('unexpected chip version')"]
    with pytest.raises(check.CheckError, match="did not answer the probe"):
        check.CheckReport.from_output(">>> ")


def test_segel_check_command(fleet: Fleet, builder: ImageBuilder, tmp_path: Path,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from segel.cli import main

    node = _node()
    monkeypatch.setenv("SEGEL_FLEET", str(fleet.root))
    dev = devconfig.provision(fleet, 2)[0].device
    files = tmp_path / "flash"
    for name, content in read_littlefs(builder.build(dev).data).items():
        (files / name).parent.mkdir(parents=True, exist_ok=True)
        (files / name).write_bytes(content)
    with RawReplBoard(files, node) as board:
        ok = CliRunner().invoke(main, ["check", "--port", board.port, "--expect", dev.hex, "--timeout", "20"])
        wrong = CliRunner().invoke(main, ["check", "--port", board.port, "--expect", "000102", "--timeout", "20"])
    assert ok.exit_code == 0, ok.output
    assert ok.output.splitlines()[0] == f"device id      {dev.hex}" and ok.output.endswith("ok\n")
    assert wrong.exit_code == 1
    assert f"the tracker says it is {dev.hex}, the registry expected 000102" in wrong.output
