"""Two 8-channel gateways (packet-forwarder clients) hear the same frames; `segel bridge --udp`,
Mosquitto and the real gateway store each once, and the gateway's ack goes back as a PULL_RESP
through the gateway that heard the tracker best."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from segel import protocol
from segel.bridge import Bridge
from segel.service.gateway import Gateway

from tests.bridge.harness import wait_until
from tests.bridge.pfclient import ForwarderClient, parse_pull_resp, rxpk
from tests.gateway.gwtest import load, setup

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def test_two_forwarders_one_bridge_gateway_stores_once_and_acks_through_the_better(tmp_path: Path, mosquitto) -> None:
    cfg, fleet = setup(tmp_path, mosquitto.port, devices=3)
    gw = Gateway(load(cfg)).start()
    br = Bridge("pf-1", mosquitto.url, tmp_path / "buf.sqlite", udp="127.0.0.1:0").start()
    near, far = ForwarderClient(br.udp.address, "aa555a0000000101"), ForwarderClient(br.udp.address, "aa555a0000000102")
    try:
        assert gw.wait_until(lambda s: s.mqtt_connected, 10) and br.publisher.connected.wait(10)
        for g in (near, far):
            assert g.pull()[1] is not None
        frames = [fleet.frame(d) for d in (0x101, 0x102, 0x103) for _ in range(3)]
        for i, f in enumerate(frames):
            near.push([rxpk(f, 1_000_000 + i * 10_000_000, rssi=-90, lsnr=8.0)])
            far.push([rxpk(f, 7_000_000 + i * 10_000_000, rssi=-119, lsnr=-12.0)])
        assert gw.wait_until(lambda s: s.accepted == 9 and s.duplicates == 9, 30), gw.snapshot()
        rows = fleet.conn.execute("SELECT device_id, counter, receptions, base_id FROM seen").fetchall()
        assert len(rows) == 9 and all(n == 2 and b == "aa555a0000000101" for _, _, n, b in rows)

        acked: set[tuple[int, int]] = set()
        while True:
            d = near.next_downlink(3)
            if d is None:
                break
            _, token, txpk = parse_pull_resp(d)
            frame = base64.b64decode(txpk["data"])
            dev = int.from_bytes(frame[1:4], "big")
            acked |= {(dev, c) for c in protocol.verify_and_decode(fleet.keys(dev), frame).body.counters}
            near.tx_ack(token)
        assert acked == {(int.from_bytes(f[1:4], "big"), int.from_bytes(f[4:7], "big")) for f in frames}
        assert far.next_downlink(0.3) is None
        assert wait_until(lambda: br.udp.counters["tx_ok"] == br.udp.counters["down_sent"] > 0)
    finally:
        near.close()
        far.close()
        br.stop()
        gw.stop()
