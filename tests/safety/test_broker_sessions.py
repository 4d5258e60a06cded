"""A stray persistent session is bounded (issue 19): the generated Mosquitto configuration caps
what any one session may queue, so a one-off client id cannot make the broker hold the fleet's
uplinks for it without limit; the credentials the setup needs are shown by a command."""

from __future__ import annotations

import getpass
import json
from pathlib import Path

from click.testing import CliRunner
from segel.cli import main
from segel.deploy import mosquitto as deploy
from segel.registry import Registry, create_fleet_secret
from segel.store import connect

from tests import servers
from tests.deploy import tlsutil
from tests.deploy.mqttutil import Client


def test_a_stray_persistent_session_holds_at_most_the_configured_queue(tmp_path: Path) -> None:
    secret = create_fleet_secret(tmp_path / "fleet.key")
    reg = Registry(connect(tmp_path / "segel.db"))
    reg.add_device(0x101)
    ca, ca_key, ca_cert = tlsutil.make_ca(tmp_path / "tls", "ca")
    crt, key = tlsutil.make_server_cert(tmp_path / "tls", ca_key, ca_cert)
    plain, tls = servers.free_port(), servers.free_port()
    (tmp_path / "data").mkdir()
    settings = deploy.MosquittoSettings(conf_dir=str(tmp_path / "etc"), persistence_dir=str(tmp_path / "data"),
                                        plain_port=plain, tls_port=tls, tls_bind="127.0.0.1", cafile=str(ca),
                                        certfile=str(crt), keyfile=str(key), log_dest="stdout",
                                        run_as=getpass.getuser(), max_queued=1000)
    written = deploy.write_mosquitto(tmp_path / "etc", reg, secret, settings)
    assert "max_queued_messages 1000" in (tmp_path / "etc" / "mosquitto.conf").read_text()
    pw = {a.username: a.password for a in written.accounts}
    srv = servers.Server("mosquitto", [servers.require("mosquitto"), "-c", str(tmp_path / "etc" / "mosquitto.conf")],
                         plain, tmp_path).start()
    try:
        # someone runs `segel gateway --client-id test` once against production, then stops it
        stray = Client(plain, "segel-gateway", pw["segel-gateway"], client_id="one-off-test", clean=False)
        assert stray.connect() == 0
        stray.subscribe("segel/up/+")
        stray.close()
        t = Client(plain, "000101", pw["000101"])
        assert t.connect() == 0
        for i in range(1500):
            t.c.publish("segel/up/000101", str(i).encode(), 1)
        t.publish("segel/up/000101", b"last")
        t.close()
        back = Client(plain, "segel-gateway", pw["segel-gateway"], client_id="one-off-test", clean=False)
        assert back.connect() == 0 and back.session_present
        got: list[bytes] = []
        while more := back.drain(1.0):
            got += [p for _, p in more]
        back.close()
    finally:
        srv.stop()
    assert 900 <= len(got) <= 1000, len(got)  # the session held what the limit allows, not all 1501


def test_the_limit_is_sized_from_the_fleet() -> None:
    assert deploy.queue_limit(10) == deploy.QUEUE_FLOOR
    assert deploy.queue_limit(1402) == int(1402 * (12 * 3 + 2) * 48)  # the Kutai Timur fleet: two days held


def test_credentials_command_shows_the_registry_and_what_to_paste(tmp_path: Path) -> None:
    secret = create_fleet_secret(tmp_path / "fleet.key")
    reg = Registry(connect(tmp_path / "segel.db"))
    reg.add_device(0x101)
    deploy.write_mosquitto(tmp_path / "out", reg, secret, deploy.MosquittoSettings(), bridges=["ppk-sangatta"])
    creds = json.loads((tmp_path / "out" / "credentials.json").read_text())
    r = CliRunner().invoke(main, ["deploy", "credentials", "--out", str(tmp_path / "out"), "--db",
                                  str(tmp_path / "segel.db")])
    assert r.exit_code == 0, r.output
    assert f"registry      {tmp_path / 'segel.db'} (1 devices)" in r.output
    assert f"SEGEL_MQTT_PASSWORD={creds['segel-gateway']['password']}" in r.output
    assert "SEGEL_BRIDGE_BROKER=mqtt://ppk-sangatta:" in r.output
    r = CliRunner().invoke(main, ["deploy", "credentials", "--out", str(tmp_path / "nowhere")])
    assert r.exit_code == 1 and "run `segel deploy mosquitto --out" in r.output
