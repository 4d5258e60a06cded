"""Fleet init, provisioning, configs validated by the firmware's validator, keys the gateway accepts."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from segel import protocol
from segel import registry as reg
from segel.provision import devconfig
from segel.provision.settings import Fleet, FleetSettings, SettingsError, from_toml, init_fleet, to_toml


def test_fleet_init_writes_owner_only_secret_and_settings(tmp_path: Path) -> None:
    f = init_fleet(tmp_path / "fleet")
    assert stat.S_IMODE(f.secret_path.stat().st_mode) == 0o600
    assert len(f.secret()) == 32
    s = f.settings()
    assert s.radio["region"] == "AS923-2" and s.board == "tbeam-v1.1"
    assert f.secret().hex() not in f.settings_path.read_text()
    with pytest.raises(SettingsError, match="already exists"):
        init_fleet(tmp_path / "fleet")


def test_settings_roundtrip_and_unknown_keys() -> None:
    s = FleetSettings(wifi={"ssid": "KPU-Depot", "host": "10.0.0.2", "port": 1883})
    s.radio["sf"] = 9
    back = from_toml(to_toml(s))
    assert back.radio == s.radio and back.intervals == s.intervals and back.wifi == s.wifi
    with pytest.raises(SettingsError, match="unknown key radio.spreading"):
        from_toml("[radio]\nspreading = 9\n")


def test_bad_settings_are_refused_by_the_firmware_validator(tmp_path: Path) -> None:
    s = FleetSettings()
    s.radio["sf"] = 12  # over the AS923 dwell limit
    with pytest.raises(devconfig.ProvisionError, match="config field 'sf'"):
        init_fleet(tmp_path / "f", s)
    assert not (tmp_path / "f" / "fleet.secret").exists()


def test_provision_registers_devices_and_writes_valid_configs(fleet: Fleet) -> None:
    done = devconfig.provision(fleet, 3, board="tbeam-supreme")
    assert [p.device.hex for p in done] == ["000101", "000102", "000103"]
    registry = fleet.open_registry()
    for p in done:
        assert registry.get(p.device.device_id) == reg.Device(p.device.device_id, 0, "tbeam-supreme", "tracker")
        assert stat.S_IMODE(p.config_path.stat().st_mode) == 0o600
        cfg = json.loads(p.config_path.read_text())
        assert cfg["device_id"] == p.device.hex and cfg["board"] == "tbeam-supreme" and cfg["key_epoch"] == 0
        assert fleet.secret().hex() not in p.config_path.read_text()
    more = devconfig.provision(fleet, 2)
    assert [p.device.hex for p in more] == ["000104", "000105"]
    assert more[0].device.board == "tbeam-v1.1"


def test_a_frame_signed_with_a_provisioned_config_verifies_at_the_gateway(fleet: Fleet) -> None:
    p = devconfig.provision(fleet, 1)[0]
    cfg = json.loads(p.config_path.read_text())
    # the tracker side: only its config (the firmware's own code derives the sub-keys and signs)
    from segelfw import config as fwconfig  # noqa: PLC0415 (firmware tree is on sys.path)
    from segelfw import protocol as fwproto  # noqa: PLC0415

    full = fwconfig.validate(cfg)
    sub = fwproto.Keys(fwconfig.key_bytes(full), block=lambda b: b)
    aes = Cipher(algorithms.AES(sub.enc_key), modes.ECB()).encryptor()  # cryptolib.aes(key, 1) on the device
    keys = fwproto.Keys(fwconfig.key_bytes(full), block=aes.update)
    body = fwproto.status_body(4100, 0x10, 0, 1, 0, 5)
    frame = fwproto.encode(keys, 3, fwconfig.device_int(full), 7, 1_700_000_000, body)
    # the gateway side: the key ring from the fleet secret and the registry
    ring = reg.KeyRing(fleet.secret(), fleet.open_registry())
    gw_keys = ring.keys_for(p.device.device_id)
    assert gw_keys is not None
    got = protocol.verify_and_decode(gw_keys, frame)
    assert got.header.device_id == p.device.device_id and got.header.counter == 7


def test_reimage_bumps_the_key_epoch_and_changes_the_key(fleet: Fleet) -> None:
    p = devconfig.provision(fleet, 1)[0]
    old = json.loads(p.config_path.read_text())
    dev = devconfig.reimage(fleet, p.device.hex)
    new = json.loads(p.config_path.read_text())
    assert dev.key_epoch == 1 and new["key_epoch"] == 1 and new["key"] != old["key"]
    ring = reg.KeyRing(fleet.secret(), fleet.open_registry())
    assert ring.device_key(dev.device_id, 1).hex() == new["key"]


def test_unknown_board_and_unregistered_device(fleet: Fleet) -> None:
    with pytest.raises(devconfig.ProvisionError, match="unknown board 'tbeam-v9'; known boards: tbeam-supreme"):
        devconfig.provision(fleet, 1, board="tbeam-v9")
    assert fleet.open_registry().devices() == []
    with pytest.raises(devconfig.ProvisionError, match="device 00abcd is not registered"):
        devconfig.resolve(fleet, "00abcd")
    with pytest.raises(devconfig.ProvisionError, match="not a device id"):
        devconfig.resolve(fleet, "box-12")
