from __future__ import annotations

import json
import os
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from segel import protocol, store
from segel.edge import topics
from segel.recording import recorder as recording
from segel.service import health
from segel.service.gateway import Gateway

from tests import servers
from tests.gateway.gwtest import Publisher, influx_counts, load, setup, wait

pytestmark = pytest.mark.slow


def test_end_to_end_mqtt_to_influx_with_acks_metrics_and_recording(tmp_path: Path, mosquitto, influxdb) -> None:
    mport = servers.free_port()
    cfg, fleet = setup(tmp_path, mosquitto.port, influxdb.url, metrics_port=mport)
    gw = Gateway(load(cfg)).start()
    pub = Publisher(mosquitto.port)
    try:
        assert gw.wait_until(lambda s: s.mqtt_connected, 10)
        time.sleep(0.2)
        frames = [fleet.frame(d) for _ in range(10) for d in range(0x101, 0x105)]
        for fr in frames:
            pub.publish(topics.tracker_up(fr[1:4].hex()), fr)
        # a LoRa bridge reception, heard by two base stations
        bfr = fleet.frame(0x101)
        for base, rssi in (("bs-1", -110.0), ("bs-2", -90.0)):
            pub.publish(topics.bridge_up("br1"), json.dumps({
                "frame": bfr.hex(), "rssi": rssi, "snr": 5.0, "base_id": base, "freq_khz": 923200, "sf": 9,
                "rx_time": time.time(), "crc_ok": True, "bridge_id": "br1"}).encode())
        pub.publish(topics.bridge_up("br1"), b"{not json")
        pub.publish(topics.tracker_up("000101"), os.urandom(24))
        assert gw.wait_until(lambda s: s.accepted == 41 and s.duplicates == 1 and sum(s.rejected.values()) == 2, 20), gw.snapshot()
        wait(lambda: influx_counts(influxdb) == (41, 4), 20, "41 positions in InfluxDB")
        # every accepted frame was acknowledged (acks of one batch are merged per tracker)
        want = {(int.from_bytes(f[1:4], "big"), int.from_bytes(f[4:7], "big")) for f in frames + [bfr]}

        def acked() -> set[tuple[int, int]]:
            out: set[tuple[int, int]] = set()
            for t, p in list(pub.down):
                if t.startswith("segel/down/"):
                    dev = int(t.rsplit("/", 1)[1], 16)
                    out |= {(dev, c) for c in protocol.verify_and_decode(fleet.keys(dev), p).body.counters}
                elif t == "segel/bridge/br1/down":
                    d = json.loads(p)
                    assert d["device"] == "000101" and d["tx_at"] is None
                    fr = protocol.verify_and_decode(fleet.keys(0x101), bytes.fromhex(d["frame"]))
                    out |= {(0x101, c) for c in fr.body.counters}
            return out
        try:
            wait(lambda: acked() == want, 10, "acks for every accepted frame")
        except AssertionError:
            raise AssertionError(f"not acked: {sorted(want - acked())}, extra {sorted(acked() - want)}") from None
        body = urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics").read().decode()
        assert 'segel_uplinks_total{outcome="accepted",reason=""} 41.0' in body
        assert 'segel_uplinks_total{outcome="rejected",reason="malformed"} 1.0' in body
        assert "segel_mqtt_connected 1.0" in body and "segel_ingest_lag_seconds" in body
        # time per stage (issue 17): what each covers, and time spent (no judges here: rules 0)
        runs = {ln.split('"')[1]: float(ln.rsplit(" ", 1)[1]) for ln in body.splitlines()
                if ln.startswith("segel_stage_runs_total{")}
        secs = {ln.split('"')[1]: float(ln.rsplit(" ", 1)[1]) for ln in body.splitlines()
                if ln.startswith("segel_stage_seconds_total{")}
        assert runs["verify"] == 42 and runs["decode"] == 42 and runs["rules"] == 0, runs  # 41 + the duplicate
        assert runs["commit"] >= 1 and runs["outbox"] >= 41 + 4, runs
        assert all(secs[s] > 0 for s in ("verify", "decode", "commit", "outbox")), secs
    finally:
        pub.close()
        gw.stop()
    recs = list(recording.read(tmp_path / "rec"))
    assert len(recs) == 44 and sum(r.meta is not None for r in recs) == 2
    conn = store.connect(tmp_path / "segel.db")
    text = health.status_text(conn)
    assert "accepted 41" in text and "malformed 1" in text
    best = conn.execute("SELECT rssi, base_id FROM seen WHERE device_id=257 AND counter=11").fetchone()
    assert best == (-90.0, "bs-2")


@pytest.mark.parametrize("link", ["process", "thread"])
def test_mosquitto_restart_mid_stream_loses_nothing(tmp_path: Path, mosquitto, influxdb, link: str) -> None:
    """With paho in its own process (the default) and in the gateway's."""
    cfg, fleet = setup(tmp_path, mosquitto.port, influxdb.url, extra="", mqtt_extra=f'link = "{link}"\n')
    gw = Gateway(load(cfg)).start()
    assert gw.cfg.mqtt.link == link
    pub = Publisher(mosquitto.port)
    try:
        assert gw.wait_until(lambda s: s.mqtt_connected, 10)
        time.sleep(0.2)
        frames = [fleet.frame(d) for _ in range(100) for d in range(0x101, 0x105)]
        for fr in frames[:200]:
            pub.publish(topics.tracker_up(fr[1:4].hex()), fr)
        mosquitto.stop()
        time.sleep(1.0)
        mosquitto.start()
        for fr in frames[200:]:
            pub.publish(topics.tracker_up(fr[1:4].hex()), fr)
        assert gw.wait_until(lambda s: s.mqtt_connects >= 2, 20)
        wait(lambda: influx_counts(influxdb)[0] == 400, 40, "400 positions in InfluxDB")
        assert store.stats(gw.pipeline.conn)["accepted"] == 400
    finally:
        pub.close()
        gw.stop()
    assert influx_counts(influxdb) == (400, 4)


def test_influx_outage_delays_and_loses_nothing(tmp_path: Path, mosquitto, influxdb) -> None:
    cfg, fleet = setup(tmp_path, mosquitto.port, influxdb.url)
    gw = Gateway(load(cfg)).start()
    pub = Publisher(mosquitto.port)
    try:
        assert gw.wait_until(lambda s: s.mqtt_connected, 10)
        time.sleep(0.2)
        frames = [fleet.frame(d) for _ in range(50) for d in range(0x101, 0x105)]
        for fr in frames[:100]:
            pub.publish(topics.tracker_up(fr[1:4].hex()), fr)
        wait(lambda: influx_counts(influxdb)[0] == 100, 20, "first 100")
        influxdb.stop()
        for fr in frames[100:]:
            pub.publish(topics.tracker_up(fr[1:4].hex()), fr)
        assert gw.wait_until(lambda s: s.accepted == 200 and s.influx_errors > 0, 20)
        time.sleep(2.0)
        influxdb.start()
        wait(lambda: influx_counts(influxdb)[0] == 200, 40, "all 200 after the outage")
        assert gw.wait_until(lambda s: s.outbox_depth == 0 and s.influx_written >= 200, 10), gw.snapshot()
    finally:
        pub.close()
        gw.stop()
    assert influx_counts(influxdb) == (200, 4)


def test_v2_path_end_to_end_into_victoriametrics(tmp_path: Path, mosquitto, victoria) -> None:
    from segel import config as cfgmod

    cfgfile, fleet = setup(tmp_path, mosquitto.port)
    cfg = cfgmod.load(cfgfile, env={"SEGEL_INFLUX_TOKEN": "not-a-real-token"}, overrides={
        "influx.kind": "v2", "influx.url": victoria.url, "influx.bucket": "segel", "influx.org": "-"})
    gw = Gateway(cfg).start()
    pub = Publisher(mosquitto.port)
    try:
        assert gw.wait_until(lambda s: s.mqtt_connected, 10)
        time.sleep(0.2)
        for _ in range(5):
            for d in range(0x101, 0x105):
                fr = fleet.frame(d)
                pub.publish(topics.tracker_up(fr[1:4].hex()), fr)
        assert gw.wait_until(lambda s: s.accepted == 20 and s.influx_written >= 20 and s.outbox_depth == 0, 20), gw.snapshot()
    finally:
        pub.close()
        gw.stop()
    urllib.request.urlopen(f"{victoria.url}/internal/force_flush").read()
    q = urllib.parse.quote('{__name__="position_counter"}')
    deadline = time.time() + 10
    while True:
        with urllib.request.urlopen(f"{victoria.url}/api/v1/export?match[]={q}") as r:
            series = [json.loads(x) for x in r.read().decode().splitlines() if x]
        n = sum(len(s["values"]) for s in series)
        if n >= 20 or time.time() > deadline:
            break
        time.sleep(0.2)
    assert len(series) == 4 and n == 20
    assert sorted(v for s in series for v in s["values"]) == sorted(list(range(1, 6)) * 4)
