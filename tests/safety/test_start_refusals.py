"""Mistakes refused at the gateway's start (issue 19): another fleet's secret, a second gateway
on the same database. Each used to start happily and flood the command post."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from segel import registry, store
from segel.cli import main
from segel.provision.settings import init_fleet
from segel.registry import RegistryError, create_fleet_secret
from segel.service.gateway import Gateway
from segel.service.lock import AlreadyRunning, InstanceLock, holder

from tests.gateway import gwtest


def _fleet_with_other_secret(tmp_path: Path) -> tuple[Path, Path]:
    """A fleet made by `segel fleet init` and a config whose secret is another fleet's."""
    fleet = init_fleet(tmp_path / "fleet")
    create_fleet_secret(tmp_path / "other.secret")
    cfg = tmp_path / "segel.toml"
    cfg.write_text(f'[gateway]\ndb = "fleet/registry.db"\nfleet_secret = "other.secret"\n'
                   f'[mqtt]\nurl = "mqtt://127.0.0.1:9"\n')
    assert fleet.registry_db() == tmp_path / "fleet" / "registry.db"
    return cfg, fleet.secret_path


def test_fleet_init_records_the_secrets_fingerprint(tmp_path: Path) -> None:
    fleet = init_fleet(tmp_path / "fleet")
    conn = store.connect(fleet.registry_db())
    assert registry.stored_fingerprint(conn) == registry.secret_fingerprint(fleet.secret())
    assert len(registry.stored_fingerprint(conn) or "") == 16


def test_gateway_refuses_another_fleets_secret_naming_both_files(tmp_path: Path) -> None:
    cfg, _ = _fleet_with_other_secret(tmp_path)
    with pytest.raises(RegistryError) as e:
        Gateway(gwtest.load(cfg)).start()
    msg = str(e.value)
    assert str(tmp_path / "other.secret") in msg and str(tmp_path / "fleet" / "registry.db") in msg
    assert "forged" in msg and "fingerprint" in msg
    # the refusal released the database: the right secret starts (no broker needed to get that far)
    r = CliRunner().invoke(main, ["gateway", "--config", str(cfg)])
    assert r.exit_code == 1 and "is not the one the registry" in r.output


def test_gateway_records_a_fingerprint_on_a_registry_without_one(tmp_path: Path, mosquitto) -> None:
    cfg, _ = gwtest.setup(tmp_path, mosquitto.port)
    gw = Gateway(gwtest.load(cfg)).start()
    gw.stop()
    conn = store.connect(tmp_path / "segel.db")
    want = registry.secret_fingerprint(registry.load_fleet_secret(tmp_path / "fleet.key"))
    assert registry.stored_fingerprint(conn) == want


def test_provision_refuses_a_fleet_folder_whose_secret_is_not_the_registrys(tmp_path: Path) -> None:
    init_fleet(tmp_path / "a")
    b = init_fleet(tmp_path / "b")
    r = CliRunner().invoke(main, ["provision", "--fleet", str(tmp_path / "b"), "--count", "2",
                                  "--db", str(tmp_path / "a" / "registry.db")])
    assert r.exit_code != 0 and "is not the one the registry" in r.output, r.output
    assert not store.connect(tmp_path / "a" / "registry.db").execute("SELECT * FROM devices").fetchall()
    r = CliRunner().invoke(main, ["fleet", "show", "--fleet", str(tmp_path / "b"),
                                  "--db", str(tmp_path / "a" / "registry.db")])
    assert "DIFFERENT" in r.output, r.output
    assert b.secret_path.exists()


def test_second_gateway_on_the_same_database_is_refused_naming_the_first(tmp_path: Path, mosquitto) -> None:
    cfg, _ = gwtest.setup(tmp_path, mosquitto.port)
    first = Gateway(gwtest.load(cfg)).start()
    try:
        with pytest.raises(AlreadyRunning) as e:
            Gateway(gwtest.load(cfg)).start()
        msg = str(e.value)
        assert f"pid {os.getpid()}" in msg and socket.gethostname() in msg
        assert str(tmp_path / "segel.db") in msg
        # the same through the command a tired operator types in a second terminal
        r = CliRunner().invoke(main, ["gateway", "--config", str(cfg), "--client-id", "other-id"])
        assert r.exit_code == 1 and "another gateway is already running" in r.output, r.output
        assert first.snapshot().mqtt_connected
    finally:
        first.stop()
    # once the first stopped, a gateway starts again on that database
    again = Gateway(gwtest.load(cfg)).start()
    again.stop()


def test_a_killed_gateways_lock_does_not_block_the_next_start(tmp_path: Path) -> None:
    db = tmp_path / "segel.db"
    code = ("import sys, time; from segel.service.lock import InstanceLock; "
            f"InstanceLock({str(db)!r}, 'crashy').acquire(); print('held', flush=True); time.sleep(60)")
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout is not None and p.stdout.readline().strip() == "held"
        with pytest.raises(AlreadyRunning, match=f"pid {p.pid}.*instance crashy"):
            InstanceLock(db).acquire()
        assert (holder(db) or {}).get("pid") == p.pid
    finally:
        p.kill()
        p.wait()
        if p.stdout is not None:
            p.stdout.close()
    deadline = time.monotonic() + 5
    while True:  # the kernel drops a dead process's flock at once
        try:
            InstanceLock(db).acquire().release()
            break
        except AlreadyRunning:
            assert time.monotonic() < deadline
            time.sleep(0.05)


def test_two_gateways_with_one_client_id_are_told_so(tmp_path: Path, mosquitto, caplog) -> None:
    """On two databases the lock cannot see each other: the broker hands the session back and
    forth, and the log says why instead of only "Unspecified error"."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    cfg_a, _ = gwtest.setup(tmp_path / "a", mosquitto.port)
    cfg_b, _ = gwtest.setup(tmp_path / "b", mosquitto.port)
    a = Gateway(gwtest.load(cfg_a)).start()
    b = Gateway(gwtest.load(cfg_b)).start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(
                "another client is probably using our client id 'gw-test'" in r.getMessage() for r in caplog.records):
            time.sleep(0.2)
        assert any("another client is probably using our client id 'gw-test'" in r.getMessage()
                   for r in caplog.records)
    finally:
        a.stop()
        b.stop()


def test_fleet_init_with_the_gateways_database_in_a_new_folder(tmp_path: Path) -> None:
    """README step 2: `segel fleet init --db /var/lib/segel/segel.db` before the folder exists."""
    r = CliRunner().invoke(main, ["fleet", "init", "--fleet", str(tmp_path / "fleet"),
                                  "--db", str(tmp_path / "var" / "lib" / "segel.db")])
    assert r.exit_code == 0, r.output
    conn = store.connect(tmp_path / "var" / "lib" / "segel.db")
    assert registry.stored_fingerprint(conn) is not None
