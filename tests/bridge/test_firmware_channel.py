"""Trackers running the firmware's real wake cycle (segelfw.cycle on simhw) transmit on the
simulated channel; two base stations (the firmware's base role, on ptys) hear what survives
collisions and fading; two bridges, Mosquitto and the gateway store each frame once, and the
gateway's acks come back through a bridge and a base station into the tracker's receive window,
so the tracker moves on to its next frame.

Trackers wake in virtual-time order, and each transmission is judged against the transmissions
made before it (a later-processed one that started earlier still collides with it; one already
delivered is then counted as a late collision, not taken back)."""

from __future__ import annotations

import heapq
import time
from pathlib import Path

import pytest
from segel.bridge import Bridge
from segel.radio import channel as lorasim
from segel.service.gateway import Gateway
from segelfw import config as fw_config
from segelfw import cycle as fw_cycle
from simhw import SimTracker

from tests.bridge.harness import PtyBase, wait_until


class LiveAir(lorasim.FirmwareAir):
    """Each transmission goes through the real base stations, bridges and gateway at once; the
    tracker waits (in real time) for the gateway's ack to come out of a base station's radio."""

    def __init__(self, channel: lorasim.Channel, bases: dict[str, PtyBase], ack_wait_s: float = 3.0) -> None:
        super().__init__(channel)
        self.bases = bases
        self.ack_wait_s = ack_wait_s
        self.collided: set[int] = set()
        self.late_collisions = 0
        self.acked = 0
        self.acked_frames: set[tuple[int, int]] = set()
        self.seen_down = {name: 0 for name in bases}

    def transmit(self, sender, rec):  # type: ignore[no-untyped-def]
        tx = super().transmit(sender, rec)
        hit = self.channel.overlapping(tx)
        if hit:
            self.channel.stats["collided"] += 1
            self.collided.add(id(tx))
            self.late_collisions += sum(id(o) not in self.collided for o in hit)
            self.collided.update(id(o) for o in hit)
            return tx
        for r in self.channel.hear(tx):
            self.bases[r.receiver].radio.push(tx.payload, r.rssi, r.snr)
        dev = tx.payload[1:4]
        deadline = time.monotonic() + self.ack_wait_s
        while time.monotonic() < deadline:
            for name, b in self.bases.items():
                sent = b.radio.sent[self.seen_down[name]:]
                self.seen_down[name] += len(sent)
                for frame, _ in sent:
                    if frame[1:4] == dev:
                        sender.deliver(frame, at_ms=sender.clock.now_ms + 150)
                        self.acked += 1
                        self.acked_frames.add((int.from_bytes(dev, "big"), int.from_bytes(tx.payload[4:7], "big")))
                        return tx
            time.sleep(0.005)
        return tx
from tests.gateway.gwtest import load, setup

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]
TRACKERS = 8
MINUTES = 12


def test_firmware_trackers_on_the_channel_through_base_stations_bridges_and_gateway(tmp_path: Path, mosquitto) -> None:
    cfg_path, fleet = setup(tmp_path, mosquitto.port, devices=TRACKERS)
    ch = lorasim.Channel(loss=0.2, seed=11)
    for name in ("b00001", "b00002"):
        ch.receiver(name, freqs={921400}, sfs={10})
    gw = Gateway(load(cfg_path)).start()
    bases: dict[str, PtyBase] = {}
    bridges = []
    try:
        assert gw.wait_until(lambda s: s.mqtt_connected, 10)
        for i, name in enumerate(("b00001", "b00002")):
            b = PtyBase(tmp_path, name=f"tty{i}", cfg={"device_id": name}, boot_id=0x200 + i)
            bases[name] = b
            bridges.append(Bridge(f"hill-{i + 1}", mosquitto.url, tmp_path / f"buf{i}.sqlite", port=str(b.path),
                                  reopen_s=0.1).start())
        assert wait_until(lambda: all(br.publisher.connected.is_set() and br.serial.base is not None for br in bridges), 10)

        air = LiveAir(ch, bases)
        t0 = int(time.time()) - MINUTES * 60 - 120
        trackers = []
        for i, dev in enumerate(range(0x101, 0x101 + TRACKERS)):
            cfg = fw_config.validate({"device_id": f"{dev:06x}", "key": fleet.keyring.device_key(dev, 0).hex(),
                                      "board": "tbeam-v1.1", "channel": 921400, "sf": 10, "report_interval_s": 60,
                                      "fix_timeout_s": 30})
            hw = SimTracker(tmp_path / f"t{dev:06x}", [(t0, 0.51 + i * 1e-3, 117.54), (t0 + 86400, 0.51 + i * 1e-3, 117.54)],
                            start=t0 + i * 3, seed=i + 1, air=air, name=f"{dev:06x}")
            trackers.append((hw, cfg))
        heap = [(hw.clock.now_ms, i) for i, (hw, _) in enumerate(trackers)]
        heapq.heapify(heap)
        while heap:  # wake the trackers in virtual-time order
            t, i = heapq.heappop(heap)
            if t > (t0 + MINUTES * 60) * 1000:
                continue
            hw, cfg = trackers[i]
            fw_cycle.run(hw.drivers(), cfg, board=hw.board)
            hw.deep_sleep()
            heapq.heappush(heap, (hw.clock.now_ms, i))

        txs = air.channel._pending
        frames = {(int.from_bytes(t.payload[1:4], "big"), int.from_bytes(t.payload[4:7], "big")) for t in txs}
        assert len(frames) > TRACKERS * 3 and ch.stats["collided"] > 0 and ch.stats["lost"] > 0 and air.acked > TRACKERS * 3
        receptions = ch.stats["receptions"]
        assert gw.wait_until(lambda s: s.accepted + s.duplicates == receptions, 30), gw.snapshot()
        rows = set(fleet.conn.execute("SELECT device_id, counter FROM seen").fetchall())
        snap = gw.snapshot()
        assert len(rows) == snap.accepted and rows <= frames
        assert air.acked_frames <= rows  # a tracker got an ack only for a frame the gateway has stored
        print(f"\nfirmware trackers: {TRACKERS} x {MINUTES} min at SF10 on one channel, 20 % fading, 2 base stations: "
              f"{len(txs)} transmissions of {len(frames)} frames, {ch.stats['collided']} collided "
              f"({air.late_collisions} late-detected), {receptions} receptions, {snap.accepted} frames stored once, "
              f"{snap.duplicates} duplicates removed, {air.acked} acks into receive windows")
    finally:
        for br in bridges:
            br.stop()
        for b in bases.values():
            b.close()
        gw.stop()
