"""The whole LoRa path: a simulated channel shared by N trackers and two base stations
(collisions by time on air, loss), each base station the firmware's base-role logic on a pty,
each with its own `segel bridge`, one real Mosquitto and the real gateway. Frames heard by both
base stations are stored once; acks come back down through the bridges into the trackers'
receive windows."""

from __future__ import annotations

import collections
from pathlib import Path

import pytest
from segel import protocol
from segel.bridge import Bridge
from segel.radio import channel as lorasim
from segel.service.gateway import Gateway

from tests.bridge.harness import PtyBase, wait_until
from tests.gateway.gwtest import load, setup

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

TRACKERS = 24
INTERVAL_S = 60.0
DURATION_S = 600.0


def test_channel_two_base_stations_bridges_and_gateway_dedupe(tmp_path: Path, mosquitto) -> None:
    cfg, fleet = setup(tmp_path, mosquitto.port, devices=TRACKERS)
    devices = list(range(0x101, 0x101 + TRACKERS))

    # the air: every tracker reports every minute at SF10 in single-channel mode; 15 % of copies fade
    ch = lorasim.Channel(loss=0.15, seed=3)
    for name in ("b00001", "b00002"):
        ch.receiver(name, freqs={921400}, sfs={10})
    import random

    rng = random.Random(5)
    for dev in devices:
        t = rng.uniform(0, INTERVAL_S * 1000)
        while t < DURATION_S * 1000:
            ch.transmit(f"{dev:06x}", fleet.frame(dev), t, 921400, 10)
            t += INTERVAL_S * 1000 + rng.uniform(-3000, 3000)
    heard = sorted(ch.resolve(), key=lambda r: r.tx.start_ms)
    sent = ch.stats["transmissions"]
    distinct = {r.tx.payload for r in heard}
    assert 0.5 < len(distinct) / sent < 0.95  # collisions and fading did happen, and most got through

    gw = Gateway(load(cfg)).start()
    bases, bridges = [], []
    try:
        assert gw.wait_until(lambda s: s.mqtt_connected, 10)
        for i, name in enumerate(("b00001", "b00002")):
            b = PtyBase(tmp_path, name=f"tty{i}", cfg={"device_id": name}, boot_id=0x100 + i)
            bases.append(b)
            bridges.append(Bridge(f"hill-{i + 1}", mosquitto.url, tmp_path / f"buf{i}.sqlite", port=str(b.path),
                                  reopen_s=0.1).start())
        assert wait_until(lambda: all(br.publisher.connected.is_set() and br.serial.base is not None for br in bridges), 10)
        # each base station's radio hands over what it heard, in air order, as fast as the line takes it
        for r in heard:
            bases[int(r.receiver[-1]) - 1].radio.push(r.tx.payload, r.rssi, r.snr)
        dupes = len(heard) - len(distinct)
        assert gw.wait_until(lambda s: s.accepted == len(distinct) and s.duplicates == dupes, 60), gw.snapshot()

        # stored once each, exactly the frames some base station heard
        conn = fleet.conn
        rows = conn.execute("SELECT device_id, counter, receptions FROM seen").fetchall()
        assert len(rows) == len(distinct)
        assert {(d, c) for d, c, _ in rows} == {(int.from_bytes(p[1:4], "big"), int.from_bytes(p[4:7], "big")) for p in distinct}
        both = collections.Counter(r.tx.payload for r in heard)
        assert sum(n for _, _, n in rows) == sum(both.values())

        # acks came back down through the bridges and went on air inside the trackers' windows:
        # every delivered frame is acknowledged by some base station's transmission
        want = {(int.from_bytes(p[1:4], "big"), int.from_bytes(p[4:7], "big")) for p in distinct}

        def acked() -> set[tuple[int, int]]:
            got = set()
            for b in bases:
                for frame, _ in list(b.radio.sent):
                    dev = int.from_bytes(frame[1:4], "big")
                    got |= {(dev, c) for c in protocol.verify_and_decode(fleet.keys(dev), frame).body.counters}
            return got

        assert wait_until(lambda: acked() >= want, 30), len(want - acked())
        late = sum(br.serial.tx_status["late"] for br in bridges)
        sent_down = sum(br.serial.tx_status["sent"] for br in bridges)
        print(f"\nchannel: {TRACKERS} trackers SF10 every {INTERVAL_S:g} s for {DURATION_S:g} s, 2 base stations, 15 % fading: "
              f"sent {sent}, delivered {len(distinct)} ({len(distinct) / sent:.1%}), receptions {len(heard)}, "
              f"duplicates removed by the gateway {dupes}; acks on air {sent_down}, late {late}")
    finally:
        for br in bridges:
            br.stop()
        for b in bases:
            b.close()
        gw.stop()
