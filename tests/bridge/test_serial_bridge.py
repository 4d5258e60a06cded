"""The serial path end to end: firmware base-station logic on a pty -> real pyserial -> bridge ->
real Mosquitto. Noise, a pulled cable and a broker restart; every frame arrives once."""

from __future__ import annotations

import collections
from pathlib import Path

import pytest
from segel.bridge import Bridge

from tests.bridge.harness import Collector, PtyBase, frames, wait_until

pytestmark = pytest.mark.timeout(120)


def _bridge(tmp: Path, base: PtyBase, url: str, bridge_id: str = "hill-1") -> Bridge:
    return Bridge(bridge_id, url, tmp / "buf.sqlite", port=str(base.path), reopen_s=0.1, status_interval_s=1.0).start()


def test_uplinks_reach_the_broker_with_metadata(tmp_path: Path, mosquitto) -> None:
    col = Collector(mosquitto.port)
    base = PtyBase(tmp_path)
    br = _bridge(tmp_path, base, mosquitto.url)
    try:
        sent = frames(50)
        for i, f in enumerate(sent):
            base.radio.push(f, rssi=-100 - i % 20, snr=(i % 9) - 2.25)
        base.radio.push(b"\x11" + bytes(23), crc_error=True)  # counted, not forwarded
        got = col.wait_frames(50)
        c = collections.Counter(got)
        assert set(c) == {f.hex() for f in sent} and max(c.values()) == 1, ([(sent.index(bytes.fromhex(k)), n) for k, n in c.items() if n > 1], col.redelivered, br.serial.duplicates)
        by = {m["frame"]: (t, m) for t, m in col.messages}
        t, m = by[sent[3].hex()]
        assert t == "segel/bridge/hill-1/up"
        assert m["rssi"] == -103.0 and m["snr"] == 0.75
        assert m["base_id"] == "b00001" and m["freq_khz"] == 921400 and m["sf"] == 10 and m["crc_ok"] is True
        assert m["bridge_id"] == "hill-1" and abs(m["rx_time"] - __import__("time").time()) < 30
        assert wait_until(lambda: any(s.get("bases", {}).get("b00001", {}).get("crc_errors") == 1 for s in col.statuses()))
        st = [s for s in col.statuses() if s.get("bases", {}).get("b00001", {}).get("crc_errors") == 1][-1]
        assert st["bases"]["b00001"]["rx_packets"] == 51 and st["online"] is True and st["mode"] == "serial"

        # a broker outage: uplinks wait on disk and go out in the order they were heard
        mosquitto.stop()
        more = frames(80, seed=9, device_base=0x200)
        for f in more[:60]:
            base.radio.push(f)
        assert wait_until(lambda: br.serial.uplinks == 110)
        assert br.buffer.depth() == 60
        mosquitto.start()
        for f in more[60:]:
            base.radio.push(f)
        col.wait_frames(130, timeout=60)
        assert col.first_deliveries() == [f.hex() for f in sent + more]
        assert wait_until(lambda: br.buffer.depth() == 0)
    finally:
        br.stop()
        base.close()
        col.close()


def test_noise_cable_pull_and_broker_restart_lose_nothing(tmp_path: Path, mosquitto) -> None:
    col = Collector(mosquitto.port)
    base = PtyBase(tmp_path, noise=0.05)  # one write or read in 20 has a flipped bit, both directions
    br = _bridge(tmp_path, base, mosquitto.url)
    sent = frames(400, seed=5)
    try:
        for f in sent[:100]:
            base.radio.push(f)
        base.port.inject(b"\x07garbage\xff\xfe" * 20 + b"\x00\x00\x05\x01\x02")  # line noise and a half record
        assert len(set(col.wait_frames(100))) == 100

        # the cable is pulled while the air keeps delivering; plugged back, everything follows
        base.unplug()
        assert wait_until(lambda: not br.serial.connected.is_set())
        for f in sent[100:200]:
            base.radio.push(f)
        assert wait_until(lambda: base.radio.remaining == 0)
        base.plug()
        assert len(set(col.wait_frames(200))) == 200
        assert br.serial.opens >= 2

        # the broker goes away: uplinks wait in the durable buffer and go out in order
        mosquitto.stop()
        for f in sent[200:300]:
            base.radio.push(f)
        assert wait_until(lambda: br.serial.uplinks >= 300)
        assert br.buffer.depth() >= 100
        mosquitto.start()
        assert len(set(col.wait_frames(300, timeout=60))) == 300

        for f in sent[300:]:
            base.radio.push(f)
        col.wait_frames(400)
        counts = collections.Counter(col.first_deliveries())
        assert set(counts) == {f.hex() for f in sent}
        assert max(counts.values()) == 1, ([f for f, n in counts.items() if n > 1][:5], col.redelivered, br.serial.duplicates)
        assert base.port.flipped > 0 and (br.serial.noise["crc_errors"] + br.serial.noise["framing_errors"]) > 0
    finally:
        br.stop()
        base.close()
        col.close()


def test_base_station_reset_mid_record_and_bridge_restart_with_a_full_buffer(tmp_path: Path, mosquitto) -> None:
    from segelfw.basestation import BaseStation

    from tests.bridge.harness import BASE_CFG

    col = Collector(mosquitto.port)
    base = PtyBase(tmp_path)
    br = _bridge(tmp_path, base, mosquitto.url)
    sent = frames(60, seed=21)
    try:
        for f in sent[:20]:
            base.radio.push(f)
        assert len(set(col.wait_frames(20))) == 20
        # the board resets halfway through writing a record: a new boot announces itself
        base.port.write_raw(b"\x00\x1a\x01\x12\x34\x00\x00")
        base._stop.set()
        base._thread.join(5)
        base.base = BaseStation(base.radio, base.port, BASE_CFG, boot_id=0x9999, health_interval_ms=500)
        base._stop.clear()
        base._thread = __import__("threading").Thread(target=base._run, daemon=True)
        base._thread.start()
        for f in sent[20:40]:
            base.radio.push(f)
        assert len(set(col.wait_frames(40))) == 40
        assert br.serial.base is not None and br.serial.base.boot == 0x9999

        # the broker is down and the bridge is stopped with uplinks in its buffer; a new bridge
        # process on the same buffer file publishes them
        mosquitto.stop()
        for f in sent[40:]:
            base.radio.push(f)
        assert wait_until(lambda: br.serial.uplinks >= 60)
        br.stop()
        mosquitto.start()
        br = _bridge(tmp_path, base, mosquitto.url)
        col.wait_frames(60, timeout=60)
        c = collections.Counter(col.first_deliveries())
        assert set(c) == {f.hex() for f in sent} and max(c.values()) == 1, ([(sent.index(bytes.fromhex(k)), n) for k, n in c.items() if n > 1], col.redelivered, br.serial.duplicates)
    finally:
        br.stop()
        base.close()
        col.close()
