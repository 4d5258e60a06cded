"""One message must never stop ingest (issue 12), through a real Mosquitto, the real gateway and a
real InfluxDB 1.6.7: every poison form is published between valid frames; every valid frame is
committed and acknowledged exactly once, each poison message is rejected under its reason (or
parked), kept in the security log and counted, and the gateway goes on — also across a restart
with the poison still in its persistent session and a retained poison status on the broker.
InfluxDB ends up holding no measurement and no tag value that a sender chose."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from segel import protocol, store
from segel.edge import topics
from segel.influx import schema
from segel.service.gateway import Gateway

from tests import servers
from tests.gateway.gwtest import Publisher, load, setup, wait

pytestmark = pytest.mark.slow

BRIDGE = "ppk-64.08.01"


def bridge_json(fr: bytes, **over: object) -> bytes:
    d: dict[str, object] = {"frame": fr.hex(), "rssi": -97.5, "snr": 6.25, "base_id": "b00001",
                            "bridge_id": BRIDGE, "freq_khz": 921400, "sf": 10, "rx_time": time.time(), "crc_ok": True}
    d.update(over)
    return json.dumps(d).encode()


def poison_forms(frame: bytes) -> list[tuple[str, str, bytes, str]]:
    """(name, topic, payload, the reason it is counted under); `frame` is a valid frame the
    poison wraps, so only the poison part can be what is refused."""
    hexf = frame.hex()
    up = topics.bridge_up(BRIDGE)
    deep = b'{"frame": "' + hexf.encode() + b'", "x": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    return [
        ("huge JSON number", up, b'{"frame": "' + hexf.encode() + b'", "rssi": 1e400}', "malformed"),
        ("NaN", up, b'{"frame": "' + hexf.encode() + b'", "snr": NaN}', "malformed"),
        ("Infinity", up, b'{"frame": "' + hexf.encode() + b'", "rx_time": -Infinity}', "malformed"),
        ("out-of-range integer", up, b'{"frame": "' + hexf.encode() + b'", "freq_khz": ' + b"9" * 3000 + b"}",
         "malformed"),
        ("deeply nested", up, deep, "oversize"),
        ("nested under the size limit", up, b'{"frame": "' + hexf.encode() + b'", "x": ' + b"[" * 1000
         + b"]" * 1000 + b"}", "malformed"),
        ("huge string", up, bridge_json(frame, base_id="b" * 100_000), "oversize"),
        ("invalid UTF-8", up, b'{"frame": "' + hexf.encode() + b'", "base_id": "\xff\xfe"}', "malformed"),
        ("frame not text", up, b'{"frame": 123}', "malformed"),
        ("sf not a number", up, bridge_json(frame, sf="ten"), "malformed"),
        ("JSON array", up, b"[1, 2, 3]", "malformed"),
        ("duplicate keys", up, b'{"frame": "' + hexf.encode() + b'", "frame": "00"}', "malformed"),
        ("newline in base id", up, bridge_json(frame, base_id="b1\nevil,hacked=1 pwned=1i 0"), "bad_name"),
        ("another bridge named", up, bridge_json(frame, bridge_id="kpu-bridge"), "wrong_topic"),
        ("bad bridge id in topic", "segel/bridge/a b,c=d/up", bridge_json(frame, bridge_id=None), "bad_name"),
        ("hex with spaces", up, bridge_json(frame, frame=" ".join(hexf[i:i + 2] for i in range(0, len(hexf), 2))),
         "malformed"),
        ("a megabyte on a tracker topic", topics.tracker_up("000104"), b"\x11" * 1_000_000, "oversize"),
        ("bad device id in topic", "segel/up/ZZZZZZ", frame, "bad_name"),
        ("status nested deep", topics.bridge_status("evil-1"), b'{"bases": ' + b"{\"a\": " * 30 + b"1"
         + b"}" * 30 + b"}", "malformed"),
        ("status with a newline base id", topics.bridge_status("evil-2"),
         json.dumps({"bridge_id": "evil-2", "bases": {"b\nx": {"rx_packets": 1}}}).encode(), "bad_name"),
    ]


def security_reasons(db: Path) -> dict[str, int]:
    conn = store.connect(db)
    try:
        return dict(conn.execute("SELECT reason, COUNT(*) FROM security_log GROUP BY reason").fetchall())
    finally:
        conn.close()


def acked_counters(pub: Publisher, fleet, dev: int) -> list[int]:
    """Every counter the gateway acknowledged to `dev`, over WiFi and through bridges."""
    out: list[int] = []
    for topic, payload in pub.down:
        if topic == topics.tracker_down(f"{dev:06x}"):
            frame = payload
        elif topic.startswith("segel/bridge/") and topic.endswith("/down"):
            d = json.loads(payload)
            if d["device"] != f"{dev:06x}":
                continue
            frame = bytes.fromhex(d["frame"])
        else:
            continue
        out += protocol.verify_and_decode(fleet.keys(dev), frame).body.counters
    return sorted(out)


def test_poison_between_valid_frames_and_across_a_restart(tmp_path: Path, mosquitto, influxdb) -> None:
    cfg, fleet = setup(tmp_path, mosquitto.port, influxdb.url, devices=4)
    pub = Publisher(mosquitto.port)
    gw = Gateway(load(cfg)).start()
    valid: list[tuple[int, int]] = []  # (device, counter) of every valid frame sent
    try:
        assert gw.wait_until(lambda s: s.mqtt_connected, 10)
        # a retained poison status is on the broker before and after the restart
        pub.c.publish(topics.bridge_status("evil-0"), b'{"bases": ' + b"[" * 5000 + b"]" * 5000 + b"}", qos=1,
                      retain=True).wait_for_publish(5)
        forms = poison_forms(fleet.frame(0x103, counter=1))
        for i, (_, topic, payload, _) in enumerate(forms):
            c = 10 + i
            pub.publish(topics.tracker_up("000101"), fleet.frame(0x101, counter=c))
            valid.append((0x101, c))
            pub.publish(topic, payload)
            pub.publish(topics.bridge_up(BRIDGE), bridge_json(fleet.frame(0x102, counter=c)))
            valid.append((0x102, c))
        expected = len(forms) + 1  # and the retained status
        wait(lambda: gw.snapshot().accepted == len(valid) and sum(gw.snapshot().rejected.values()) >= expected, 60,
             "every valid frame accepted and every poison form rejected")
        reasons = security_reasons(fleet.db_path)
        for name, _, _, reason in forms:
            assert reasons.get(reason, 0) >= 1, (name, reason, reasons)
        assert sum(reasons.values()) == expected, reasons
        assert reasons.get("internal_error", 0) == 0, "no form should need parking: each is read strictly"

        # stop; poison and valid frames wait in the persistent session; restart
        gw.stop()
        for i, (_, topic, payload, _) in enumerate(forms[:6]):
            c = 100 + i
            pub.publish(topics.tracker_up("000101"), fleet.frame(0x101, counter=c))
            valid.append((0x101, c))
            pub.publish(topic, payload)
        gw = Gateway(load(cfg)).start()
        wait(lambda: gw.snapshot().accepted == 6, 60, "the frames queued while the gateway was down")
        assert gw.snapshot().duplicates == 0, "nothing committed before the restart came back"
        after = fleet.frame(0x101, counter=200)
        pub.publish(topics.tracker_up("000101"), after)
        valid.append((0x101, 200))
        wait(lambda: gw.snapshot().accepted == 7, 30, "the gateway still ingests after the restart")

        conn = store.connect(fleet.db_path)
        seen = set(conn.execute("SELECT device_id, counter FROM seen").fetchall())
        assert seen >= set(valid) and len([k for k in seen if k[0] in (0x101, 0x102)]) == len(valid)
        assert conn.execute("SELECT value FROM stats WHERE name = 'accepted'").fetchone()[0] == len(valid)
        # the retained poison status was refused on both sessions, never stored as base-station data
        assert security_reasons(fleet.db_path)["malformed"] >= 2
        wait(lambda: sorted(acked_counters(pub, fleet, 0x101)) == sorted(c for d, c in valid if d == 0x101), 20,
             "every valid frame of 000101 acknowledged exactly once")
        assert acked_counters(pub, fleet, 0x102) == sorted(c for d, c in valid if d == 0x102)

        # InfluxDB: only the schema's measurements, only valid names in the tags
        wait(lambda: (gw.snapshot().outbox_depth == 0), 30, "the outbox drained")
        res = servers.influx_query(influxdb, "SHOW MEASUREMENTS", "segel")
        names = {v[0] for v in res["results"][0]["series"][0]["values"]}
        assert names <= set(schema.MEASUREMENTS), names
        for tag in ("base", "bridge"):
            res = servers.influx_query(influxdb, f'SHOW TAG VALUES FROM "rx" WITH KEY = "{tag}"', "segel")
            values = {v[1] for s in res["results"][0].get("series", []) for v in s["values"]}
            assert values <= {"b00001", BRIDGE}, values
    finally:
        pub.c.publish(topics.bridge_status("evil-0"), b"", qos=1, retain=True)
        pub.close()
        gw.stop()
