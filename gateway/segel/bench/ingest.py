"""`segel bench ingest`: frames/s from MQTT publish to committed (SQLite + outbox), against a
bare paho subscriber's receive rate measured in the same run on the same broker.

A publisher in a child process sends N signed position frames from many simulated devices
(QoS 1, pre-encoded packets: `segel.bench.loadgen`). Phase 1: a bare paho subscriber (auto ack, no work) receives them; its rate is the
baseline. Phase 2: the real gateway (in this process: record, verify, dedupe, decode, state,
outbox, ack downlinks; commit, then MQTT ack) receives a fresh set of frames; its rate is from the
first publish to the last commit. Latency per frame = commit time - publish time.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import resource
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from segel import config as cfgmod
from segel import protocol, store
from segel.bench import loadgen
from segel.edge import mqtt, topics
from segel.registry import KeyRing, Registry, create_fleet_secret


@dataclass
class BenchResult:
    frames: int
    devices: int
    broker: str
    bare_rate: float
    gateway_rate: float
    p50_ms: float
    p99_ms: float
    peak_rss_mb: float
    committed: int
    rate: float = 0.0  # publisher pacing, 0 = as fast as possible
    load_before: float = 0.0  # 1-minute load average when the run started
    bare_runs: tuple[float, ...] = ()  # the bare rate before and after the gateway phase
    load_after: float = 0.0
    mqtt_rss_mb: float = 0.0  # the gateway's MQTT process (mqtt.link = process), peak

    @property
    def ratio(self) -> float:
        return self.gateway_rate / self.bare_rate if self.bare_rate else 0.0

    def report(self) -> str:
        return "\n".join([
            f"frames {self.frames} from {self.devices} simulated trackers, broker {self.broker}, publisher "
            + (f"paced at {self.rate:,.0f}/s" if self.rate else "as fast as possible"),
            f"bare paho subscriber : {self.bare_rate:10,.0f} frames/s (receive, no work; mean of the runs before "
            f"and after the gateway's: {', '.join(f'{r:,.0f}' for r in self.bare_runs)})",
            f"segel gateway        : {self.gateway_rate:10,.0f} frames/s (publish -> committed: SQLite + outbox)",
            f"ratio gateway / bare : {self.ratio:10.2f}",
            f"latency publish -> commit: p50 {self.p50_ms:.1f} ms, p99 {self.p99_ms:.1f} ms",
            f"peak RSS: gateway {self.peak_rss_mb:.0f} MB (the benchmark process, gateway inside)"
            + (f" + its MQTT process {self.mqtt_rss_mb:.0f} MB" if self.mqtt_rss_mb else ""),
            f"committed {self.committed} of {self.frames}",
            f"machine: {os.cpu_count()} CPUs, load average {self.load_before:.1f} at start, {self.load_after:.1f} at end "
            "(other work on the machine lowers both rates; compare the ratio)",
        ])


def start_mosquitto(workdir: Path) -> tuple[subprocess.Popen, int]:
    """A private Mosquitto on a free loopback port (segel.sim.broker.MosquittoProcess)."""
    from segel.sim.broker import MosquittoProcess, mosquitto_installed

    if not mosquitto_installed():
        raise RuntimeError("mosquitto is not installed (apt-get install mosquitto) and no --broker was given")
    try:
        m = MosquittoProcess(workdir).start()
    except ConnectionError as e:
        raise RuntimeError(str(e)) from None
    assert m.proc is not None
    return m.proc, m.port


def _publisher(broker: mqtt.Broker, items: list[tuple[str, bytes]], out: Any, client_id: str,
               rate: float = 0.0) -> None:
    """Child process: publish everything at QoS 1 (segel.bench.loadgen: pre-encoded packets, so the
    load generator takes little of the CPU the broker and the gateway share)."""
    try:
        pub = loadgen.Publisher(broker.host, broker.port, client_id, username=broker.username,
                                password=broker.password, tls=broker.tls)
        out.put(pub.run(items, rate))
    except Exception as e:  # the parent waits on `out`: tell it why instead of hanging
        out.put(f"{type(e).__name__}: {e}")


def _frames(keyring: KeyRing, devices: list[int], n: int, first_counter: int) -> list[tuple[str, bytes]]:
    now = int(time.time())
    out = []
    for i in range(n):
        dev = devices[i % len(devices)]
        ctr = first_counter + i // len(devices)
        keys = keyring.keys_for(dev)
        assert keys is not None
        body = protocol.Position(0.5 + (i % 100) * 1e-5, 117.5, protocol.Flag.FIX, 0.9, 0)
        out.append((topics.tracker_up(f"{dev:06x}"), protocol.encode(keys, dev, ctr, now - n + i, body)))
    return out


def _run_publisher(broker: mqtt.Broker, items: list[tuple[str, bytes]], tag: str,
                   rate: float = 0.0) -> tuple[mp.process.BaseProcess, Any]:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_publisher, args=(broker, items, q, f"segel-bench-pub-{tag}-{os.getpid()}", rate))
    p.start()
    return p, q


def _peak_rss_mb(pid: int | None) -> float:
    """VmHWM of a live process (Linux), 0 when unknown."""
    if pid is None:
        return 0.0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _times(q: Any) -> list[float]:
    got = q.get(timeout=60)
    if isinstance(got, str):
        raise RuntimeError(f"the benchmark publisher failed: {got}")
    return list(got)


def bare_rate(broker: mqtt.Broker, items: list[tuple[str, bytes]], timeout: float = 300, rate: float = 0.0) -> float:
    got = [0]
    last = [0.0]
    done = threading.Event()

    def on_message(c: Any, u: Any, m: Any) -> None:
        got[0] += 1
        if got[0] >= len(items):
            last[0] = time.time()
            done.set()

    ready = threading.Event()
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"segel-bench-bare-{os.getpid()}", protocol=paho.MQTTv5)
    c.on_message = on_message
    c.on_subscribe = lambda *a: ready.set()
    c.on_connect = lambda cl, *a: cl.subscribe(topics.TRACKER_UP_SUB, qos=1)
    c.connect(broker.host, broker.port)
    c.loop_start()
    ready.wait(10)
    p, q = _run_publisher(broker, items, "bare", rate)
    ok = done.wait(timeout)
    times = _times(q)
    p.join(30)
    c.disconnect()
    c.loop_stop()
    if not ok:
        raise RuntimeError(f"bare subscriber received only {got[0]} of {len(items)}: is the broker dropping "
                           "QoS 1 messages (max_queued_messages)?")
    return len(items) / (last[0] - times[0])


@contextlib.contextmanager
def bench_folder(workdir: Path | None, prefix: str, broker_url: str | None) -> Iterator[tuple[Path, str]]:
    """A benchmark's folder (temporary, removed after, unless `workdir`) and broker (a private
    Mosquitto, stopped after, unless `broker_url`), with the thread switch interval `segel gateway`
    sets."""
    import sys

    from segel.service.gateway import GATEWAY_SWITCH_INTERVAL_S

    sys.setswitchinterval(GATEWAY_SWITCH_INTERVAL_S)
    tmp = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix=prefix))
    tmp.mkdir(parents=True, exist_ok=True)
    proc = None
    try:
        if broker_url is None:
            proc, port = start_mosquitto(tmp)
            broker_url = f"mqtt://127.0.0.1:{port}"
        yield tmp, broker_url
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)
        if workdir is None:
            shutil.rmtree(tmp, ignore_errors=True)


def run(frames: int = 20_000, devices: int = 500, broker_url: str | None = None, batch_max: int = 1000,
        workdir: Path | None = None, timeout: float = 600, rate: float = 0.0) -> BenchResult:
    """`rate` > 0 paces the publisher (frames/s) to measure latency below saturation."""
    from segel.service.gateway import Gateway

    load_before = os.getloadavg()[0]
    with bench_folder(workdir, "segel-bench-", broker_url) as (tmp, broker_url):
        broker = mqtt.parse_url(broker_url)
        secret = create_fleet_secret(tmp / "fleet.key")
        conn = store.connect(tmp / "segel.db")
        reg = Registry(conn)
        ids = list(range(0x100001, 0x100001 + devices))
        for d in ids:
            reg.add_device(d)
        ring = KeyRing(secret, reg)
        warm = _frames(ring, ids, devices, 1)  # one frame per device first: key derivation, first rows
        bare_items = _frames(ring, ids, frames, 10)
        gw_items = _frames(ring, ids, frames, 10)
        conn.close()
        bare_before = bare_rate(broker, bare_items, timeout, rate)

        cfg = cfgmod.load(None, env={}, overrides={
            "gateway.db": str(tmp / "segel.db"), "gateway.fleet_secret": str(tmp / "fleet.key"),
            "gateway.recording_dir": str(tmp / "rec"), "gateway.batch_max": batch_max,
            "gateway.health_interval_s": 3600.0, "mqtt.url": broker_url,
            "mqtt.client_id": f"segel-bench-gw-{os.getpid()}", "mqtt.session_expiry_s": 60})
        commit_at: dict[tuple[int, int], float] = {}
        lock = threading.Lock()

        def on_commit(results: list, at: float) -> None:
            with lock:
                for r in results:
                    if r.accepted:
                        commit_at[(r.accepted.device_id, r.accepted.counter)] = at

        gw = Gateway(cfg, on_commit=on_commit).start()
        try:
            if not gw.wait_until(lambda s: s.mqtt_connected, 15):
                raise RuntimeError(f"gateway could not connect to {mqtt.redact(broker_url)}")
            time.sleep(0.3)  # the subscription settles
            p, q = _run_publisher(broker, warm, "warm")
            _times(q)
            p.join(30)
            gw.wait_until(lambda s: s.accepted >= devices, 60)
            with lock:
                commit_at.clear()
            p, q = _run_publisher(broker, gw_items, "gw", rate)
            gw.wait_until(lambda s: s.accepted >= devices + frames, timeout)
            times = _times(q)
            p.join(30)
            mqtt_rss = _peak_rss_mb(getattr(gw.link, "pid", None))
        finally:
            gw.stop()
        bare_after = bare_rate(broker, bare_items, timeout, rate)  # the machine's load may have changed meanwhile
        bare = (bare_before + bare_after) / 2
        with lock:
            keys = [(int.from_bytes(fr[1:4], "big"), int.from_bytes(fr[4:7], "big")) for _, fr in gw_items]
            lat = sorted((commit_at[k] - t) * 1000 for k, t in zip(keys, times) if k in commit_at)
            last = max(commit_at.values()) if commit_at else times[0]
        committed = len(lat)
        gw_rate = committed / (last - times[0]) if committed else 0.0
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return BenchResult(frames, devices, mqtt.redact(broker_url), bare, gw_rate,
                           lat[len(lat) // 2] if lat else 0.0, lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else 0.0,
                           rss, committed, load_before=load_before, load_after=os.getloadavg()[0],
                           bare_runs=(bare_before, bare_after), rate=rate, mqtt_rss_mb=mqtt_rss)
