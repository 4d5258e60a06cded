"""Where the firmware tree, board files and scenarios live, in a checkout or in an installed wheel."""

from __future__ import annotations

import os
import sys
from pathlib import Path

_PKG = Path(__file__).resolve().parent


def firmware_dir() -> Path:
    env = os.environ.get("SEGEL_FIRMWARE_DIR")
    for cand in ([Path(env)] if env else []) + [_PKG / "_firmware", _PKG.parents[1] / "firmware"]:
        if (cand / "segelfw").is_dir():
            return cand
    raise FileNotFoundError("firmware tree not found: set SEGEL_FIRMWARE_DIR to the repository's firmware/ folder")


def boards_dir() -> Path:
    for cand in (_PKG / "_boards", _PKG.parents[1] / "hardware" / "boards"):
        if cand.is_dir():
            return cand
    raise FileNotFoundError("board files not found (hardware/boards/)")


def import_firmware() -> None:
    """Make `import segelfw` work: the simulator runs the firmware's own code."""
    d = str(firmware_dir())
    if d not in sys.path:
        sys.path.insert(0, d)


def scenarios_dir() -> Path:
    """Where the bundled scenarios live: $SEGEL_SCENARIOS, the installed package, or the checkout."""
    env = os.environ.get("SEGEL_SCENARIOS")
    for cand in ([Path(env)] if env else []) + [_PKG / "_scenarios", _PKG.parents[1] / "scenarios"]:
        if cand.is_dir():
            return cand
    raise FileNotFoundError("scenarios not found: set SEGEL_SCENARIOS to the repository's scenarios/ folder")
