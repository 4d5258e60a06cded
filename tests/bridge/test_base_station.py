"""The base-station role logic on CPython with the simulated clock: uplink records kept until
acknowledged, downlinks timed into the tracker's window, health."""

from __future__ import annotations

import struct

from segel.bridge import wire
from segelfw import serialframe as sf
from segelfw.basestation import RESEND_MS, BaseStation
from segelfw.hal import RxPacket
from simhw import SimClock


class Port:
    def __init__(self) -> None:
        self.out = bytearray()
        self.inq: list[bytes] = []

    def write(self, b: bytes) -> int:
        self.out += b
        return len(b)

    def read(self) -> bytes | None:
        return self.inq.pop(0) if self.inq else None

    def records(self) -> list[wire.Record]:
        recs = [wire.parse(p) for p in wire.Decoder().feed(bytes(self.out))]
        self.out.clear()
        return recs


class Radio:
    def __init__(self) -> None:
        self.rx: list[RxPacket] = []
        self.sent: list[tuple[bytes, int | None]] = []

    def recv(self, timeout_ms=None, rx_length=0xFF, rx_packet=None):  # type: ignore[no-untyped-def]
        return self.rx.pop(0) if self.rx else None

    def send(self, packet, tx_at_ms=None):  # type: ignore[no-untyped-def]
        self.sent.append((bytes(packet), tx_at_ms))
        return 0


CFG = {"device_id": "b00007", "region": "AS923-2", "sf": 7, "channel": "random", "ack_window_ms": 2500, "preamble": 8}


def _station(temp: float | None = 41.5) -> tuple[BaseStation, Radio, Port, SimClock]:
    clock = SimClock(1_700_000_000)
    radio, port = Radio(), Port()
    bs = BaseStation(radio, port, CFG, boot_id=0x4242, clock=clock, temperature=lambda: temp, health_interval_ms=10_000)
    return bs, radio, port, clock


def _frame(dev: int, ctr: int) -> bytes:
    return bytes([0x11]) + dev.to_bytes(3, "big") + ctr.to_bytes(3, "big") + bytes(17)


def test_uplinks_are_written_again_until_acknowledged_and_health_is_reported() -> None:
    bs, radio, port, clock = _station()
    assert port.records()[0] == wire.Hello(0x4242, "1.0", 921400, 7, "b00007", "AS923-2")  # random channel: the first
    radio.rx.append(RxPacket(_frame(0x101, 1), ticks_ms=clock.ticks_ms(), snr=22, rssi=-99))
    clock.advance(40)
    bs.poll(0)
    recs = port.records()
    up = [r for r in recs if isinstance(r, wire.Uplink)][0]
    assert (up.seq, up.age_ms, up.rssi, up.snr, up.freq_khz) == (0, 40, -99.0, 5.5, 921400)
    h = [r for r in recs if isinstance(r, wire.Health)][0]
    assert (h.rx_packets, h.queue, h.temperature_c, h.base_id) == (1, 1, 41.5, "b00007")
    clock.advance(RESEND_MS)
    bs.poll(0)
    again = [r for r in port.records() if isinstance(r, wire.Uplink)]
    assert [(r.seq, r.frame) for r in again] == [(0, _frame(0x101, 1))] and again[0].age_ms == 40 + RESEND_MS
    port.inq.append(wire.ack(0x4241, 0))  # another boot's ack changes nothing
    bs.poll(0)
    assert bs.order == [0]
    port.inq.append(wire.ack(0x4242, 0))
    clock.advance(RESEND_MS)
    bs.poll(0)
    assert bs.order == [] and not [r for r in port.records() if isinstance(r, wire.Uplink)]
    radio.rx.append(RxPacket(_frame(0x101, 2), ticks_ms=clock.ticks_ms(), snr=0, rssi=-120, valid_crc=False))
    bs.poll(0)
    assert bs.crc_errors == 1 and bs.order == []


def test_downlinks_go_out_inside_the_window_and_are_refused_after_it() -> None:
    bs, radio, port, clock = _station()
    port.records()
    ack = bytes([0x18]) + (0x101).to_bytes(3, "big") + bytes(18)
    port.inq.append(wire.down(1, "000101", ack))
    bs.poll(0)
    assert radio.sent == [] and [r for r in port.records() if isinstance(r, wire.TxDone)] == [wire.TxDone(0x4242, 1, "no_window")]
    radio.rx.append(RxPacket(_frame(0x101, 1), ticks_ms=clock.ticks_ms(), snr=0, rssi=-100))
    bs.poll(0)
    clock.advance(900)
    port.inq.append(wire.down(2, "000101", ack))
    bs.poll(0)
    assert radio.sent == [(ack, None)]
    assert [r for r in port.records() if isinstance(r, wire.TxDone)] == [wire.TxDone(0x4242, 2, "sent")]
    clock.advance(1600)  # 2.5 s after the uplink: the tracker has stopped listening
    port.inq.append(wire.down(3, "000101", ack))
    bs.poll(0)
    assert len(radio.sent) == 1 and [r for r in port.records() if isinstance(r, wire.TxDone)] == [wire.TxDone(0x4242, 3, "late")]
    # an explicit delay becomes tx_at_ms on the base station's own ticks
    port.inq.append(wire.down(4, "000101", ack, delay_ms=700))
    now = clock.ticks_ms()
    bs.poll(0)
    assert radio.sent[-1] == (ack, now + 700)
    assert bs.tx_packets == 2 and bs.tx_late == 1


def test_a_downlink_over_the_dwell_limit_is_refused_and_garbage_is_ignored() -> None:
    bs, radio, port, clock = _station()
    bs.sf = 12
    radio.rx.append(RxPacket(_frame(0x101, 1), ticks_ms=clock.ticks_ms(), snr=0, rssi=-100))
    bs.poll(0)
    port.inq += [b"\x00\x82\x01\x00", wire.encode(struct.pack(">B", sf.R_DOWN)), wire.down(9, "000101", bytes(22))]
    for _ in range(3):
        bs.poll(0)
    assert radio.sent == [] and [r for r in port.records() if isinstance(r, wire.TxDone)][-1].status == "too_long"


def test_a_neighbours_downlink_is_not_forwarded_as_an_uplink() -> None:
    """Base stations share the channel and the IQ polarity: one hears the ACKs another sends.
    Those are downlink frames (type >= 8), never a tracker's, so they are not written to the
    bridge (the gateway would reject each as a downlink sent as an uplink) nor mark a tracker heard."""
    bs, radio, port, clock = _station()
    ack = bytes([0x18]) + (0x101).to_bytes(3, "big") + (5).to_bytes(3, "big") + bytes(15)
    config = bytes([0x19]) + (0x102).to_bytes(3, "big") + (6).to_bytes(3, "big") + bytes(14)
    radio.rx += [RxPacket(ack, ticks_ms=clock.ticks_ms(), snr=3, rssi=-90),
                 RxPacket(config, ticks_ms=clock.ticks_ms(), snr=3, rssi=-90),
                 RxPacket(_frame(0x103, 1), ticks_ms=clock.ticks_ms(), snr=3, rssi=-90)]
    for _ in range(3):
        bs.poll(0)
    ups = [r for r in port.records() if isinstance(r, wire.Uplink)]
    assert [u.frame for u in ups] == [_frame(0x103, 1)]
    assert bs.foreign_downlinks == 2 and bs.rx_packets == 3
    assert list(bs.heard) == [(0x103).to_bytes(3, "big")]


class ContinuousRadio(Radio):
    """micropython-lib lora's low-level receive: start_recv(continuous=True), then poll_recv()
    returns a packet, True (still receiving) or False (not receiving); CRC errors are dropped by
    the driver in this mode and only counted. recv() must not be used: it would leave RX."""

    def __init__(self) -> None:
        super().__init__()
        self.crc_errors = 0
        self.starts: list[tuple[object, bool]] = []
        self.receiving = False

    def start_recv(self, timeout_ms=None, continuous=False, rx_length=0xFF):  # type: ignore[no-untyped-def]
        self.starts.append((timeout_ms, continuous))
        self.receiving = True
        return True

    def poll_recv(self, rx_packet=None):  # type: ignore[no-untyped-def]
        if not self.receiving:
            return False
        return self.rx.pop(0) if self.rx else True

    def recv(self, timeout_ms=None, rx_length=0xFF, rx_packet=None):  # type: ignore[no-untyped-def]
        raise AssertionError("a base station with the low-level API must listen continuously, not in recv() windows")


def test_the_base_station_listens_continuously() -> None:
    clock = SimClock(1_700_000_000)
    radio, port = ContinuousRadio(), Port()
    bs = BaseStation(radio, port, CFG, boot_id=0x4242, clock=clock, health_interval_ms=10_000)
    for i in range(50):
        if i == 10:
            radio.rx.append(RxPacket(_frame(0x101, 1), ticks_ms=clock.ticks_ms(), snr=22, rssi=-99))
        if i == 20:
            radio.crc_errors += 2  # two damaged packets the driver dropped
        clock.advance(5)
        bs.poll()
    assert radio.starts == [(None, True)], "receive started once, continuous, never restarted"
    ups = [r for r in port.records() if isinstance(r, wire.Uplink)]
    assert [u.frame for u in ups] == [_frame(0x101, 1)]
    assert (bs.rx_packets, bs.crc_errors) == (3, 2)
    radio.receiving = False  # a downlink or standby() ended RX: the next poll starts it again
    bs.poll()
    bs.poll()
    assert radio.starts == [(None, True), (None, True)]
