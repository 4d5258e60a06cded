"""A simulated LoRa channel: many trackers, several receivers, collisions by time on air.

    ch = Channel(region="AS923-2", loss=0.05, seed=1)
    b1 = ch.receiver("base-a", freqs={921400}, sfs={10})      # a T-Beam base station: one channel, one SF
    gw = ch.receiver("gw-1")                                   # an 8-channel gateway: every channel and SF
    ch.transmit("000101", frame, start_ms=1000.0, freq_khz=921400, sf=10)
    for rx in ch.resolve():                                    # who heard what
        ...

The model (stated so its figures can be judged): two transmissions on the same frequency and
spreading factor that overlap in time destroy each other at every receiver (pure ALOHA, no
capture effect; different SFs do not interfere). Each surviving (transmission, receiver) pair is
independently lost with probability `loss` (fading, range), or as the `link` function decides. A
receiver that is transmitting (a downlink) hears nothing meanwhile. Time on air comes from the
firmware's own `segelfw.airtime`.

`simulate()` runs a fleet for the delivery-ratio figures; `ReplayRadio` feeds one receiver's
receptions to the firmware's base-station logic through micropython-lib lora's radio API.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from segel.radio.plan import airtime


@dataclass(frozen=True)
class Transmission:
    sender: str
    payload: bytes
    start_ms: float
    end_ms: float
    freq_khz: int
    sf: int
    power_dbm: float = 14.0


@dataclass(frozen=True)
class Reception:
    tx: Transmission
    receiver: str
    rssi: float
    snr: float


@dataclass
class Receiver:
    name: str
    freqs: frozenset[int] | None  # None: every channel (an 8-channel gateway)
    sfs: frozenset[int] | None  # None: every spreading factor

    def hears(self, tx: Transmission) -> bool:
        return (self.freqs is None or tx.freq_khz in self.freqs) and (self.sfs is None or tx.sf in self.sfs)


Link = Callable[[str, str, random.Random], "tuple[float, float] | None"]


def default_link(_sender: str, _receiver: str, rng: random.Random) -> tuple[float, float]:
    rssi = rng.uniform(-125.0, -80.0)
    return round(rssi, 1), round(max(-15.0, min(10.0, (rssi + 118.0) / 2.0)), 2)


@dataclass
class Channel:
    region: str = "AS923-2"
    loss: float = 0.0
    seed: int = 1
    preamble: int = 8
    link: Link = default_link
    receivers: dict[str, Receiver] = field(default_factory=dict)
    stats: dict[str, int] = field(default_factory=lambda: {"transmissions": 0, "collided": 0, "lost": 0, "receptions": 0})

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self._air = airtime()
        self.reg = self._air.region(self.region)
        self._pending: list[Transmission] = []

    @property
    def channels_khz(self) -> tuple[int, ...]:
        return tuple(self.reg["channels_khz"])

    def receiver(self, name: str, freqs: Iterable[int] | None = None, sfs: Iterable[int] | None = None) -> Receiver:
        r = Receiver(name, frozenset(freqs) if freqs is not None else None, frozenset(sfs) if sfs is not None else None)
        self.receivers[name] = r
        return r

    def time_on_air_ms(self, sf: int, n: int) -> float:
        return self._air.time_on_air_us(sf, n, self.reg["bw_khz"], self.preamble) / 1000.0

    def transmit(self, sender: str, payload: bytes, start_ms: float, freq_khz: int, sf: int, power_dbm: float = 14.0) -> Transmission:
        tx = Transmission(sender, bytes(payload), start_ms, start_ms + self.time_on_air_ms(sf, len(payload)), freq_khz, sf, power_dbm)
        self._pending.append(tx)
        self.stats["transmissions"] += 1
        return tx

    def forget(self, before_ms: float) -> list[Transmission]:
        """Drop unresolved transmissions that ended before `before_ms` (a live simulation that
        judges each transmission as it is made, with overlapping() and hear(), keeps only the
        recent ones); -> the dropped ones."""
        gone = [t for t in self._pending if t.end_ms < before_ms]
        if gone:
            self._pending = [t for t in self._pending if t.end_ms >= before_ms]
        return gone

    def overlapping(self, tx: Transmission) -> list[Transmission]:
        """Transmissions not yet resolved that overlap `tx` on its frequency and SF."""
        return [o for o in self._pending if o is not tx and o.freq_khz == tx.freq_khz and o.sf == tx.sf
                and o.start_ms < tx.end_ms and tx.start_ms < o.end_ms]

    def hear(self, tx: Transmission) -> list[Reception]:
        """Which receivers hear `tx` if it collides with nothing: loss and link per receiver."""
        out = []
        for r in self.receivers.values():
            if not r.hears(tx) or r.name == tx.sender:
                continue
            if self.loss and self.rng.random() < self.loss:
                self.stats["lost"] += 1
                continue
            lk = self.link(tx.sender, r.name, self.rng)
            if lk is None:
                self.stats["lost"] += 1
                continue
            out.append(Reception(tx, r.name, lk[0], lk[1]))
        self.stats["receptions"] += len(out)
        return out

    def resolve(self, until_ms: float = math.inf) -> list[Reception]:
        """Receptions of every transmission that ended by `until_ms` (later starts cannot overlap
        them as long as transmissions are added no later than their start time)."""
        done = sorted((t for t in self._pending if t.end_ms <= until_ms), key=lambda t: t.start_ms)
        keep = [t for t in self._pending if t.end_ms > until_ms]
        collided = _collisions(done + keep)
        self._pending = keep
        out: list[Reception] = []
        own: dict[str, list[Transmission]] = {}
        for t in done + keep:
            if t.sender in self.receivers:
                own.setdefault(t.sender, []).append(t)
        for t in done:
            if id(t) in collided:
                self.stats["collided"] += 1
                continue
            if t.sender in self.receivers:
                continue  # a downlink: trackers are not modelled as receivers here
            for r in self.receivers.values():
                if not r.hears(t) or any(o.start_ms < t.end_ms and t.start_ms < o.end_ms for o in own.get(r.name, ())):
                    continue
                if self.loss and self.rng.random() < self.loss:
                    self.stats["lost"] += 1
                    continue
                lk = self.link(t.sender, r.name, self.rng)
                if lk is None:
                    self.stats["lost"] += 1
                    continue
                out.append(Reception(t, r.name, lk[0], lk[1]))
        self.stats["receptions"] += len(out)
        return out


def _collisions(txs: list[Transmission]) -> set[int]:
    """ids of transmissions that overlap another on the same frequency and SF."""
    groups: dict[tuple[int, int], list[Transmission]] = {}
    for t in txs:
        groups.setdefault((t.freq_khz, t.sf), []).append(t)
    hit: set[int] = set()
    for g in groups.values():
        g.sort(key=lambda t: t.start_ms)
        longest: Transmission | None = None  # the earlier transmission that ends last
        for t in g:
            if longest is not None and t.start_ms < longest.end_ms:
                hit.add(id(t))
                hit.add(id(longest))
            if longest is None or t.end_ms > longest.end_ms:
                longest = t
    return hit


@dataclass(frozen=True)
class SimResult:
    trackers: int
    sf: int
    interval_s: float
    duration_s: float
    channels: int
    receivers: int
    loss: float
    sent: int
    delivered: int  # distinct frames heard by at least one receiver
    receptions: int  # every copy heard (what the bridges publish)
    duplicates: int  # receptions - delivered: what the gateway's dedupe removes
    delivery_ratio: float
    aloha_expected: float  # exp(-2G) for one channel's offered load, times (1 - loss^receivers)

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def simulate(trackers: int, sf: int = 10, interval_s: float = 300.0, duration_s: float = 3600.0, receivers: int = 2,
             channels: int = 1, loss: float = 0.0, jitter_ms: float = 3000.0, payload_bytes: int = 24, region: str = "AS923-2",
             seed: int = 1) -> SimResult:
    """A fleet reporting every `interval_s`: trackers start at random phases, each report moves by
    up to ±jitter_ms, and picks one of `channels` channels at random (1 = single-channel mode).
    Receivers are single-channel base stations when channels == 1, else 8-channel gateways."""
    ch = Channel(region=region, loss=loss, seed=seed)
    freqs = ch.channels_khz[:channels]
    for i in range(receivers):
        ch.receiver(f"rx{i}", freqs=freqs if channels == 1 else None, sfs={sf} if channels == 1 else None)
    rng = random.Random(seed + 1)
    end_ms = duration_s * 1000.0
    sent = 0
    for k in range(trackers):
        t = rng.uniform(0, interval_s * 1000.0)
        n = 0
        while t < end_ms:
            frame = k.to_bytes(3, "big") + n.to_bytes(3, "big") + bytes(payload_bytes - 6)
            ch.transmit(f"{k:06x}", frame[:payload_bytes], t, rng.choice(freqs), sf)
            sent += 1
            n += 1
            t += interval_s * 1000.0 + rng.uniform(-jitter_ms, jitter_ms)
    rx = ch.resolve()
    delivered = len({r.tx.payload for r in rx})
    toa_s = ch.time_on_air_ms(sf, payload_bytes) / 1000.0
    g = (trackers / len(freqs)) * toa_s / interval_s
    expected = math.exp(-2 * g) * (1 - loss**receivers)
    return SimResult(trackers, sf, interval_s, duration_s, len(freqs), receivers, loss, sent, delivered, len(rx),
                     len(rx) - delivered, round(delivered / sent, 4) if sent else 0.0, round(expected, 4))


class ReplayRadio:
    """micropython-lib lora's radio API over a list of receptions for one receiver, in real time:
    recv() hands out the next reception at once (or waits `timeout_ms` and returns None); send()
    records downlinks. For feeding `segelfw.basestation.BaseStation` in tests and benchmarks."""

    def __init__(self, receptions: Iterable[Reception] = (), crc_error_every: int = 0) -> None:
        from segelfw.hal import RxPacket

        from segel.radio.plan import airtime as _a  # noqa: F401 - puts the firmware on sys.path

        self._RxPacket = RxPacket
        self.queue: list[tuple[bytes, float, float, bool]] = []
        self.sent: list[tuple[bytes, int | None]] = []
        for i, r in enumerate(receptions):
            self.queue.append((r.tx.payload, r.rssi, r.snr, bool(crc_error_every and i % crc_error_every == crc_error_every - 1)))
        self._i = 0

    def push(self, payload: bytes, rssi: float = -100.0, snr: float = 5.0, crc_error: bool = False) -> None:
        self.queue.append((bytes(payload), rssi, snr, crc_error))

    @property
    def remaining(self) -> int:
        return len(self.queue) - self._i

    def recv(self, timeout_ms: int | None = None, rx_length: int = 0xFF, rx_packet: Any = None) -> Any:
        if self._i < len(self.queue):
            payload, rssi, snr, crc = self.queue[self._i]
            self._i += 1
            return self._RxPacket(payload[:rx_length], ticks_ms=int(time.monotonic() * 1000) & ((1 << 30) - 1),
                                  snr=int(round(snr * 4)), rssi=int(round(rssi)), valid_crc=not crc)
        if timeout_ms:
            time.sleep(timeout_ms / 1000.0)
        return None

    def send(self, packet: bytes, tx_at_ms: int | None = None) -> int:
        self.sent.append((bytes(packet), tx_at_ms))
        return int(time.monotonic() * 1000) & ((1 << 30) - 1)


class FirmwareAir:
    """The `air` of simhw's simulated radios (join, transmit) over a Channel: trackers running the
    firmware's own wake cycle (simhw.SimTracker(..., air=FirmwareAir(ch), name="000101")) put
    their real transmissions, at their virtual times, on this channel."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.radios: list[Any] = []

    def join(self, radio: Any) -> None:
        self.radios.append(radio)

    def transmit(self, sender: Any, rec: dict[str, Any]) -> Transmission:
        # simhw calls this after the radio's clock moved past the transmission: t_ms is its start
        return self.channel.transmit(str(sender.name), rec["packet"], float(rec["t_ms"]), int(rec["freq_khz"]),
                                     int(rec["sf"]), float(rec.get("power", 14)))
