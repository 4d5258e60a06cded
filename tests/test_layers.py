"""The layers of docs/architecture.md hold: import-linter checks the contracts in .importlinter,
and a deliberately added upward import (or a firmware logic module importing `machine`) fails."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).parent / "lint-imports"


def _lint(*paths: Path, config: Path = ROOT / ".importlinter") -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(str(p) for p in paths))
    return subprocess.run([str(LINT), "--no-cache", str(config)], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def test_every_contract_is_kept() -> None:
    r = _lint(ROOT / "firmware")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "0 broken" in r.stdout


def test_the_firmware_contract_lists_every_logic_module() -> None:
    """A new firmware module is checked from the day it is added: the contract must name every
    `segelfw` module outside the drivers (`segelfw.hw`)."""
    cp = configparser.ConfigParser()
    cp.read(ROOT / ".importlinter")
    listed = set(cp["importlinter:contract:firmware-logic-has-no-hardware"]["source_modules"].split())
    fw = ROOT / "firmware" / "segelfw"
    modules = {f"segelfw.{p.stem}" for p in fw.glob("*.py") if p.stem != "__init__"}
    assert modules - listed == set(), "add these to the firmware contract in .importlinter"


def _copy_tree(tmp: Path) -> tuple[Path, Path]:
    gw = tmp / "gw"
    fw = tmp / "fw"
    shutil.copytree(ROOT / "gateway" / "segel", gw / "segel", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "firmware", fw, ignore=shutil.ignore_patterns("__pycache__"))
    return gw, fw


def test_an_upward_import_breaks_the_build(tmp_path: Path) -> None:
    gw, fw = _copy_tree(tmp_path)
    codec = gw / "segel" / "ingest" / "codec.py"
    codec.write_text(codec.read_text() + "\nfrom segel.service import gateway  # noqa: E402,F401 - deliberately upward\n")
    r = _lint(gw, fw)
    assert r.returncode != 0
    assert "Gateway: nothing imports upward BROKEN" in r.stdout
    assert "segel.ingest.codec -> segel.service.gateway" in r.stdout


def test_firmware_logic_importing_machine_breaks_the_build(tmp_path: Path) -> None:
    gw, fw = _copy_tree(tmp_path)
    policy = fw / "segelfw" / "policy.py"
    policy.write_text("import machine  # deliberately: logic must not touch the board\n" + policy.read_text())
    r = _lint(gw, fw)
    assert r.returncode != 0
    assert "Firmware logic never imports drivers, machine or the board" in r.stdout
    assert "segelfw.policy -> machine" in r.stdout
