"""Virtual trackers: the firmware's own wake cycle (segelfw.cycle) on simulated hardware (simhw).

Each tracker has its own virtual clock (simhw.SimClock), flash folder, RTC memory, GNSS moving
along its box's itinerary, and seal inputs toggled at the itinerary's times. A wake runs exactly
the code a T-Beam runs (`segelfw.cycle.Cycle(...).run()`); deep sleep then advances the
tracker's clock to its next wake (the report interval, or earlier on a seal edge). The runner
only ever lets a tracker wake once the shared simulation time has reached its clock, so all
device clocks agree with the simulation time and with each other.

Uplink goes through a link object with the firmware link interface (send, recv, sleep):
`WifiLink` publishes raw frames on `segel/up/<device>` through one shared MQTT client (the
tracker's depot WiFi path) and hands the gateway's ack from `segel/down/<device>` back to the
cycle's receive window. Outside coverage (a dead zone) nothing leaves the tracker: the frames
stay in its flash queue until a later wake finds coverage, exactly as on the device.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from segel import paths
from segel.edge import topics
from segel.ids import device_hex
from segel.sim.itinerary import Itinerary
from segel.sim.scenario import Settings

paths.import_firmware()
import simhw  # noqa: E402
from segelfw import config as fw_config  # noqa: E402
from segelfw import cycle as fw_cycle  # noqa: E402

log = logging.getLogger("segel.sim")
fw_log = logging.getLogger("segel.sim.firmware")


def _quiet_firmware_log(msg: str) -> None:  # the firmware prints to its console; 1,402 consoles are noise
    fw_log.debug(msg)


fw_cycle._log = _quiet_firmware_log  # type: ignore[attr-defined]


class Hub:
    """Where trackers' frames go and their downlinks come from (one per simulation)."""

    def publish(self, device: str, frame: bytes) -> None:
        raise NotImplementedError

    def wait_down(self, device: str, timeout_s: float) -> bytes | None:
        raise NotImplementedError

    def close(self) -> None:
        pass


def fleet_client(client_id: str, username: str | None, password: str | None,
                 on_connect: Callable[..., Any], on_message: Callable[..., Any]) -> Any:
    """The fleet's paho client (MQTT 3.1.1): up to 1,000 messages in flight, none queued unsent."""
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
    if username:
        c.username_pw_set(username, password)
    c.max_inflight_messages_set(1000)
    c.max_queued_messages_set(0)
    c.on_connect = on_connect
    c.on_message = on_message
    return c


class MqttHub(Hub):
    """One paho client for the whole fleet: publishes uplinks, routes downlinks per device.

    QoS 0 by default: what makes a frame safe is the gateway's ack frame (the tracker keeps it in
    flash until then), and the embedded broker's QoS 1 handshake adds ~40 ms per message."""

    def __init__(self, host: str, port: int, *, username: str | None = None, password: str | None = None,
                 client_id: str = "segel-sim-fleet", qos: int = 0) -> None:
        self.qos = qos
        self.turn = threading.Lock()  # see WifiLink.turn
        self._boxes: dict[str, deque[bytes]] = {}
        # one condition per device on one lock: a downlink wakes only the tracker it is for (a
        # shared notify_all woke every waiting worker thread for each ack)
        self._lock = threading.Lock()
        self._cvs: dict[str, threading.Condition] = {}
        self.published = 0
        self.downlinks = 0
        self._connected = threading.Event()
        self.client = c = fleet_client(client_id, username, password, self._on_connect, self._on_message)
        c.connect(host, port, keepalive=60)
        c.loop_start()
        if not self._connected.wait(10):
            raise ConnectionError(f"the simulator could not connect to the MQTT broker at {host}:{port}")

    def _on_connect(self, client: Any, userdata: Any, flags: Any, rc: Any, props: Any = None) -> None:
        client.subscribe(topics.TRACKER_DOWN.format(device="+"), qos=self.qos)
        self._connected.set()

    def _cv(self, dev: str) -> threading.Condition:  # call with self._lock held
        cv = self._cvs.get(dev)
        if cv is None:
            cv = self._cvs[dev] = threading.Condition(self._lock)
        return cv

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        dev = msg.topic.rsplit("/", 1)[-1]
        with self._lock:
            self._boxes.setdefault(dev, deque()).append(bytes(msg.payload))
            self.downlinks += 1
            self._cv(dev).notify()

    def publish(self, device: str, frame: bytes) -> None:
        self.client.publish(topics.tracker_up(device), frame, qos=self.qos)
        self.published += 1

    def wait_down(self, device: str, timeout_s: float) -> bytes | None:
        with self._lock:
            q = self._boxes.setdefault(device, deque())
            if not q:
                self._cv(device).wait_for(lambda: bool(q), timeout_s)
            return q.popleft() if q else None

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class WifiLink:
    """The firmware link interface over a Hub, with coverage decided by the itinerary."""

    def __init__(self, hub: Hub, device: str, clock: Any, covered: Callable[[float], bool],
                 ack_timeout_s: float = 10.0, rtt_ms: int = 180) -> None:
        self.hub = hub
        self.device = device
        self.clock = clock
        self.covered = covered
        self.ack_timeout_s = ack_timeout_s
        self.rtt_ms = rtt_ms
        self.awaiting = False
        self.sent = 0
        self.lost = 0  # sent while out of coverage: nobody heard it
        self.captured: deque[bytes] = deque(maxlen=4)  # what an eavesdropper near the depot could record
        # The hub's turn: one wake computes at a time and lets the others go while it waits for its
        # ack. Dozens of wakes waiting in threads is what hides the gateway's round trip; dozens
        # of them *computing* at once only fight over the interpreter lock (hundreds of futex
        # calls per frame, a fifth of the fleet's CPU in the kernel).
        self.turn: threading.Lock | None = getattr(hub, "turn", None)

    def send(self, frame: bytes) -> int:
        if self.covered(self.clock.now):
            self.hub.publish(self.device, bytes(frame))
            self.captured.append(bytes(frame))
            self.sent += 1
            self.awaiting = True
        else:
            self.lost += 1
            self.awaiting = False
        return 0

    def recv(self, timeout_ms: int) -> bytes | None:
        if not self.awaiting:
            self.clock.advance(timeout_ms)
            return None
        self.awaiting = False
        if self.turn is not None:
            self.turn.release()  # others compute while this one waits for the gateway
        try:
            down = self.hub.wait_down(self.device, self.ack_timeout_s)
        finally:
            if self.turn is not None:
                self.turn.acquire()
        self.clock.advance(self.rtt_ms if down is not None else timeout_ms)
        return down

    def sleep(self) -> None:
        pass


class VirtualTracker:
    """One box's tracker. `wake()` runs one firmware cycle and deep-sleeps until the next."""

    def __init__(self, root: Path, device_id: int, device_key: bytes, it: Itinerary, settings: Settings,
                 hub: Hub, seed: int, board: str = "tbeam-v1.1", ack_timeout_s: float = 10.0) -> None:
        self.device_id = device_id
        self.hex = device_hex(device_id)
        self.it = it
        self.settings = settings
        self.cfg = fw_config.validate({
            "device_id": self.hex, "key": device_key.hex(), "board": board,
            "report_interval_s": settings.report_interval_s, "status_interval_s": settings.status_interval_s,
            "fix_timeout_s": 60, "jitter_ms": 2000,
            # a small flash queue is compacted often, so each wake's queue scan stays short
            "queue_bytes": 8192,
        })
        self.hw = simhw.SimTracker(root / self.hex, it.route, start=it.power_on, board=board, seed=seed,
                                   battery_mv=settings.battery_mv,
                                   gnss={"dropouts": it.dropouts, "noise_m": 4.0, "hdop": 1.1, "ttff_hot_s": 1})
        for t, name, is_open in it.seal:
            if name in self.hw.seal.names:
                self.hw.seal.schedule(t, name, is_open)
        self.rearms = sorted(it.rearm)
        self.link = WifiLink(hub, self.hex, self.hw.clock, it.covered, ack_timeout_s)
        self.wakes = 0
        self.done = False
        self.why_done = ""

    @property
    def next_ms(self) -> int:
        return self.hw.clock.now_ms

    def _battery(self) -> None:
        days = (self.hw.clock.now - self.it.power_on) / 86400
        self.hw.pmu.mv = int(self.settings.battery_mv - self.settings.battery_mv_per_day * days)

    def wake(self) -> None:
        """One wake cycle of the firmware, then deep sleep (the clock jumps to the next wake)."""
        now = self.hw.clock.now
        if self.it.power_cut is not None and now >= self.it.power_cut:
            self.done, self.why_done = True, "battery pulled"
            return
        if now >= self.it.end:
            self.done, self.why_done = True, "switched off at the warehouse"
            return
        while self.rearms and self.rearms[0] <= now:  # the technician's re-arm (USB file on the device)
            self.rearms.pop(0)
            Path(self.hw.flash.path("rearm")).write_bytes(b"1")
        self._battery()
        drivers = self.hw.drivers()
        turn = getattr(self.link, "turn", None)
        if turn is not None:
            turn.acquire()
        try:
            fw_cycle.Cycle(drivers, self.cfg, self.link, self.hw.board).run()
        finally:
            if turn is not None:
                turn.release()
        self.wakes += 1
        self.hw.deep_sleep()
