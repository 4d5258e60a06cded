"""The real servers the suite depends on start, answer and stop."""

from __future__ import annotations

import json
import urllib.request

from tests import servers


def test_influxdb_write_and_query(influxdb: servers.Server) -> None:
    servers.influx_query(influxdb, "CREATE DATABASE t")
    req = urllib.request.Request(f"{influxdb.url}/write?db=t&precision=s", data=b"m v=1.5 1732233600", method="POST")
    with urllib.request.urlopen(req) as r:
        assert r.status == 204
    res = servers.influx_query(influxdb, "SELECT v FROM m", db="t")
    assert res["results"][0]["series"][0]["values"][0][1] == 1.5


def test_mosquitto_restart_keeps_port(mosquitto: servers.Server) -> None:
    port = mosquitto.port
    mosquitto.stop()
    mosquitto.start()
    assert mosquitto.port == port
    assert mosquitto.proc is not None and mosquitto.proc.poll() is None


def test_victoria_accepts_line_protocol(victoria: servers.Server) -> None:
    import time

    ts = int(time.time())
    req = urllib.request.Request(f"{victoria.url}/write?precision=s", data=f"m,dev=a v=2 {ts}".encode(), method="POST")
    with urllib.request.urlopen(req) as r:
        assert r.status == 204
    urllib.request.urlopen(f"{victoria.url}/internal/force_flush").read()
    with urllib.request.urlopen(f"{victoria.url}/api/v1/export?match[]=m_v") as r:
        rows = [json.loads(line) for line in r.read().splitlines()]
    assert rows and rows[0]["values"] == [2]
