"""The map libraries in the wheel are exactly the pinned npm packages' files, licences included."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VENDOR = ROOT / "tools" / "console-vendor"
spec = importlib.util.spec_from_file_location("vendor_sync", VENDOR / "sync.py")
sync = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
spec.loader.exec_module(sync)  # type: ignore[union-attr]


def test_versions_are_pinned_exactly() -> None:
    deps = json.loads((VENDOR / "package.json").read_text())["dependencies"]
    lock = json.loads((VENDOR / "package-lock.json").read_text())["packages"]
    for name, version in deps.items():
        assert version[0].isdigit(), f"{name}: pin an exact version, not {version!r}"
        assert lock[f"node_modules/{name}"]["version"] == version


def test_committed_files_are_byte_identical_to_the_npm_packages() -> None:
    modules = VENDOR / "node_modules"
    if not modules.is_dir():
        pytest.fail("tools/console-vendor/node_modules is missing: run bash scripts/setup.sh --test (npm ci)")
    for package, files in sync.FILES.items():
        for rel in files:
            committed = sync.target(package, rel)
            assert committed.is_file(), f"{committed} missing: run python3 tools/console-vendor/sync.py"
            assert committed.read_bytes() == (modules / package / rel).read_bytes(), \
                f"{committed} differs from {package}/{rel}: run python3 tools/console-vendor/sync.py"
    for package in sync.FILES:  # nothing else slipped into the folder
        served = {p for p in (sync.DEST / package).rglob("*") if p.is_file()}
        assert served == {sync.target(package, rel) for rel in sync.FILES[package]}


def test_licences_ship_with_the_code() -> None:
    assert (sync.DEST / "leaflet" / "LICENSE").read_text().startswith("BSD 2-Clause License")
    assert "Permission is hereby granted" in (sync.DEST / "leaflet.markercluster" / "MIT-LICENCE.txt").read_text()
