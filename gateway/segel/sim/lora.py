"""The simulator's LoRa path: trackers -> simulated air -> base stations -> `segel bridge` -> broker.

`segel simulate --uplink lora` / `segel demo --uplink lora` replace the trackers' WiFi path
(segel.sim.fleet.MqttHub, WifiLink) with this one:

- each tracker's wake cycle sends through the firmware's own LoRa link (`segelfw.link.LoraLink`:
  dwell check, channel, `configure()` and `send()` on a micropython-lib lora radio); only the radio
  chip is simulated (`simhw.SimRadio`, the lora driver's synchronous API);
- the radio puts each transmission, at the tracker's virtual time, on a `segel.lorasim.Channel`
  (time on air at the configured SF, collisions, fading) through `LoraAir`, which adds geography:
  a base station hears a tracker within its range (log-distance path loss with shadowing), two
  transmissions on the same channel and SF that overlap in time destroy each other at every base
  station that hears both (pure ALOHA, no capture effect), and a scripted dead zone means that
  nobody hears the tracker;
- every base station is the firmware's base-station role (`segelfw.basestation.BaseStation`) writing
  COBS+CRC serial records into a pseudo-terminal, read by a real `segel bridge` (`Bridge`, pyserial,
  durable buffer, QoS 1) that publishes the documented JSON on `segel/bridge/<id>/up` to the same
  broker as the gateway; the gateway's ack comes back on `segel/bridge/<id>/down`, through the
  bridge and the serial line, and the base station transmits it if the tracker's receive window
  is still open (its own real-time check); the air then hands it to the tracker's radio inside
  that window. A frame nobody heard, or whose ack was lost or late, stays in the tracker's flash
  queue and goes out again at its next wake: the firmware's own behaviour.

Base stations stand at the KPU warehouse, at every PPK office and at as many PPS (village) offices
as it takes for every TPS to be in range (`place_sites`). docs/demo.md states the radio
assumptions and the measured figures.
"""

from __future__ import annotations

import logging
import math
import os
import random
import select
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from segel import lorasim, paths
from segel.sim.fleet import Hub, VirtualTracker
from segel.sim.itinerary import Builder, Itinerary, dist_m
from segel.sim.scenario import Scenario

paths.import_firmware()
import simhw  # noqa: E402
from segelfw import basestation as fw_base  # noqa: E402
from segelfw import config as fw_config  # noqa: E402
from segelfw import link as fw_link  # noqa: E402
from segelfw.hal import RxPacket  # noqa: E402

log = logging.getLogger("segel.sim.lora")

# SX1276/SX1262 at 125 kHz: the SNR down to which each SF still demodulates (datasheet), and the
# noise floor (-174 dBm/Hz + 10 log10(125 kHz) + a 6 dB noise figure).
DEMOD_SNR_DB = {7: -7.5, 8: -10.0, 9: -12.5, 10: -15.0, 11: -17.5, 12: -20.0}
NOISE_FLOOR_DBM = -117.0


def sensitivity_dbm(sf: int) -> float:
    return NOISE_FLOOR_DBM + DEMOD_SNR_DB[sf]


@dataclass(frozen=True)
class LoraOptions:
    """The simulated radio network (picklable: it travels to the fleet process)."""

    sf: int = 10  # the trackers' and base stations' spreading factor (SF7 to SF10 fit the dwell limit)
    region: str = "AS923-2"
    channel_khz: int = 921400  # single-channel mode: trackers and T-Beam base stations on one channel
    range_km_sf10: float = 15.0  # where the mean received power falls to SF10's sensitivity
    path_loss_exp: float = 3.0  # log-distance exponent (lowland forest, base antenna on a mast)
    shadowing_db: float = 4.0  # standard deviation of the received power around its mean
    fading: float = 0.05  # each copy (uplink at a base station, downlink at a tracker) also lost with this probability
    seed: int = 1

    def range_m(self) -> float:
        """Where the mean received power equals this SF's sensitivity."""
        db = sensitivity_dbm(self.sf) - sensitivity_dbm(10)
        return self.range_km_sf10 * 1000.0 * 10 ** (db / (10 * self.path_loss_exp))

    def mean_rssi(self, d_m: float) -> float:
        d = max(d_m, 50.0)
        return sensitivity_dbm(self.sf) + 10 * self.path_loss_exp * math.log10(self.range_m() / d)

    def interference_m(self) -> float:
        """A transmission disturbs a base station up to where its mean power is 6 dB under the
        sensitivity (it cannot be decoded there, but it still destroys an overlapping frame)."""
        return self.range_m() * 10 ** (6 / (10 * self.path_loss_exp))


@dataclass(frozen=True)
class Site:
    base_id: str  # the base station's device id (6 characters, in its serial records)
    bridge_id: str  # the `segel bridge --id` next to it (MQTT topics segel/bridge/<id>/...)
    code: str  # the place it stands at
    kind: str  # warehouse, ppk or pps
    lat: float
    lon: float


def place_sites(scn: Scenario, range_m: float) -> list[Site]:
    """Base stations at the KPU warehouse and every PPK office, then at PPS (village) offices,
    greedily, until every TPS of the scenario is within range of one (the one covering most TPS
    still uncovered first; ties by place code). Deterministic."""
    b = Builder(scn)
    fixed = [(c, p.kind) for c, p in sorted(scn.places.items()) if p.kind in ("warehouse", "ppk")]
    fixed.sort(key=lambda x: (x[1] != "warehouse", x[0]))
    pos = {c: b.center(c) for c, p in scn.places.items() if p.kind in ("warehouse", "ppk", "pps", "tps")}
    chosen = [c for c, _ in fixed]
    tps = [c for c, p in sorted(scn.places.items()) if p.kind == "tps"]
    uncovered = [t for t in tps if all(dist_m(pos[t], pos[s]) > range_m for s in chosen)]
    pps = [c for c, p in sorted(scn.places.items()) if p.kind == "pps"]
    while uncovered:
        best, n = None, 0
        for c in pps:
            k = sum(dist_m(pos[t], pos[c]) <= range_m for t in uncovered)
            if k > n:
                best, n = c, k
        if best is None:  # a TPS no PPS office reaches: it stays without coverage
            break
        chosen.append(best)
        uncovered = [t for t in uncovered if dist_m(pos[t], pos[best]) > range_m]
    sites = []
    for i, c in enumerate(chosen):
        kind = scn.places[c].kind
        sites.append(Site(f"b{i + 1:05d}", f"{kind}-{c}".lower(), c, kind, *pos[c]))
    return sites


class PtyPort:
    """The base station's UART: the master side of a pseudo-terminal whose other side `segel
    bridge` opens with pyserial, as it would open /dev/ttyUSB0."""

    def __init__(self) -> None:
        import pty
        import tty

        m, s = pty.openpty()
        tty.setraw(s)
        os.set_blocking(m, False)
        self.fd: int | None = m
        self._slave: int | None = s
        self.path = os.ttyname(s)
        self._lock = threading.Lock()

    def write(self, data: bytes) -> int:
        fd = self.fd
        if fd is None:
            raise OSError("closed")
        with self._lock:
            view = memoryview(bytes(data))
            while view:
                select.select([], [fd], [], 1.0)
                n = os.write(fd, view)  # BlockingIOError (an OSError) when nobody reads: the base keeps the record
                view = view[n:]
        return len(data)

    def read(self) -> bytes | None:
        fd = self.fd
        if fd is None:
            return None
        try:
            return os.read(fd, 4096) or None
        except (BlockingIOError, OSError):
            return None

    def close(self) -> None:
        for fd in (self.fd, self._slave):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.fd = self._slave = None


class AirRadio:
    """micropython-lib lora's synchronous radio API for a base station, fed by the air: recv()
    returns what the air pushed (an RxPacket stamped with the base station's ticks on arrival),
    send() hands a downlink back to the air. The only simulated part of a base station."""

    def __init__(self, base_id: str, on_send: Any) -> None:
        self.base_id = base_id
        self.on_send = on_send
        self.queue: deque[RxPacket] = deque()
        self.received = 0
        self.sent = 0
        self._r, self._w = os.pipe()
        os.set_blocking(self._r, False)
        os.set_blocking(self._w, False)

    # --- what the air does
    def push(self, payload: bytes, rssi: float, snr: float) -> None:
        self.queue.append(RxPacket(payload, ticks_ms=fw_base.ticks_ms(), snr=int(round(snr * 4)), rssi=int(round(rssi))))
        self.received += 1
        try:
            os.write(self._w, b"\x01")
        except BlockingIOError:
            pass  # the base station is already woken

    @property
    def wake_fd(self) -> int:
        return self._r

    def drain(self) -> None:
        try:
            while os.read(self._r, 512):
                pass
        except BlockingIOError:
            pass

    # --- the lora driver's API, as segelfw.basestation uses it
    def configure(self, lora_cfg: dict) -> None:
        pass

    def recv(self, timeout_ms: int | None = None, rx_length: int = 0xFF, rx_packet: Any = None) -> RxPacket | None:
        try:
            return self.queue.popleft()
        except IndexError:
            return None

    def send(self, packet: bytes, tx_at_ms: int | None = None) -> int:
        self.sent += 1
        self.on_send(self.base_id, bytes(packet))
        return int(fw_base.ticks_ms())

    def standby(self) -> None:
        pass

    def sleep(self) -> None:
        pass

    def close(self) -> None:
        fds, self._r, self._w = (self._r, self._w), -1, -1
        for fd in fds:
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass


class SimBase:
    """One site: the firmware's base-station role on an AirRadio and a pty, and a real `segel
    bridge` on the other end of the pty publishing to the broker."""

    def __init__(self, site: Site, opts: LoraOptions, broker_url: str, buffer_dir: Path, on_downlink: Any,
                 boot_id: int) -> None:
        from segel.bridge import Bridge

        self.site = site
        self.radio = AirRadio(site.base_id, on_downlink)
        self.port = PtyPort()
        cfg = {"device_id": site.base_id, "region": opts.region, "sf": opts.sf, "channel": opts.channel_khz,
               "ack_window_ms": fw_config.DEFAULTS["ack_window_ms"], "preamble": fw_config.DEFAULTS["preamble"]}
        self.base = fw_base.BaseStation(self.radio, self.port, cfg, boot_id=boot_id)
        self.bridge = Bridge(site.bridge_id, broker_url, buffer_dir / f"{site.bridge_id}.sqlite", port=self.port.path,
                             reopen_s=0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"segel-base-{site.base_id}", daemon=True)

    def start(self) -> SimBase:
        self.bridge.start()
        self._thread.start()
        return self

    def _run(self) -> None:
        """The base station's main loop (segelfw.hw.basestation.main polls in a loop; here it sleeps until
        the air or the bridge has something, so 40 idle base stations cost nothing)."""
        fds = [self.port.fd, self.radio.wake_fd]
        while not self._stop.is_set():
            try:
                select.select(fds, [], [], 0.2)
            except (OSError, ValueError):
                return
            self.radio.drain()
            self.base.poll(rx_timeout_ms=0)
            while self.radio.queue:
                self.base.poll(rx_timeout_ms=0)

    def ready(self) -> bool:
        s = self.bridge.serial
        return self.bridge.publisher.connected.is_set() and s is not None and s.base is not None

    def idle(self) -> bool:
        """Nothing heard is still on its way to the broker."""
        return not self.radio.queue and not self.base.order and self.bridge.buffer.depth() == 0

    def stop(self) -> None:
        self.bridge.stop()
        self._stop.set()
        self._thread.join(5)
        self.port.close()
        self.radio.close()


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


class LoraAir(lorasim.FirmwareAir):
    """The air of the trackers' simulated radios (simhw calls join() and transmit()) over a
    lorasim.Channel, with the scenario's geography.

    Trackers wake in parallel threads at nearby virtual times; each transmission is judged when it
    is made, against the recent ones already on the channel: one that started earlier but was
    processed later still collides, and an earlier copy already delivered is then counted as a
    late collision (it cannot be taken back)."""

    def __init__(self, opts: LoraOptions, sites: list[Site]) -> None:
        super().__init__(lorasim.Channel(region=opts.region, loss=opts.fading, seed=opts.seed))
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
    def _judge(self, tx: lorasim.Transmission, pos: tuple[float, float] | None) -> list[tuple[Site, float, float]]:
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

    def transmit(self, sender: Any, rec: dict[str, Any]) -> lorasim.Transmission:
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


class TrackerLink:
    """The link a LoRa tracker's wake cycle uses: the firmware's own `segelfw.link.LoraLink` on the
    tracker's simulated radio, created afresh at every wake as on the device, plus the counters
    and the attacker's recording that the fleet reads (`sent`, `lost`, `captured`)."""

    def __init__(self, vt: VirtualTracker, air: LoraAir) -> None:
        self.vt = vt
        self.air = air
        self.fw: fw_link.LoraLink | None = None
        self.sent = 0  # heard by at least one base station
        self.lost = 0  # heard by none: collision, fading, out of range, dead zone
        self.captured: deque[bytes] = deque(maxlen=4)

    def _link(self) -> fw_link.LoraLink:
        if self.fw is None:
            hw = self.vt.hw
            self.fw = fw_link.LoraLink(hw.radio, self.vt.cfg, hw.system.random_u32, hw.board.get("radio"))
        return self.fw

    def set_sf(self, sf: int) -> None:
        self._link().set_sf(sf)

    def send(self, frame: bytes) -> int:
        toa = self._link().send(frame)
        self.captured.append(bytes(frame))
        if self.air.heard_last.get(self.vt.hex):
            self.sent += 1
        else:
            self.lost += 1
        return int(toa)

    def recv(self, timeout_ms: int) -> bytes | None:
        return self._link().recv(timeout_ms)

    def sleep(self) -> None:
        if self.fw is not None:
            self.fw.sleep()
            self.fw = None  # deep sleep: the next wake boots and builds its link again


class LoraTracker(VirtualTracker):
    """A VirtualTracker whose radio is on the LoRa air and whose cycle sends through LoraLink."""

    def __init__(self, root: Path, device_id: int, device_key: bytes, it: Itinerary, settings: Any, hub: Hub,
                 seed: int, **kw: Any) -> None:
        super().__init__(root, device_id, device_key, it, settings, hub, seed, **kw)
        assert isinstance(hub, LoraHub)
        o = hub.opts
        self.cfg = fw_config.validate(dict(self.cfg, region=o.region, sf=o.sf, channel=o.channel_khz))
        self.hw.radio = simhw.SimRadio(self.hw.clock, hub.air, name=self.hex)
        hub.air.attach(self.hex, it)
        self.link = TrackerLink(self, hub.air)  # type: ignore[assignment]


class LoraHub(Hub):
    """The LoRa network of a simulation: the air, the base stations and their bridges."""

    tracker_class = LoraTracker

    def __init__(self, scn: Scenario, opts: LoraOptions, broker_url: str, workdir: Path, clock: Any,
                 timeout_s: float = 30.0) -> None:
        self.opts = opts
        self.clock = clock
        self.sites = place_sites(scn, opts.range_m())
        self.air = LoraAir(opts, self.sites)
        buf = Path(workdir) / "bridges"
        buf.mkdir(parents=True, exist_ok=True)
        self.bases: list[SimBase] = []
        self._closed = False
        # The embedded amqtt broker (0.12) hands every client that connects the retained messages
        # of every topic anyone subscribed to, so each bridge gets the other bridges' retained
        # status on its downlink subscription; it rightly counts them as bad downlinks
        # (`bad_downlinks` in its status) and would log a warning for each.
        logging.getLogger("segel.bridge.mqtt").setLevel(logging.ERROR)
        try:
            deadline = time.monotonic() + timeout_s
            for i, s in enumerate(self.sites):
                b = SimBase(s, opts, broker_url, buf, self.air.on_downlink, boot_id=0x5000 + i).start()
                self.bases.append(b)
                self.air.bases[s.base_id] = b
                # one at a time: amqtt fails a connection that arrives while another subscribes
                while not b.bridge.publisher.connected.is_set() and time.monotonic() < deadline:
                    time.sleep(0.005)
            while not all(b.ready() for b in self.bases):
                if time.monotonic() > deadline:
                    raise ConnectionError(f"{sum(not b.ready() for b in self.bases)} of {len(self.bases)} simulated "
                                          f"bridges did not reach the broker at {broker_url} or their base station")
                time.sleep(0.05)
        except BaseException:
            self.close(wait_s=0)
            raise
        self.attacks = 0
        log.info("LoRa: %d base stations (SF%d, %.1f km range)", len(self.sites), opts.sf, opts.range_m() / 1000)

    def publish(self, device: str, frame: bytes) -> None:
        """An attacker's transmission under `device`'s id, from where that box is now."""
        it = self.air.itineraries[device]
        t_ms = self.clock() * 1000.0 + 1000.0 * self.attacks
        self.attacks += 1
        self.air.inject("attacker", frame, t_ms, it.position(t_ms / 1000.0))

    def wait_down(self, device: str, timeout_s: float) -> bytes | None:
        raise NotImplementedError("LoRa trackers receive through their radio")

    def figures(self) -> dict[str, Any]:
        st = self.air.stats
        per_base = {}
        for b in self.bases:
            sl = b.bridge.serial
            per_base[b.site.bridge_id] = {
                "base_id": b.site.base_id, "place": b.site.code, "kind": b.site.kind,
                "heard": b.radio.received, "published": b.bridge.publisher.published,
                "acks_sent": b.base.tx_packets, "acks_late": b.base.tx_late,
                "tx_status": dict(sl.tx_status) if sl else {}}
        return {
            "uplink": "lora", "sf": self.opts.sf, "channel_khz": self.opts.channel_khz,
            "range_km": round(self.opts.range_m() / 1000, 1), "fading": self.opts.fading,
            "shadowing_db": self.opts.shadowing_db, "base_stations": len(self.sites),
            "sites": dict(Counter(s.kind for s in self.sites)),
            "transmissions": st["transmissions"], "heard": st["heard"], "receptions": st["receptions"],
            "heard_by_two_or_more": sum(n for k, n in self.air.copies.items() if k >= 2),
            "collided": st["collided"], "collided_at_some": st["collided_at_some"],
            "late_collisions": st["late_collisions"], "faded": st["faded"], "too_weak": st["too_weak"],
            "out_of_range": st["out_of_range"], "dead_zone": st["dead_zone"],
            "delivery_ratio": round(st["heard"] / st["transmissions"], 4) if st["transmissions"] else 0.0,
            "acks_delivered": st["acks_delivered"], "acks_faded": st["acks_faded"], "no_ack": st["no_ack"],
            "per_bridge": per_base,
        }

    def close(self, wait_s: float = 20.0) -> None:
        """Stop the bridges once what the base stations heard is at the broker (once)."""
        if self._closed:
            return
        self._closed = True
        deadline = time.monotonic() + wait_s
        while wait_s and time.monotonic() < deadline and not all(b.idle() for b in self.bases):
            time.sleep(0.05)
        for b in self.bases:
            try:
                b.stop()
            except Exception:  # noqa: BLE001 - stopping is best effort
                log.debug("stopping %s", b.site.bridge_id, exc_info=True)


def gateway_figures(db_path: Path | str) -> dict[str, Any]:
    """The gateway's side of the LoRa path, from its own database: frames stored (once each) by
    how many receptions they had, and by the base station of their best reception."""
    import sqlite3

    db = sqlite3.connect(str(db_path), timeout=30)
    try:
        by_n = dict(db.execute("SELECT receptions, count(*) FROM seen GROUP BY receptions").fetchall())
        by_base = dict(db.execute("SELECT coalesce(base_id, '-'), count(*) FROM seen GROUP BY base_id").fetchall())
        via = db.execute("SELECT count(*) FROM seen WHERE bridge_id IS NOT NULL AND rssi IS NOT NULL").fetchone()[0]
    finally:
        db.close()
    return {"stored": sum(by_n.values()), "via_bridge_with_rx": via,
            "stored_with_two_or_more_receptions": sum(n for k, n in by_n.items() if (k or 1) >= 2),
            "by_receptions": {str(k): v for k, v in sorted(by_n.items(), key=lambda kv: kv[0] or 0)},
            "best_base": dict(sorted(by_base.items()))}
