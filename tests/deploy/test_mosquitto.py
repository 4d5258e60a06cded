"""The generated Mosquitto configuration, started for real: accounts, ACLs, TLS, queues."""

from __future__ import annotations

import getpass
import re
import socket
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from segel.cli import main
from segel.deploy import mosquitto as deploy
from segel.registry import Registry, create_fleet_secret
from segel.store import connect

from tests import servers
from tests.deploy import tlsutil
from tests.deploy.mqttutil import Client

ROOT = Path(__file__).resolve().parents[2]
T1, T2 = "000101", "000102"


@dataclass
class Broker:
    server: servers.Server
    plain: int
    tls: int
    ca: Path
    wrong_ca: Path
    pw: dict[str, str]
    out: Path
    secret: bytes
    depot: int

    def client(self, user: str | None, password: str | None = None, tls: bool = False, **kw: object) -> Client:
        if user is not None and password is None:
            password = self.pw[user]
        return Client(self.tls if tls else self.plain, user, password, self.ca if tls else None, **kw)  # type: ignore[arg-type]

    def connected(self, user: str, **kw: object) -> Client:
        c = self.client(user, **kw)  # type: ignore[arg-type]
        assert c.connect() == 0, f"{user} was refused"
        return c


def make_registry(folder: Path) -> tuple[Registry, bytes, Path, Path]:
    db, secret_path = folder / "segel.db", folder / "fleet-secret.hex"
    secret = create_fleet_secret(secret_path)
    reg = Registry(connect(db))
    reg.add_device(0x000101)
    reg.add_device(0x000102)
    reg.add_device(0x000103, key_epoch=2)
    reg.pair("KT-001", 0x000101, tps="TPS-001")
    return reg, secret, db, secret_path


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    work = tmp_path_factory.mktemp("broker")
    reg, secret, _, _ = make_registry(work)
    ca, ca_key, ca_cert = tlsutil.make_ca(work / "tls", "segel-test-ca")
    wrong_ca, _, _ = tlsutil.make_ca(work / "tls", "someone-else-ca")
    crt, key = tlsutil.make_server_cert(work / "tls", ca_key, ca_cert)
    plain, tls, depot = servers.free_port(), servers.free_port(), servers.free_port()
    out = work / "etc"
    settings = deploy.MosquittoSettings(
        conf_dir=str(out), persistence_dir=str(work / "data"), plain_port=plain, tls_port=tls,
        tls_bind="127.0.0.1",  # tests stay on loopback; production binds every interface
        cafile=str(ca), certfile=str(crt), keyfile=str(key), log_dest="stdout",
        depot_listener=f"127.0.0.2:{depot}",  # stands in for a depot LAN address
        run_as=getpass.getuser(),  # the test runs the broker as whoever runs pytest
    )
    (work / "data").mkdir()
    written = deploy.write_mosquitto(out, reg, secret, settings, bridges=["ppk-sangatta", "ppk-bengalon"])
    pw = {a.username: a.password for a in written.accounts}
    srv = servers.Server("mosquitto", [servers.require("mosquitto"), "-c", str(out / "mosquitto.conf")], plain, work)
    srv.start()
    servers.wait_port(tls)
    yield Broker(srv, plain, tls, ca, wrong_ca, pw, out, secret, depot)
    srv.stop()


# ---- the files ---------------------------------------------------------------------------------


def test_our_password_hash_is_the_format_mosquitto_passwd_writes(tmp_path: Path) -> None:
    f = tmp_path / "pw"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(f), "alice", "s3cret pass"], check=True)
    encoded = f.read_text().strip().split(":", 1)[1]
    assert deploy.verify_password("s3cret pass", encoded)
    assert not deploy.verify_password("s3cret pasS", encoded)
    salt = encoded.split("$")[3]
    import base64
    assert deploy.hash_password("s3cret pass", base64.b64decode(salt)) == encoded


def test_acl_names_every_account_and_no_pattern(broker: Broker) -> None:
    acl = (broker.out / "acl").read_text()
    assert "pattern" not in acl.replace("no `pattern`", "")
    for user in (T1, T2, "000103", "ppk-sangatta", "segel-gateway", "segel-dashboard"):
        assert f"user {user}\n" in acl
    assert "topic write segel/up/000101\ntopic read segel/down/000101\n" in acl
    assert oct((broker.out / "passwd").stat().st_mode & 0o777) == "0o640"
    assert oct((broker.out / "credentials.json").stat().st_mode & 0o777) == "0o600"


def test_repository_mosquitto_conf_is_the_generated_default() -> None:
    assert (ROOT / "deploy" / "mosquitto" / "mosquitto.conf").read_text() == deploy.mosquitto_conf(), \
        "regenerate: python -c 'from segel import deploy; print(deploy.mosquitto_conf(), end=\"\")' > deploy/mosquitto/mosquitto.conf"


def test_conf_never_drops_queued_qos1_and_keeps_plain_on_loopback() -> None:
    conf = deploy.mosquitto_conf()
    lines = [ln.strip() for ln in conf.splitlines() if ln.strip() and not ln.startswith("#")]
    # bounded, but far above Mosquitto's default of 1000 and sized from the fleet (a stray session
    # must not grow for ever: tests/safety/test_broker_sessions.py)
    assert f"max_queued_messages {deploy.QUEUE_FLOOR}" in lines and "max_queued_bytes 0" in lines
    assert deploy.queue_limit(20_000) >= 20_000 * 12 * 48  # every tracker's positions for two days
    assert "persistence true" in lines and "allow_anonymous false" in lines
    listeners = [ln for ln in lines if ln.startswith("listener ")]
    assert listeners == ["listener 1883 127.0.0.1", "listener 8883"]


# ---- authentication ----------------------------------------------------------------------------


def test_anonymous_and_wrong_passwords_are_refused(broker: Broker) -> None:
    assert broker.client(None).connect() != 0
    assert broker.client(T1, "not-the-password").connect() != 0
    assert broker.client("nobody", "x").connect() != 0
    # a tracker's password is bound to its key epoch: 000103 is at epoch 2, its epoch-0 password fails
    stale = deploy.tracker_password(broker.secret, 0x000103, 0)
    assert broker.pw["000103"] == deploy.tracker_password(broker.secret, 0x000103, 2) != stale
    assert broker.client("000103", stale).connect() != 0
    assert broker.client(T1, broker.pw[T2]).connect() != 0
    c = broker.connected("000103")
    c.close()


def test_tracker_password_is_derived_from_its_key_epoch(tmp_path: Path) -> None:
    secret = bytes(range(32))
    assert deploy.tracker_password(secret, 0x101, 0) == deploy.tracker_password(secret, 0x101, 0)
    assert deploy.tracker_password(secret, 0x101, 0) != deploy.tracker_password(secret, 0x101, 1)
    assert deploy.tracker_password(secret, 0x101, 0) != deploy.tracker_password(secret, 0x102, 0)


# ---- authorisation -----------------------------------------------------------------------------


def attempt(broker: Broker, user: str, topic: str, payload: bytes) -> None:
    """A publish the ACL must refuse, at QoS 0 and at QoS 1, each on its own connection:
    Mosquitto 2.0.11 answers a denied QoS 1 publish from an MQTT 3.1.1 client with an MQTT 5
    style PUBACK (reason 0x87), which paho treats as a protocol error and disconnects."""
    for qos in (0, 1):
        c = broker.connected(user)
        try:
            c.c.publish(topic, payload, qos)
            c.drain(0.2)
        finally:
            c.close()


def test_tracker_cannot_publish_as_another_tracker(broker: Broker) -> None:
    gw = broker.connected("segel-gateway")
    assert gw.subscribe("segel/up/+") == [1]
    gw.subscribe("segel/alerts/#")
    attempt(broker, T1, f"segel/up/{T2}", b"forged")
    attempt(broker, T1, "segel/alerts/seal_open", b"forged alert")
    attempt(broker, T1, f"segel/down/{T2}", b"forged downlink")
    t1 = broker.connected(T1)
    t1.publish(f"segel/up/{T1}", b"genuine")
    got = gw.wait_for(b"genuine")
    assert got == [(f"segel/up/{T1}", b"genuine")]
    t1.close()
    gw.close()


def test_tracker_cannot_read_alerts_others_or_everything(broker: Broker) -> None:
    t1 = broker.connected(T1)
    sub_all = t1.subscribe("#")
    sub_alerts = t1.subscribe("segel/alerts/#")
    assert t1.subscribe(f"segel/down/{T1}") == [1]
    gw = broker.connected("segel-gateway")
    t2 = broker.connected(T2)
    gw.publish("segel/alerts/seal_open", b'{"alert": 1}')
    gw.publish(f"segel/down/{T2}", b"for t2")
    t2.publish(f"segel/up/{T2}", b"t2 uplink")
    gw.publish(f"segel/down/{T1}", b"for t1")
    got = t1.wait_for(b"for t1")
    assert got == [(f"segel/down/{T1}", b"for t1")], f"subscribe # -> {sub_all}, alerts -> {sub_alerts}"
    assert t1.drain() == []
    for c in (t1, t2, gw):
        c.close()


def test_bridge_publishes_only_its_own_topics_and_reads_its_downlinks(broker: Broker) -> None:
    gw = broker.connected("segel-gateway")
    gw.subscribe("segel/bridge/+/up")
    gw.subscribe("segel/bridge/+/status")
    gw.subscribe("segel/up/+")
    attempt(broker, "ppk-sangatta", "segel/bridge/ppk-bengalon/up", b"forged bridge")
    attempt(broker, "ppk-sangatta", f"segel/up/{T1}", b"forged tracker")
    br = broker.connected("ppk-sangatta")
    br.subscribe("segel/bridge/+/down")  # wildcard is fine, but only its own downlinks arrive
    br.publish("segel/bridge/ppk-sangatta/status", b"online")
    br.publish("segel/bridge/ppk-sangatta/up", b"heard")
    got = gw.wait_for(b"heard")
    assert [p for _, p in got] == [b"online", b"heard"]
    gw.publish("segel/bridge/ppk-bengalon/down", b"not yours")
    gw.publish("segel/bridge/ppk-sangatta/down", b"yours")
    assert br.wait_for(b"yours") == [("segel/bridge/ppk-sangatta/down", b"yours")]
    for c in (gw, br):
        c.close()


def test_dashboard_reads_alerts_and_status_only(broker: Broker) -> None:
    dash = broker.connected("segel-dashboard")
    dash.subscribe("#")
    gw = broker.connected("segel-gateway")
    t1 = broker.connected(T1)
    t1.publish(f"segel/up/{T1}", b"uplink")
    gw.publish(f"segel/down/{T1}", b"downlink")
    gw.publish("segel/gateway/status", b"gw ok")
    attempt(broker, "segel-dashboard", "segel/alerts/seal_open", b"forged by dashboard")
    attempt(broker, "segel-dashboard", f"segel/down/{T1}", b"forged downlink")
    gw.publish("segel/alerts/seal_open", b"real alert")
    got = dash.wait_for(b"real alert")
    assert [(t, p) for t, p in got] == [("segel/gateway/status", b"gw ok"), ("segel/alerts/seal_open", b"real alert")]
    for c in (dash, gw, t1):
        c.close()


# ---- TLS ---------------------------------------------------------------------------------------


def test_tls_with_the_right_ca_works(broker: Broker) -> None:
    gw = broker.connected("segel-gateway")
    gw.subscribe("segel/up/+")
    t1 = broker.client(T1, tls=True)
    assert t1.connect() == 0
    t1.publish(f"segel/up/{T1}", b"over tls")
    assert gw.wait_for(b"over tls") == [(f"segel/up/{T1}", b"over tls")]
    t1.close()
    gw.close()


def test_tls_with_a_wrong_ca_is_refused(broker: Broker) -> None:
    for ca, ok in ((broker.ca, True), (broker.wrong_ca, False)):
        ctx = ssl.create_default_context(cafile=str(ca))
        with socket.create_connection(("127.0.0.1", broker.tls), timeout=5) as raw:
            if ok:
                with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                    assert tls.version() in ("TLSv1.2", "TLSv1.3")
            else:
                with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
                    ctx.wrap_socket(raw, server_hostname="127.0.0.1")


def test_anonymous_is_refused_over_tls_too(broker: Broker) -> None:
    assert broker.client(None, tls=True).connect() != 0


def test_depot_listener_takes_trackers_with_passwords_only(broker: Broker) -> None:
    gw = broker.connected("segel-gateway")
    gw.subscribe("segel/up/+")
    assert Client(broker.depot, None, None, host="127.0.0.2").connect() != 0
    assert Client(broker.depot, T1, "wrong", host="127.0.0.2").connect() != 0
    t1 = Client(broker.depot, T1, broker.pw[T1], host="127.0.0.2")
    assert t1.connect() == 0
    t1.publish(f"segel/up/{T1}", b"from the depot")
    assert gw.wait_for(b"from the depot") == [(f"segel/up/{T1}", b"from the depot")]
    t1.close()
    gw.close()
    with pytest.raises(deploy.DeployError, match="one LAN address"):
        deploy.mosquitto_conf(deploy.MosquittoSettings(depot_listener="0.0.0.0:1883"))


# ---- queues and persistence -------------------------------------------------------------------


def queued_while_offline(broker: Broker, port: int, n: int) -> list[bytes]:
    """Uplinks a tracker publishes while the gateway's persistent session is offline, as the
    gateway receives them when it comes back."""
    def gateway() -> Client:
        return Client(port, "segel-gateway", broker.pw["segel-gateway"], client_id="segel-gateway-test", clean=False)

    gw = gateway()
    assert gw.connect() == 0
    gw.subscribe("segel/up/+")
    gw.close()
    t1 = Client(port, T1, broker.pw[T1])
    assert t1.connect() == 0
    for i in range(n):
        t1.c.publish(f"segel/up/{T1}", str(i).encode(), 1)
    t1.publish(f"segel/up/{T1}", b"last")
    t1.close()
    gw = gateway()
    assert gw.connect() == 0 and gw.session_present
    got: list[bytes] = []
    while not got or got[-1] != b"last":
        more = gw.drain(1.0)
        if not more:
            break
        got += [p for _, p in more]
    gw.close()
    return got


def test_offline_gateway_gets_every_qos1_uplink_beyond_the_default_limit(broker: Broker) -> None:
    n = 2500  # Mosquitto's default max_queued_messages (1000) would drop 1500 of these
    assert queued_while_offline(broker, broker.plain, n) == [str(i).encode() for i in range(n)] + [b"last"]


def test_with_mosquitto_s_default_queue_limit_the_same_run_loses_uplinks(broker: Broker, tmp_path: Path) -> None:
    """The control: the generated config with only the queue limit put back to the default."""
    port = servers.free_port()
    conf = (broker.out / "mosquitto.conf").read_text()
    conf = re.sub(r"(?m)^max_queued_messages \d+$", "max_queued_messages 1000", conf).replace(
        f"listener {broker.plain} 127.0.0.1", f"listener {port} 127.0.0.1")
    conf = "\n".join(ln for ln in conf.splitlines() if not ln.startswith(("listener 8883", f"listener {broker.tls}",
                                                                            f"listener {broker.depot}")))
    conf = conf.split("# MQTT over TLS")[0] + conf.split("tls_version tlsv1.2")[1]
    (tmp_path / "data").mkdir()
    conf = re.sub(r"(?m)^persistence_location .*$", f"persistence_location {tmp_path}/data/", conf)
    (tmp_path / "m.conf").write_text(conf)
    srv = servers.Server("mosquitto", [servers.require("mosquitto"), "-c", str(tmp_path / "m.conf")], port, tmp_path).start()
    try:
        got = queued_while_offline(broker, port, 2500)
    finally:
        srv.stop()
    assert 900 <= len(got) <= 1100 and b"last" not in got


# ---- the command -------------------------------------------------------------------------------


def test_cli_writes_files_and_keeps_service_passwords(tmp_path: Path) -> None:
    _, _, db, secret = make_registry(tmp_path)
    out = tmp_path / "out"
    args = ["deploy", "mosquitto", "--out", str(out), "--db", str(db), "--fleet-secret", str(secret),
            "--bridge", "ppk-sangatta"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    assert "6 accounts: 1 bridge, 1 consumer, 1 gateway, 3 tracker" in res.output
    first = (out / "credentials.json").read_text()
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0 and (out / "credentials.json").read_text() == first
    res = CliRunner().invoke(main, [*args, "--rotate", "ppk-sangatta"])
    assert res.exit_code == 0 and (out / "credentials.json").read_text() != first
    res = CliRunner().invoke(main, [*args, "--bridge", "00abcd"])
    assert res.exit_code != 0 and "looks like a tracker id" in res.output
    res = CliRunner().invoke(main, ["deploy", "tracker-password", "000101", "--db", str(db), "--fleet-secret", str(secret)])
    assert res.exit_code == 0
    reg = Registry(connect(db))
    dev = reg.get(0x101)
    assert dev is not None
    from segel.registry import load_fleet_secret
    assert res.output.strip() == deploy.tracker_password(load_fleet_secret(secret), 0x101, dev.key_epoch)
    # the paths can come from the gateway's own config file
    (tmp_path / "segel.toml").write_text(f'[gateway]\ndb = "{db.name}"\nfleet_secret = "{secret.name}"\n')
    res = CliRunner().invoke(main, ["deploy", "mosquitto", "--config", str(tmp_path / "segel.toml"), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "user ppk-sangatta" not in (out / "acl").read_text() and "user 000103" in (out / "acl").read_text()
    res = CliRunner().invoke(main, ["deploy", "mosquitto", "--out", str(out), "--db", str(tmp_path / "none.db")])
    assert res.exit_code != 0 and "none.db not found" in res.output


def test_registry_bridges_and_name_clashes(tmp_path: Path) -> None:
    reg = Registry(connect(tmp_path / "r.db"))
    reg.add_device(0x000101)
    reg.add_device(0x00B001, role="bridge")
    accts = {a.username: a for a in deploy.build_accounts(reg, bytes(32), bridges=["ppk-a"])}
    assert accts["00b001"].role == deploy.BRIDGE and accts["000101"].role == deploy.TRACKER
    assert ("write", "segel/bridge/00b001/up") in deploy.rules(accts["00b001"])
    with pytest.raises(deploy.DeployError, match="used twice"):
        deploy.build_accounts(reg, bytes(32), bridges=["ppk-a"], consumers=["ppk-a"])
    with pytest.raises(deploy.DeployError, match="not usable"):
        deploy.build_accounts(reg, bytes(32), bridges=["ppk/#"])
    with pytest.raises(deploy.DeployError, match="cannot rotate"):
        deploy.build_accounts(reg, bytes(32), rotate=["000101"])
    assert "<password hidden>" in repr(accts["000101"]) and accts["000101"].password not in repr(accts["000101"])
