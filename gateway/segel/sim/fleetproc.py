"""The virtual fleet, built from a picklable spec, in this process (threads) or in a child process.

The fleet is CPU-bound (every wake runs the firmware's pure-Python cycle: NMEA parsing, AES,
HMAC, the flash queue), and so are the broker and the gateway. On a small machine the rehearsal
runs the fleet in a child process so the two halves use two cores instead of sharing one GIL;
the shared simulation clock is a double in shared memory that the gateway reads as its clock.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from segel import protocol
from segel.sim import scenario as scn_mod
from segel.sim.attacker import forged_frames
from segel.sim.fleet import Hub, MqttHub, VirtualTracker
from segel.sim.itinerary import Builder, Itinerary
from segel.sim.runner import Event, Progress, Runner
from segel.sim.scenario import Scenario

log = logging.getLogger("segel.sim")


@dataclass
class FleetSpec:
    scenario: str
    boxes: list[str]
    devices: dict[str, int]
    secret: bytes
    workdir: str
    broker_host: str
    broker_port: int
    broker_user: str | None = None
    broker_password: str | None = None
    report_interval_s: int | None = None
    step_s: float = 120.0  # two overlapping steps keep receive times within 240 s of device times
    workers: int = 48
    speed: float | None = None
    uplink: str = "wifi"  # or "lora": segel.sim.lora
    lora: Any = None  # segel.sim.lora.LoraOptions when uplink == "lora"
    green: bool = True  # WiFi: every wake in a greenlet on one thread (segel.sim.green), else a thread each


@dataclass
class FleetStats:
    wakes: int
    frames_sent: int
    frames_unheard: int
    retired: dict[str, str]
    errors: list[str]
    progress: Progress
    radio: dict | None = None  # the LoRa path's figures (segel.sim.lora.LoraHub.figures)


def load_scenario(path: str, report_interval_s: int | None) -> Scenario:
    scn = scn_mod.load(path)
    if report_interval_s:
        scn.settings = replace(scn.settings, report_interval_s=report_interval_s)
    return scn


def itineraries(scn: Scenario, boxes: list[str]) -> dict[str, Itinerary]:
    """Every chosen box's itinerary; nobody is switched off before the last box is back (a tracker
    switched off early would rightly be reported silent)."""
    builder = Builder(scn)
    by_box = {b.box: b for b in scn.boxes}
    its = {b: builder.build(by_box[b]) for b in boxes}
    end = max(it.end for it in its.values())
    for it in its.values():
        it.end = end
    return its


def flash_root(workdir: str) -> Path:
    """Where the trackers' simulated flash lives: a RAM disk when there is one (every wake opens
    several flash files; on a disk that is a sixth of the fleet's time), else the work folder."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        return Path(tempfile.mkdtemp(prefix="segel-flash-", dir=shm))
    return Path(tempfile.mkdtemp(prefix="flash-", dir=workdir))


def build(spec: FleetSpec, scn: Scenario, hub: Hub, root: Path) -> tuple[list[VirtualTracker], list[Event]]:
    its = itineraries(scn, spec.boxes)
    trackers = []
    for i, b in enumerate(spec.boxes):
        dev = spec.devices[b]
        key = protocol.derive_device_key(spec.secret, dev, 0)
        cls = getattr(hub, "tracker_class", VirtualTracker)
        trackers.append(cls(root, dev, key, its[b], scn.settings, hub, seed=i + 1))
    by_box = {t.it.box.box: t for t in trackers}
    events: list[Event] = []
    for inc in scn.incidents:
        vt = by_box.get(inc.box)
        if inc.kind == "forged_frame" and vt is not None and inc.at is not None:
            def attack(vt: VirtualTracker = vt, n: int = int(inc.params.get("frames", 5)), seed: int = len(events)) -> None:
                for fr in forged_frames(vt.device_id, list(vt.link.captured), n, seed):
                    hub.publish(vt.hex, fr)
            events.append(Event(inc.at, f"attacker:{inc.id}", attack))
    return trackers, events


def run_fleet(spec: FleetSpec, clock: Any, on_step: Callable[[Progress], None] | None = None,
              should_stop: Callable[[], bool] | None = None) -> FleetStats:
    scn = load_scenario(spec.scenario, spec.report_interval_s)
    root = flash_root(spec.workdir)
    hub = make_hub(spec, scn, root, clock)
    try:
        trackers, events = build(spec, scn, hub, root)
        runner = Runner(trackers, clock, step_s=spec.step_s, workers=spec.workers, speed=spec.speed, events=events,
                        pool=getattr(hub, "pool", None))

        def step(p: Progress) -> None:
            if should_stop and should_stop():
                runner.stop()
            if on_step:
                on_step(p)

        prog = runner.run(step)
        return FleetStats(runner.wakes, sum(t.link.sent for t in trackers), sum(t.link.lost for t in trackers),
                          dict(runner.retired), list(runner.errors), prog, radio=_figures(hub))
    finally:
        hub.close()
        shutil.rmtree(root, ignore_errors=True)


def make_hub(spec: FleetSpec, scn: Scenario, root: Path, clock: Any) -> Hub:
    if spec.uplink == "lora":
        from urllib.parse import quote

        from segel.sim.lora import LoraHub, LoraOptions

        auth = f"{quote(spec.broker_user, safe='')}:{quote(spec.broker_password or '', safe='')}@" if spec.broker_user else ""
        return LoraHub(scn, spec.lora or LoraOptions(), f"mqtt://{auth}{spec.broker_host}:{spec.broker_port}", root, clock)
    if spec.green:
        from segel.sim.green import GreenHub

        return GreenHub(spec.broker_host, spec.broker_port, username=spec.broker_user, password=spec.broker_password)
    return MqttHub(spec.broker_host, spec.broker_port, username=spec.broker_user, password=spec.broker_password)


def _figures(hub: Hub) -> dict | None:
    f = getattr(hub, "figures", None)
    if f is None:
        return None
    hub.close()  # LoRa: what the base stations heard reaches the broker before the figures are taken
    return f()  # type: ignore[no-any-return]


class SharedClock:
    """The simulation clock in shared memory: the fleet process sets it, the gateway reads it."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __call__(self) -> float:
        return float(self.value.value)

    def set(self, t: float) -> None:
        if t > self.value.value:
            self.value.value = float(t)


def _child(spec: FleetSpec, value: Any, conn: Any) -> None:
    import sys

    logging.basicConfig(level=logging.WARNING)
    sys.setswitchinterval(0.001)  # the MQTT thread gets the GIL soon after an ack arrives
    last = [0.0]

    def on_step(p: Progress) -> None:
        if time.monotonic() - last[0] >= 0.25:
            last[0] = time.monotonic()
            conn.send(("progress", p))

    try:
        stats = run_fleet(spec, SharedClock(value), on_step, should_stop=lambda: conn.poll() and conn.recv() == "stop")
        conn.send(("done", stats))
    except BaseException as e:  # report, do not hang the parent
        conn.send(("error", f"{type(e).__name__}: {e}"))
        raise


class FleetProcess:
    """The fleet in a child process (spawned, so no locks of this process's threads are inherited)."""

    def __init__(self, spec: FleetSpec, start_at: float) -> None:
        ctx = mp.get_context("spawn")
        self.value = ctx.Value("d", start_at, lock=False)
        self.clock = SharedClock(self.value)
        self._parent, child = ctx.Pipe()
        self.proc = ctx.Process(target=_child, args=(spec, self.value, child), name="segel-fleet", daemon=True)

    def start(self) -> FleetProcess:
        self.proc.start()
        return self

    def wait(self, on_step: Callable[[Progress], None] | None = None) -> FleetStats:
        while True:
            if self._parent.poll(0.5):
                kind, body = self._parent.recv()
                if kind == "progress":
                    if on_step:
                        on_step(body)
                elif kind == "done":
                    self.proc.join(30)
                    return body  # type: ignore[no-any-return]
                else:
                    self.proc.join(5)
                    raise RuntimeError(f"the fleet process failed: {body}")
            elif not self.proc.is_alive():
                raise RuntimeError(f"the fleet process ended with exit code {self.proc.exitcode}")

    def stop(self) -> None:
        try:
            self._parent.send("stop")
        except (OSError, BrokenPipeError):
            pass

    def kill(self) -> None:
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(5)
