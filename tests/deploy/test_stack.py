"""The deployment end to end on loopback: the broker configuration `segel deploy` generates, an
InfluxDB 1.6.7 with authentication set up by deploy/influxdb/setup-1x.sh, and the real gateway
(segel.gateway.Gateway) configured by deploy/segel.toml plus the environment variables the
systemd unit and Compose file pass. Trackers publish over TLS with their own credentials; the
dashboards' queries then run as Grafana's read-only user."""

from __future__ import annotations

import getpass
import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from segel import config as gwconfig
from segel import protocol, store
from segel.deploy import mosquitto as deploy
from segel.edge import topics
from segel.registry import KeyRing, Registry, create_fleet_secret
from segel.service.gateway import Gateway

from tests import servers
from tests.deploy import tlsutil
from tests.deploy.influxql import Variable, interpolate
from tests.deploy.mqttutil import Client
from tests.deploy.test_influx_setup import PW, query

ROOT = Path(__file__).resolve().parents[2]
DEVICES = (0x000301, 0x000302, 0x000303)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[dict]:
    # registry and fleet secret, as provisioning leaves them
    secret = create_fleet_secret(tmp_path / "fleet.key")
    conn = store.connect(tmp_path / "segel.db")
    reg = Registry(conn)
    for i, d in enumerate(DEVICES):
        reg.add_device(d)
        reg.pair(f"KT-{i + 1:03d}", d, tps=f"TPS-{i + 1:03d}")
    conn.close()
    # the broker, from the registry
    ca, ca_key, ca_cert = tlsutil.make_ca(tmp_path / "tls", "stack-ca")
    crt, key = tlsutil.make_server_cert(tmp_path / "tls", ca_key, ca_cert)
    plain, tls = servers.free_port(), servers.free_port()
    (tmp_path / "mqdata").mkdir()
    settings = deploy.MosquittoSettings(conf_dir=str(tmp_path / "etc"), persistence_dir=str(tmp_path / "mqdata"),
                                        plain_port=plain, tls_port=tls, tls_bind="127.0.0.1", cafile=str(ca),
                                        certfile=str(crt), keyfile=str(key), log_dest="stdout",
                                        run_as=getpass.getuser())
    written = deploy.write_mosquitto(tmp_path / "etc", Registry(store.connect(tmp_path / "segel.db")), secret, settings)
    pw = {a.username: a.password for a in written.accounts}
    broker = servers.Server("mosquitto", [servers.require("mosquitto"), "-c", str(tmp_path / "etc" / "mosquitto.conf")],
                            plain, tmp_path).start()
    servers.wait_port(tls)
    # InfluxDB with authentication, set up by the deployment script
    influx = servers.influxdb(tmp_path / "influxdb")
    conf = influx.workdir / "influxdb.conf"
    conf.write_text(conf.read_text().replace("[http]\n", "[http]\n  auth-enabled = true\n"))
    influx.start()
    servers.wait_http_ok(f"{influx.url}/ping")
    env = {**os.environ, "INFLUX_HOST": "127.0.0.1", "INFLUX_PORT": str(influx.port),
           "SEGEL_INFLUX_ADMIN_PASSWORD": PW["admin"], "SEGEL_INFLUX_GATEWAY_PASSWORD": PW["segel_gateway"],
           "SEGEL_INFLUX_GRAFANA_PASSWORD": PW["segel_grafana"]}
    subprocess.run(["sh", str(ROOT / "deploy" / "influxdb" / "setup-1x.sh")], env=env, check=True,
                   capture_output=True, timeout=60)
    # the gateway: deploy/segel.toml, with this machine's paths and the secrets from the environment
    cfg = gwconfig.load(ROOT / "deploy" / "segel.toml", env={
        "SEGEL_GATEWAY_DB": str(tmp_path / "segel.db"), "SEGEL_GATEWAY_FLEET_SECRET": str(tmp_path / "fleet.key"),
        "SEGEL_GATEWAY_RECORDING_DIR": str(tmp_path / "rec"), "SEGEL_GATEWAY_METRICS_PORT": "0",
        "SEGEL_GATEWAY_HEALTH_INTERVAL_S": "0.5", "SEGEL_GATEWAY_TICK_INTERVAL_S": "0.5",
        "SEGEL_MQTT_URL": f"mqtt://127.0.0.1:{plain}", "SEGEL_MQTT_PASSWORD": pw[deploy.DEFAULT_GATEWAY],
        "SEGEL_INFLUX_URL": influx.url, "SEGEL_INFLUX_PASSWORD": PW["segel_gateway"],
    })
    gw = Gateway(cfg).start()
    try:
        yield {"gw": gw, "pw": pw, "tls": tls, "ca": ca, "influx": influx, "secret": secret}
    finally:
        gw.stop()
        broker.stop()
        influx.stop()


def test_trackers_over_tls_reach_the_dashboards(stack: dict) -> None:
    gw: Gateway = stack["gw"]
    assert gw.wait_until(lambda s: s.mqtt_connected, 10), "the gateway could not log in to the broker"
    dash = Client(stack["tls"], "segel-dashboard", stack["pw"]["segel-dashboard"], stack["ca"])
    assert dash.connect() == 0
    dash.subscribe(topics.GATEWAY_STATUS)
    now = int(time.time())
    trackers = []
    for n, dev in enumerate(DEVICES):
        user = f"{dev:06x}"
        c = Client(stack["tls"], user, deploy.tracker_password(stack["secret"], dev, 0), stack["ca"])
        assert c.connect() == 0, user
        c.subscribe(topics.tracker_down(user))
        keys = KeyRing(stack["secret"], Registry(store.connect(gw.cfg.path(gw.cfg.gateway.db)))).keys_for(dev)
        assert keys is not None
        for k in range(1, 4):
            pos = protocol.Position(0.5 + n * 0.01 + k * 1e-4, 117.5, protocol.Flag.FIX, 0.9, 20)
            c.publish(topics.tracker_up(user), protocol.encode(keys, dev, k, now - 60 + k, pos))
        c.publish(topics.tracker_up(user), protocol.encode(keys, dev, 4, now,
                                                           protocol.Status(3900 - n * 100, "1.0", 0, 4, 0, 60)))
        trackers.append((c, keys))
    # every tracker gets its acks back on its own downlink topic
    for c, keys in trackers:
        deadline = time.monotonic() + 15
        acked: set[int] = set()
        while acked != {1, 2, 3, 4} and time.monotonic() < deadline:
            for _topic, payload in c.drain(0.2):
                acked |= set(protocol.verify_and_decode(keys, payload).body.counters)  # type: ignore[union-attr]
        assert acked == {1, 2, 3, 4}
        c.close()
    # the gateway's status reaches the read-only consumer
    _status_with(dash, lambda st: st["accepted"] >= 4 * len(DEVICES))
    dash.close()
    # and the data reaches InfluxDB, readable by Grafana's user with the dashboards' own queries
    assert gw.wait_until(lambda s: s.influx_written >= 16 and s.outbox_depth == 0, 20), gw.snapshot()
    build = _build()
    q = interpolate(_query(build.box_detail(), "Battery"), (now - 3600) * 1000, (now + 60) * 1000,
                    "1m", [Variable("box", ("KT-002",))])
    status, answer = query(stack["influx"], "segel_grafana", q)
    assert status == 200 and answer["results"][0]["series"][0]["values"][-1][1] == 3800.0, answer
    fleet = build.fleet_health()
    q = interpolate(_query(fleet, "Battery distribution"), (now - 3600) * 1000, (now + 60) * 1000, "1m", [])
    status, answer = query(stack["influx"], "segel_grafana", q)
    assert status == 200
    assert {s["tags"]["device"] for s in answer["results"][0]["series"]} == {f"{d:06x}" for d in DEVICES}


def _query(dashboard: dict, title: str) -> str:
    [p] = [p for p in dashboard["panels"] if p["title"] == title]
    return str(p["targets"][0]["query"])


def _status_with(c: Client, pred: Callable[[dict], bool]) -> dict:
    """The first gateway status (retained, then every health interval) for which pred holds."""
    seen = []
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        for topic, payload in c.drain(0.2):
            assert topic == topics.GATEWAY_STATUS, topic  # nothing else reaches a consumer subscribed to it
            st = json.loads(payload)
            seen.append(st)
            if pred(st):
                return st
    raise AssertionError(f"no such gateway status; saw {seen[-3:]}")


def _build():  # noqa: ANN202
    from tests.deploy.test_dashboards import build_module

    return build_module()
