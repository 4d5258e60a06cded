"""The air of the simulated trackers' radios: who hears which transmission, collisions, fading, and acks back."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from typing import Any

from segel import paths
from segel.radio import channel as air_channel
from segel.sim.itinerary import Itinerary, dist_m
from segel.sim.lora.bases import SimBase
from segel.sim.lora.radio import NOISE_FLOOR_DBM, LoraOptions, Site, sensitivity_dbm

paths.import_firmware()
from segelfw import config as fw_config  # noqa: E402


class _Mailbox:
    """Where a base station's downlink for one tracker waits for that tracker's wake thread."""

    def __init__(self) -> None:
        self.cv = threading.Condition()
        self.item: tuple[str, bytes, float] | None = None

    def clear(self) -> None:
        with self.cv:
            self.item = None

    def put(self, base_id: str, frame: bytes) -> None:
        with self.cv:
            self.item = (base_id, frame, time.monotonic())
            self.cv.notify_all()

    def wait(self, timeout_s: float) -> tuple[str, bytes, float] | None:
        with self.cv:
            self.cv.wait_for(lambda: self.item is not None, timeout_s)
            item, self.item = self.item, None
            return item


class LoraAir(air_channel.FirmwareAir):
    """The air of the trackers' simulated radios (simhw calls join() and transmit()) over a
    air_channel.Channel, with the scenario's geography.

    Trackers wake in parallel threads at nearby virtual times; each transmission is judged when it
    is made, against the recent ones already on the channel: one that started earlier but was
    processed later still collides, and an earlier copy already delivered is then counted as a
    late collision (it cannot be taken back)."""

    def __init__(self, opts: LoraOptions, sites: list[Site]) -> None:
        super().__init__(air_channel.Channel(region=opts.region, loss=opts.fading, seed=opts.seed))
        self.opts = opts
        self.sites = sites
        for s in sites:
            self.channel.receiver(s.base_id, freqs={opts.channel_khz}, sfs={opts.sf})
        self.range_m = opts.range_m()
        self.interference_m = opts.interference_m()
        self.bases: dict[str, SimBase] = {}
        self.itineraries: dict[str, Itinerary] = {}
        self.mailboxes: dict[str, _Mailbox] = {}
        self.heard_last: dict[str, int] = {}  # device -> base stations that heard its last transmission
        self.rng = random.Random(opts.seed + 1)
        self.lock = threading.Lock()
        self.ack_wait_s = fw_config.DEFAULTS["ack_window_ms"] / 1000.0 + 0.5
        # per transmission still on the channel: (base stations it disturbs, base stations it reached)
        self._info: dict[int, tuple[frozenset[str], set[str]]] = {}
        self._latest_ms = 0.0
        self._since_forget = 0
        near = {s.base_id: frozenset(o.base_id for o in sites if o is not s
                                     and dist_m((s.lat, s.lon), (o.lat, o.lon)) <= self.interference_m) for s in sites}
        self._base_reach = near  # a base station's downlink disturbs these other base stations
        self.stats: Counter[str] = Counter()
        self.heard_by: Counter[str] = Counter()  # base id -> copies it received
        self.copies: Counter[int] = Counter()  # how many base stations heard a transmission -> transmissions

    # --- who is where
    def attach(self, device: str, it: Itinerary) -> None:
        self.itineraries[device] = it
        self.mailboxes[device] = _Mailbox()

    def _near(self, pos: tuple[float, float]) -> list[tuple[Site, float]]:
        out = []
        for s in self.sites:
            d = dist_m(pos, (s.lat, s.lon))
            if d <= self.interference_m:
                out.append((s, d))
        return out

    # --- the channel
    def _judge(self, tx: air_channel.Transmission, pos: tuple[float, float] | None) -> list[tuple[Site, float, float]]:
        """Which base stations receive `tx` (sent from `pos`; None: inside a dead zone), with RSSI and SNR."""
        self.stats["transmissions"] += 1
        if pos is None:
            self._info[id(tx)] = (frozenset(), set())
            self.stats["dead_zone"] += 1
            return []
        near = self._near(pos)
        self._info[id(tx)] = (frozenset(s.base_id for s, _ in near), set())
        if not any(d <= self.range_m for _, d in near):
            self.stats["out_of_range"] += 1
        others = self.channel.overlapping(tx)
        out = []
        collided = weak = faded = 0
        for s, d in near:
            if not self.channel.receivers[s.base_id].hears(tx):
                continue
            hit = False
            for o in others:
                info = self._info.get(id(o))
                if o.sender == s.base_id:
                    hit = True  # the base station is transmitting a downlink: it hears nothing meanwhile
                elif info is not None and s.base_id in info[0]:
                    hit = True
                    if s.base_id in info[1]:
                        self.stats["late_collisions"] += 1  # o was already delivered there
                if hit:
                    break
            mean = self.opts.mean_rssi(d)
            if hit:
                if mean >= sensitivity_dbm(self.opts.sf) - 2 * self.opts.shadowing_db:
                    collided += 1
                continue
            rssi = mean + self.rng.gauss(0.0, self.opts.shadowing_db)
            if rssi < sensitivity_dbm(self.opts.sf):
                weak += d <= self.range_m
                continue
            if self.opts.fading and self.rng.random() < self.opts.fading:
                faded += 1
                continue
            snr = max(-20.0, min(10.0, rssi - NOISE_FLOOR_DBM))
            out.append((s, round(rssi, 1), round(snr, 2)))
            self._info[id(tx)][1].add(s.base_id)
        self.copies[len(out)] += 1
        if not out:
            if collided:
                self.stats["collided"] += 1
            elif faded:
                self.stats["faded"] += 1
            elif weak:
                self.stats["too_weak"] += 1
        else:
            self.stats["heard"] += 1
            self.stats["receptions"] += len(out)
            if collided:
                self.stats["collided_at_some"] += 1
        return out

    def _forget_old(self, t_ms: float) -> None:
        self._latest_ms = max(self._latest_ms, t_ms)
        self._since_forget += 1
        if self._since_forget >= 256:
            self._since_forget = 0
            # concurrent wakes are at most a few simulated minutes apart (segel.sim.runner)
            for t in self.channel.forget(self._latest_ms - 3600_000):
                self._info.pop(id(t), None)

    def transmit(self, sender: Any, rec: dict[str, Any]) -> air_channel.Transmission:
        """A tracker's radio finished transmitting (simhw moved its clock past the end): deliver
        the copies, then wait (in real time) for a base station to transmit the gateway's ack and
        put it into the tracker's receive window."""
        dev = str(sender.name)
        it = self.itineraries[dev]
        t = float(rec["t_ms"]) / 1000.0
        with self.lock:
            tx = self.channel.transmit(dev, rec["packet"], float(rec["t_ms"]), int(rec["freq_khz"]), int(rec["sf"]),
                                       float(rec.get("power", 14)))
            heard = self._judge(tx, it.position(t) if it.covered(t) else None)
            self._forget_old(tx.start_ms)
        self.heard_last[dev] = len(heard)
        if not heard:
            return tx
        box = self.mailboxes[dev]
        box.clear()
        t0 = time.monotonic()
        for s, rssi, snr in heard:
            self.heard_by[s.base_id] += 1
            self.bases[s.base_id].radio.push(tx.payload, rssi, snr)
        got = box.wait(self.ack_wait_s)
        if got is None:
            self.stats["no_ack"] += 1  # the base station found the window closed, or the gateway did not answer
            return tx
        base_id, frame, t1 = got
        at_ms = tx.end_ms + max(0.0, (t1 - t0) * 1000.0)
        with self.lock:
            dl = self.channel.transmit(base_id, frame, at_ms, tx.freq_khz, tx.sf)
            self._info[id(dl)] = (self._base_reach[base_id], set())
            lost = bool(self.opts.fading) and self.rng.random() < self.opts.fading
        if lost:
            self.stats["acks_faded"] += 1
        else:
            self.stats["acks_delivered"] += 1
            site = next(s for s in self.sites if s.base_id == base_id)
            rssi = round(self.opts.mean_rssi(dist_m(it.position(t), (site.lat, site.lon))), 1)
            sender.deliver(frame, at_ms=int(at_ms), rssi=rssi, snr=max(-20.0, min(10.0, rssi - NOISE_FLOOR_DBM)),
                           freq_khz=tx.freq_khz)
        return tx

    def inject(self, name: str, frame: bytes, t_ms: float, pos: tuple[float, float]) -> int:
        """A transmitter that is not a tracker (the attacker): -> how many base stations heard it."""
        with self.lock:
            tx = self.channel.transmit(name, frame, t_ms, self.opts.channel_khz, self.opts.sf)
            heard = self._judge(tx, pos)
            self._forget_old(tx.start_ms)
        for s, rssi, snr in heard:
            self.heard_by[s.base_id] += 1
            self.bases[s.base_id].radio.push(tx.payload, rssi, snr)
        return len(heard)

    def on_downlink(self, base_id: str, frame: bytes) -> None:
        """A base station's radio transmits (called from its thread): the tracker it is for is
        still in its wake, waiting in transmit()."""
        self.stats["downlinks_on_air"] += 1
        box = self.mailboxes.get(frame[1:4].hex()) if len(frame) >= 4 else None
        if box is not None:
            box.put(base_id, frame)
