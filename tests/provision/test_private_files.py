"""Every file the provisioning tools write that holds key material is owner-only (0600), every folder
holding such files 0700, whatever the umask: one test per writer. Run under umask 000, where a
file written without care comes out world-readable and writable."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from segel.cli import main
from segel.provision import devconfig, flash, labels, private
from segel.provision.builder import ImageBuilder
from segel.provision.settings import Fleet, FleetSettings, copy_fleet, init_fleet


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


@pytest.fixture(autouse=True)
def open_umask() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def test_fleet_init_secret_settings_and_folders(tmp_path: Path) -> None:
    s = FleetSettings(wifi={"ssid": "KPU-Depot", "password": "rahasia-wifi", "host": "10.0.0.2", "port": 1883,
                            "mqtt_password": "rahasia-mqtt"})
    fleet = init_fleet(tmp_path / "fleet", s)
    assert mode(fleet.root) == 0o700  # holds the fleet secret
    assert mode(fleet.secret_path) == 0o600
    assert "rahasia-wifi" in fleet.settings_path.read_text()
    assert mode(fleet.settings_path) == 0o600  # the depot WiFi and MQTT passwords
    assert mode(fleet.devices_dir) == 0o700 and mode(fleet.images_dir) == 0o700


def test_device_configs_on_provision_and_reimage(fleet: Fleet) -> None:
    dev = devconfig.provision(fleet, 1)[0].device
    p = fleet.config_path(dev.hex)
    assert mode(p) == 0o600 and mode(p.parent) == 0o700
    os.chmod(p, 0o644)  # a config someone loosened is tightened when it is rewritten
    devconfig.reimage(fleet, dev.hex)
    assert mode(p) == 0o600
    assert not list(p.parent.glob("*.tmp"))


def test_images_from_segel_image(fleet: Fleet, builder: ImageBuilder) -> None:
    os.chmod(fleet.images_dir, 0o755)
    path, _ = builder.build_to_file(devconfig.provision(fleet, 1)[0].device)
    assert mode(path) == 0o600 and mode(path.parent) == 0o700


def test_images_from_a_flash_plan(fleet: Fleet, builder: ImageBuilder) -> None:
    dev = devconfig.provision(fleet, 1)[0].device
    p = flash.plan(fleet, builder, dev, "/dev/ttyUSB0", dry_run=True)
    assert mode(Path(p.writes[-1].source)) == 0o600


def test_merged_flash_image(fleet: Fleet, builder: ImageBuilder, tmp_path: Path) -> None:
    dev = devconfig.provision(fleet, 1)[0].device
    out = tmp_path / "000101-full.bin"
    p = flash.merged_file(fleet, builder, dev, out)
    key = devconfig.load_config(fleet, p.device)["key"].encode()
    assert key in out.read_bytes()
    assert mode(out) == 0o600


def test_merged_flash_image_from_the_command(fleet: Fleet, firmware_tree: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    devconfig.provision(fleet, 1)
    monkeypatch.setenv("SEGEL_FIRMWARE_DIR", str(firmware_tree))
    out = tmp_path / "full.bin"
    res = CliRunner().invoke(main, ["flash", "--fleet", str(fleet.root), "--port", "-", "000101", "--merged",
                                    str(out)])
    assert res.exit_code == 0, res.output
    assert mode(out) == 0o600


def test_scratch_fleet_for_benchmarks(fleet: Fleet, tmp_path: Path) -> None:
    copy = copy_fleet(fleet, tmp_path / "scratch", registry_path="bench.db")
    assert mode(copy.root) == 0o700 and mode(copy.secret_path) == 0o600 and mode(copy.settings_path) == 0o600
    assert copy.settings().registry_path == "bench.db" and not (copy.root / "registry.db").exists()


def test_private_writer_replaces_a_loose_leftover(tmp_path: Path) -> None:
    target = tmp_path / "x.json"
    leftover = tmp_path / "x.json.tmp"
    leftover.write_text("old")
    os.chmod(leftover, 0o666)
    private.write_text(target, "new")
    assert mode(target) == 0o600 and target.read_text() == "new" and not leftover.exists()


def test_labels_hold_no_key(fleet: Fleet, tmp_path: Path) -> None:
    """Label sheets carry ids only (printed and stuck on boxes): no key to protect."""
    devs = [p.device for p in devconfig.provision(fleet, 2)]
    out = tmp_path / "labels.pdf"
    labels.render(devs, out, compress=False)
    pdf = out.read_bytes()
    for d in devs:
        key = devconfig.load_config(fleet, d)["key"]
        assert key.encode() not in pdf and key.upper().encode() not in pdf
