"""deploy/influxdb/setup-1x.sh against a real InfluxDB 1.6.7 with authentication on: the gateway's
user can only write, Grafana's can only read, and the dashboards' queries work as Grafana's user."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from segel import config as gwconfig
from segel.influx import schema
from segel.influx.writers import V1Writer, WriteError

from tests import servers

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "influxdb" / "setup-1x.sh"
PW = {"admin": "adm'in\\pw", "segel_gateway": "gw pass", "segel_grafana": "gf-pass"}


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[servers.Server]:
    srv = servers.influxdb(tmp_path / "influxdb")
    conf = srv.workdir / "influxdb.conf"
    conf.write_text(conf.read_text().replace("[http]\n", "[http]\n  auth-enabled = true\n"))
    srv.start()
    servers.wait_http_ok(f"{srv.url}/ping")
    yield srv
    srv.stop()


def run_setup(srv: servers.Server, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "INFLUX_HOST": "127.0.0.1", "INFLUX_PORT": str(srv.port),
           "SEGEL_INFLUX_ADMIN_PASSWORD": PW["admin"], "SEGEL_INFLUX_GATEWAY_PASSWORD": PW["segel_gateway"],
           "SEGEL_INFLUX_GRAFANA_PASSWORD": PW["segel_grafana"], **extra}
    return subprocess.run(["sh", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60)


def query(srv: servers.Server, user: str, q: str, method: str = "POST") -> tuple[int, dict]:
    params = urllib.parse.urlencode({"q": q, "db": "segel"})
    auth = base64.b64encode(f"{user}:{PW[user]}".encode()).decode()
    url = f"{srv.url}/query" + (f"?{params}" if method == "GET" else "")
    req = urllib.request.Request(url, data=params.encode() if method == "POST" else None, method=method,
                                 headers={"Authorization": f"Basic {auth}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def test_setup_makes_write_only_and_read_only_users(secured: servers.Server) -> None:
    res = run_setup(secured)
    assert res.returncode == 0, res.stdout + res.stderr
    res = run_setup(secured, SEGEL_INFLUX_RETENTION="400d")  # again: idempotent, updates the duration
    assert res.returncode == 0, res.stdout + res.stderr

    status, body = query(secured, "admin", 'SHOW RETENTION POLICIES ON "segel"')
    rps = {v[0]: v for v in body["results"][0]["series"][0]["values"]}
    assert rps["segel"][1] == "9600h0m0s" and rps["segel"][4] is True  # 400 days, the default

    # the gateway, configured by deploy/segel.toml, writes with its write-only user
    cfg = gwconfig.load(ROOT / "deploy" / "segel.toml", env={})
    assert cfg.influx.create_database is False and cfg.influx.username == "segel_gateway"
    w = V1Writer(secured.url, cfg.influx.database, cfg.influx.retention_policy, cfg.influx.username,
                 PW["segel_gateway"], create_database=cfg.influx.create_database)
    w.write([schema.point("status", {"device": "000101", "box": "KT-1"}, {"battery_mv": 3900, "counter": 1},
                          1_800_000_000 * 10**9)])
    status, body = query(secured, "segel_gateway", 'SELECT * FROM "status"')
    assert status in (401, 403) or "error" in body["results"][0], body  # cannot read
    # Grafana's user reads (POST, as the provisioned data source does, and GET) ...
    for method in ("POST", "GET"):
        status, body = query(secured, "segel_grafana", 'SELECT last("battery_mv") FROM "status" GROUP BY "box"', method)
        assert status == 200 and body["results"][0]["series"][0]["values"][0][1] == 3900.0, body
    # ... but cannot write, drop or create
    gf = V1Writer(secured.url, "segel", None, "segel_grafana", PW["segel_grafana"])
    with pytest.raises(WriteError) as e:
        gf.write([schema.point("status", {"device": "000101"}, {"battery_mv": 1, "counter": 2}, 1)])
    assert e.value.status == 403
    status, body = query(secured, "segel_grafana", 'DROP MEASUREMENT "status"')
    assert status in (401, 403) or "error" in body["results"][0], body
    status, body = query(secured, "segel_gateway", 'CREATE DATABASE "other"')
    assert status in (401, 403) or "error" in body["results"][0], body


def test_setup_refuses_to_run_without_passwords(secured: servers.Server) -> None:
    res = run_setup(secured, SEGEL_INFLUX_GRAFANA_PASSWORD="")
    assert res.returncode != 0 and "SEGEL_INFLUX_GRAFANA_PASSWORD" in res.stderr
