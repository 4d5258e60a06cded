"""The hardware layer type-checks against MicroPython's ESP32 API (micropython-esp32-stubs).

mypy ignores the stub files where pip puts them (top of site-packages), so they are copied to a
folder on MYPYPATH (checked-here.md), with our stub of micropython-lib's `lora` beside them.
Errors inside the third-party stubs themselves are not ours and are filtered out.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
FIRMWARE = HERE.parents[1] / "firmware"


@pytest.fixture(scope="module")
def stubs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dst = tmp_path_factory.mktemp("mpstubs")
    for dist in ("micropython-esp32-stubs", "micropython-stdlib-stubs"):
        for f in metadata.files(dist) or []:
            s = str(f)
            if s.endswith(".pyi") and not s.startswith("stdlib/"):
                p = dst / s
                p.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(str(f.locate()), p)
    shutil.copytree(HERE / "stubs" / "lora", dst / "lora")
    return dst


def mypy(stubs: Path, *targets: str, cwd: Path = FIRMWARE) -> list[str]:
    env = dict(os.environ, MYPYPATH=str(stubs))
    r = subprocess.run([sys.executable, "-m", "mypy", "--python-version", "3.11", "--no-incremental",
                        "--cache-dir", os.devnull, "--follow-imports=silent", "--no-error-summary", *targets],
                       cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    return [ln for ln in r.stdout.splitlines() if ": error:" in ln and not ln.startswith(str(stubs))]


@pytest.mark.slow
def test_hw_layer_and_main_typecheck_against_esp32_stubs(stubs: Path) -> None:
    errors = mypy(stubs, "-p", "segelfw.hw", "main.py")
    assert errors == []


@pytest.mark.slow
def test_misuse_of_the_esp32_api_is_caught(stubs: Path, tmp_path: Path) -> None:
    """The check can fail: calls the stubs do not allow are reported."""
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import machine, esp32\n"
        "from lora import SX1276\n"
        "u = machine.UART(1, 9600, tx=12, rx=34)\n"
        "u.readuntil(b'x')\n"
        "machine.deepsleep('soon')\n"
        "esp32.wake_on_ext1(machine.Pin(13), esp32.WAKEUP_ANY_HIGH)\n"
        "SX1276(1, 2)\n"
        "machine.WDT(timeout='long')\n"
    )
    errors = mypy(stubs, str(bad), cwd=tmp_path)
    assert any('"UART" has no attribute "readuntil"' in e for e in errors), errors
    assert any("deepsleep" in e for e in errors), errors
    assert any("wake_on_ext1" in e for e in errors), errors
    assert any("SX1276" in e for e in errors), errors
    assert any("WDT" in e for e in errors), errors
