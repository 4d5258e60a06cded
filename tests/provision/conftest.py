"""Fixtures for provisioning tests: a fleet folder, a filled package cache, MicroPython-like .bins."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import fwbuild  # noqa: E402
import pkgindex  # noqa: E402

from segel import paths  # noqa: E402
from segel.provision.builder import ImageBuilder  # noqa: E402
from segel.provision.settings import Fleet, init_fleet  # noqa: E402

ROOT = HERE.parents[1]


@pytest.fixture(scope="session")
def index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return pkgindex.make_index(tmp_path_factory.mktemp("index"))


@pytest.fixture
def fleet(tmp_path: Path, index_dir: Path) -> Fleet:
    """An initialised fleet with its package cache filled and MicroPython .bins for both chips."""
    f = init_fleet(tmp_path / "fleet")
    shutil.copytree(index_dir, f.package_cache)
    fw = f.root / "firmware"
    fw.mkdir()
    fwbuild.write_bin(fw / "esp32.bin", "esp32")
    fwbuild.write_bin(fw / "esp32s3.bin", "esp32s3")
    return f


@pytest.fixture(scope="session")
def mpy_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mpy")


@pytest.fixture(scope="session")
def firmware_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real firmware tree; until firmware/main.py lands, a copy of it with a stand-in main.py."""
    real = paths.firmware_dir()
    if (real / "main.py").is_file():
        return real
    d = tmp_path_factory.mktemp("fw")
    shutil.copytree(real / "segelfw", d / "segelfw")
    (d / "main.py").write_text("import segelfw\n")
    return d


@pytest.fixture
def builder(fleet: Fleet, firmware_tree: Path) -> ImageBuilder:
    return ImageBuilder(fleet, firmware_dir=firmware_tree)
