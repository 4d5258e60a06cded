"""Through a real Mosquitto: bad input is counted by reason and never stored; golden vectors decode."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from segel import protocol, store
from segel.edge import topics
from segel.registry import Registry
from segel.service.gateway import Gateway

from tests import servers
from tests.gateway.gwtest import Publisher, influx_counts, load, setup, wait

pytestmark = pytest.mark.slow

VECTORS = json.loads((Path(__file__).parents[1] / "protocol" / "vectors.json").read_text())


def test_bad_input_counted_by_reason_none_stored_gateway_keeps_running(tmp_path: Path, mosquitto, influxdb) -> None:
    cfg, fleet = setup(tmp_path, mosquitto.port, influxdb.url, extra="replay_window = 32")
    gw = Gateway(load(cfg)).start()
    pub = Publisher(mosquitto.port)
    try:
        assert gw.wait_until(lambda s: s.mqtt_connected, 10)
        time.sleep(0.2)
        good = fleet.frame(0x101, counter=100)
        stranger = protocol.DeviceKeys.from_device_key(bytes(32))
        bad = {
            "bad_mac": [good[:-1] + bytes([good[-1] ^ 0x80]),  # forged: a flipped MAC bit
                        protocol.encode(stranger, 0x102, 5, 0, protocol.Position(1, 1, 1, 1, 1))],  # wrong key
            "replay": [fleet.frame(0x101, counter=10),  # old counter below the window
                       fleet.frame(0x101, counter=100, dev_time=12345)],  # same counter, other bytes
            "truncated": [good[:15], good[:3]],
            "unknown_device": [protocol.encode(stranger, 0xABCDEF, 1, 0, protocol.Position(1, 1, 1, 1, 1))],
            "bad_version": [bytes([0x21]) + good[1:], bytes([0xF1]) + good[1:]],
        }
        pub.publish(topics.tracker_up("000101"), good)
        assert gw.wait_until(lambda s: s.accepted == 1, 10)
        sent = 0
        for reason, frames in bad.items():
            for fr in frames:
                dev = fr[1:4].hex() if len(fr) >= 4 else "000101"
                pub.publish(topics.tracker_up(dev), fr)
                sent += 1
        for _ in range(5):
            pub.publish(topics.tracker_up("000101"), os.urandom(24))
        pub.publish(topics.bridge_up("b9"), b'{"frame": "zz"}')
        after = fleet.frame(0x101, counter=101)
        pub.publish(topics.tracker_up("000101"), after)
        assert gw.wait_until(lambda s: s.accepted == 2 and sum(s.rejected.values()) == sent + 6, 20), gw.snapshot()
        rej = gw.snapshot().rejected
        for reason, frames in bad.items():
            assert rej.get(reason, 0) >= len(frames), (reason, rej)
        assert rej["malformed"] == 1
        wait(lambda: influx_counts(influxdb) == (2, 1), 20, "only the two good positions in InfluxDB")
        res = servers.influx_query(
            influxdb, 'SELECT sum("count") FROM "rejected" GROUP BY reason', "segel")
        by = {s["tags"]["reason"]: s["values"][0][1] for s in res["results"][0]["series"]}
        assert by["bad_mac"] >= 2 and by["replay"] == 2 and by["truncated"] == 2 and by["unknown_device"] == 1
        conn = store.connect(fleet.db_path)
        logged = [bytes(r[0]) for r in conn.execute("SELECT frame FROM security_log")]
        assert all(fr in logged for frames in bad.values() for fr in frames)  # raw bytes kept
    finally:
        pub.close()
        gw.stop()


def test_golden_vectors_end_to_end_over_mqtt(tmp_path: Path, mosquitto, influxdb) -> None:
    cfg, _ = setup(tmp_path, mosquitto.port, influxdb.url, devices=0)
    (tmp_path / "fleet.key").write_text(VECTORS["fleet_secret"] + "\n")
    reg = Registry(store.connect(tmp_path / "segel.db"))
    ups = [v for v in VECTORS["vectors"] if v["type"] in ("position", "seal", "status")]
    chosen: dict[int, int] = {}
    for v in ups:
        if chosen.setdefault(v["device_id"], v["key_epoch"]) == v["key_epoch"] and reg.get(v["device_id"]) is None:
            reg.add_device(v["device_id"], key_epoch=v["key_epoch"])
    ups = [v for v in ups if chosen[v["device_id"]] == v["key_epoch"]]
    got: dict[tuple[int, int], object] = {}
    gw = Gateway(load(cfg), on_commit=lambda rs, at: got.update(
        {(r.accepted.device_id, r.accepted.counter): r.accepted.frame.body for r in rs if r.accepted})).start()
    pub = Publisher(mosquitto.port)
    try:
        assert gw.wait_until(lambda s: s.mqtt_connected, 10)
        time.sleep(0.2)
        for v in ups:
            pub.publish(topics.tracker_up(f"{v['device_id']:06x}"), bytes.fromhex(v["frame_hex"]))
        assert gw.wait_until(lambda s: s.accepted + s.duplicates == len(ups), 20), gw.snapshot()
        assert sum(gw.snapshot().rejected.values()) == 0
    finally:
        pub.close()
        gw.stop()
    assert len(ups) >= 20
    for v in ups:
        body = got[(v["device_id"], v["counter"])]
        assert {k: (list(x) if isinstance(x, tuple) else x) for k, x in body.__dict__.items()} == v["decoded"], v["name"]
