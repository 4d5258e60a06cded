from __future__ import annotations

import os
from pathlib import Path

import pytest
from segel import protocol, registry, store


def test_pair_refuses_tracker_on_another_box_unless_forced(tmp_path: Path) -> None:
    reg = registry.Registry(store.connect(tmp_path / "g.db"))
    reg.add_device(0x101)
    reg.pair("B-1", 0x101, tps="TPS-1")
    with pytest.raises(registry.RegistryError, match="already on box B-1"):
        reg.pair("B-2", 0x101)
    reg.pair("B-2", 0x101, force=True)
    assert reg.box_of(0x101) == ("B-2", None)
    hist = reg.conn.execute("SELECT box_id, previous_box, forced FROM pairings ORDER BY id").fetchall()
    assert hist == [("B-1", None, 0), ("B-2", "B-1", 1)]


def test_unregistered_device_cannot_be_paired(tmp_path: Path) -> None:
    reg = registry.Registry(store.connect(tmp_path / "g.db"))
    with pytest.raises(registry.RegistryError, match="not registered"):
        reg.pair("B-1", 0x999)


def test_fleet_secret_owner_only_and_never_overwritten(tmp_path: Path) -> None:
    p = tmp_path / "fleet.key"
    secret = registry.create_fleet_secret(p)
    assert os.stat(p).st_mode & 0o777 == 0o600
    assert registry.load_fleet_secret(p) == secret
    with pytest.raises(registry.RegistryError, match="never overwritten"):
        registry.create_fleet_secret(p)
    p.chmod(0o644)
    with pytest.raises(registry.RegistryError, match="readable by others"):
        registry.load_fleet_secret(p)


def test_keyring_follows_key_epoch(tmp_path: Path) -> None:
    reg = registry.Registry(store.connect(tmp_path / "g.db"))
    reg.add_device(0x101)
    ring = registry.KeyRing(b"s" * 32, reg)
    k0 = ring.keys_for(0x101)
    reg.bump_epoch(0x101)
    k1 = ring.keys_for(0x101)
    assert k0 != k1
    assert k1 == protocol.DeviceKeys.from_device_key(protocol.derive_device_key(b"s" * 32, 0x101, 1))
    assert ring.keys_for(0x999) is None
    assert "s" * 8 not in repr(ring)
