"""`segel bridge --udp`: the packet-forwarder server against a client built from PROTOCOL.TXT,
with real Mosquitto. Malformed datagrams, unknown gateways, two gateways hearing one frame,
downlinks timed into the tracker's receive window, gateway statistics into health."""

from __future__ import annotations

import base64
import json
import time
from datetime import datetime, timezone
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from segel.bridge import Bridge

from tests.bridge.harness import Collector, frames, wait_until
from tests.bridge.pfclient import (
    PULL_ACK,
    PUSH_ACK,
    ForwarderClient,
    parse_pull_resp,
    rxpk,
)

pytestmark = pytest.mark.timeout(90)
GW1, GW2, STRANGER = "aa555a0000000101", "aa555a0000000102", "0102030405060708"


def _bridge(tmp: Path, url: str, gateways: set[str] | None = None) -> Bridge:
    b = Bridge("pf-1", url, tmp / "buf.sqlite", udp="127.0.0.1:0", gateways=gateways, status_interval_s=0.5).start()
    assert b.publisher.connected.wait(10)
    return b


def test_rxpk_to_broker_with_metadata_and_stat_to_health(tmp_path: Path, mosquitto) -> None:
    col = Collector(mosquitto.port)
    br = _bridge(tmp_path, mosquitto.url)
    gw = ForwarderClient(br.udp.address, GW1)
    try:
        f_ok, f_bad = frames(2)
        t_iso = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        tok, ans = gw.push([rxpk(f_ok, 1_000_000, freq=921.6, sf=9, rssi=-97, lsnr=-3.2, time_iso=t_iso),
                            rxpk(f_bad, 1_000_500, stat=-1)],
                           stat={"time": "2026-11-29 08:59:28 GMT", "lati": -0.5, "long": 117.1, "alti": 40, "rxnb": 7,
                                 "rxok": 5, "rxfw": 5, "ackr": 100.0, "dwnb": 0, "txnb": 2})
        assert ans == bytes((2,)) + tok + bytes((PUSH_ACK,))
        assert col.wait_frames(1) == [f_ok.hex()]
        m = col.messages[0][1]
        assert col.messages[0][0] == "segel/bridge/pf-1/up"
        want_t = datetime.strptime(t_iso, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()
        assert m == {"frame": f_ok.hex(), "rssi": -97.0, "snr": -3.2, "base_id": GW1, "freq_khz": 921600, "sf": 9,
                     "rx_time": pytest.approx(want_t, abs=1e-3), "crc_ok": True, "bridge_id": "pf-1"}
        assert br.udp.counters["crc_fail"] == 1
        assert wait_until(lambda: any(GW1 in s.get("bases", {}) for s in col.statuses()))
        st = [s for s in col.statuses() if GW1 in s.get("bases", {})][-1]
        assert st["bases"][GW1]["rx_packets"] == 7 and st["bases"][GW1]["crc_errors"] == 2 and st["bases"][GW1]["tx_packets"] == 2
        assert st["mode"] == "udp" and st["online"] is True
        # protocol version 1 gateways are answered in version 1
        gw1 = ForwarderClient(br.udp.address, GW2, version=1)
        tok, ans = gw1.push([rxpk(frames(3, seed=4)[2], 5)])
        assert ans == bytes((1,)) + tok + bytes((PUSH_ACK,))
        gw1.close()
    finally:
        gw.close()
        br.stop()
        col.close()


def test_malformed_datagrams_and_unknown_gateways(tmp_path: Path, mosquitto) -> None:
    col = Collector(mosquitto.port)
    br = _bridge(tmp_path, mosquitto.url, gateways={GW1})
    gw = ForwarderClient(br.udp.address, GW1)
    stranger = ForwarderClient(br.udp.address, STRANGER)
    try:
        for junk in (b"", b"\x02", b"\x02\x00\x01", b"\x09\x00\x01\x00" + bytes(8) + b"{}", b"\x02\x00\x01\x07",
                     b"\x02\x00\x01\x00\x01\x02"):
            gw.raw(junk)
        _, ans = gw.push(body=b"{not json")
        assert ans is None  # not acknowledged: the gateway's ackr shows it
        bad = rxpk(b"x" * 24, 1)
        bad["data"] = "!!!not base64"
        wrong_size = rxpk(b"y" * 24, 2)
        wrong_size["size"] = 10
        fsk = rxpk(b"z" * 24, 3)
        fsk["modu"] = "FSK"
        good = frames(1, seed=8)[0]
        tok, ans = gw.push([bad, wrong_size, fsk, "not an object", rxpk(good, 4)])  # type: ignore[list-item]
        assert ans is not None and ans[3] == PUSH_ACK and ans[1:3] == tok
        _, ans = stranger.push([rxpk(frames(1, seed=9)[0], 5)])
        assert ans is None
        _, ans = stranger.pull()
        assert ans is None
        assert col.wait_frames(1) == [good.hex()]
        time.sleep(0.3)
        assert col.frames() == [good.hex()]  # nothing from the stranger, nothing malformed
        c = br.udp.counters
        assert c["malformed"] == 7 and c["bad_rxpk"] == 4 and c["unknown_gateway"] == 2 and c["rxpk"] == 1
        assert STRANGER not in br.udp.gateways
        _, ans = gw.pull()  # the server still answers
        assert ans is not None and ans[3] == PULL_ACK
    finally:
        gw.close()
        stranger.close()
        br.stop()
        col.close()


def test_two_gateways_hear_one_frame_and_the_downlink_goes_through_the_better_one(tmp_path: Path, mosquitto) -> None:
    col = Collector(mosquitto.port)
    br = _bridge(tmp_path, mosquitto.url)
    g1, g2 = ForwarderClient(br.udp.address, GW1), ForwarderClient(br.udp.address, GW2)
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="gw-core")
    pub.connect("127.0.0.1", mosquitto.port)
    pub.loop_start()
    try:
        for g in (g1, g2):
            tok, ans = g.pull()
            assert ans == bytes((2,)) + tok + bytes((PULL_ACK,))
        f = frames(1, seed=11)[0]
        dev = f[1:4].hex()
        g1.push([rxpk(f, 4_000_000_000, rssi=-118, lsnr=-9.0)])
        g2.push([rxpk(f, 123_456, rssi=-95, lsnr=7.5)])
        assert wait_until(lambda: len(col.messages) == 2)
        assert sorted(m["base_id"] for _, m in col.messages) == [GW1, GW2]
        assert {m["frame"] for _, m in col.messages} == {f.hex()}  # the gateway keeps one (device, counter)

        ack = bytes(range(22))
        t0 = time.time()
        pub.publish("segel/bridge/pf-1/down", json.dumps({"device": dev, "frame": ack.hex(), "tx_at": None}), qos=1)
        d = g2.recv(5)
        assert d is not None
        ver, token, txpk = parse_pull_resp(d)
        assert g1.recv(0.3) is None  # not through the weaker gateway
        assert ver == 2
        assert base64.b64decode(txpk["data"]) == ack and txpk["size"] == 22
        assert txpk["freq"] == 921.4 and txpk["datr"] == "SF10BW125" and txpk["imme"] is False
        # timed on g2's own counter, inside the tracker's 2.5 s window after its uplink ended
        delay_us = (txpk["tmst"] - 123_456) % (1 << 32)
        assert 100_000 <= delay_us <= 2_500_000 - 370_000, delay_us
        assert delay_us <= (time.time() - t0 + 0.5) * 1e6
        g2.tx_ack(token)
        assert wait_until(lambda: br.udp.counters["tx_ok"] == 1)

        # an explicit send time: tmst follows it; a time past the window is refused as late
        pub.publish("segel/bridge/pf-1/down", json.dumps({"device": dev, "frame": ack.hex(), "tx_at": time.time() + 1.0}), qos=1)
        d = g2.recv(5)
        assert d is not None
        _, token2, txpk2 = parse_pull_resp(d)
        assert ((txpk2["tmst"] - 123_456) % (1 << 32)) > delay_us + 500_000
        g2.tx_ack(token2, "TOO_LATE")
        assert wait_until(lambda: br.udp.counters["tx_too_late"] == 1)
        pub.publish("segel/bridge/pf-1/down", json.dumps({"device": dev, "frame": ack.hex(), "tx_at": time.time() + 30}), qos=1)
        pub.publish("segel/bridge/pf-1/down", json.dumps({"device": "abcdef", "frame": ack.hex(), "tx_at": None}), qos=1)
        pub.publish("segel/bridge/pf-1/down", b"{oops", qos=1)
        assert wait_until(lambda: br.udp.counters["down_late"] == 1 and br.udp.counters["down_unknown_device"] == 1
                          and br.publisher.bad_downlinks == 1)
        assert g2.recv(0.3) is None
    finally:
        pub.disconnect()
        pub.loop_stop()
        g1.close()
        g2.close()
        br.stop()
        col.close()
