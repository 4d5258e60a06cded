"""`segel bench burst`: part of the fleet leaves a dead zone at once with full queues.

Kutai Timur is loaded as in `segel bench ingest --rules`; each of the chosen trackers holds the
frames of `queue` report intervals (5 minutes) along its real route and flushes them at the same
moment the way the firmware does (`segel.bench.flush`: a random wait of up to `jitter_ms` before
each frame, a receive window of `window_ms` for its ack, `per_wake` frames per wake, the rest at the
next wake). The same burst runs against the gateway with the rules off (the baseline) and on.
Printed: the time until every tracker had all its acks, the frames sent again because an ack
missed its window, the ack latency seen by the trackers (p50, p99, max), and what the gateway
stored (accepted once, duplicates).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from segel import config as cfgmod
from segel import paths, protocol
from segel.bench import ingest as base
from segel.bench.flush import FleetFlush, FlushStats
from segel.bench.rules import FollowClock, phase_folder, prepare
from segel.edge import mqtt
from segel.registry import create_fleet_secret
from segel.sim.traffic import route_traffic


@dataclass
class BurstRow:
    name: str
    stats: FlushStats
    accepted: int
    duplicates: int
    cpu_s: float

    def line(self) -> str:
        s = self.stats
        lat = sorted(s.latencies)
        q = (lambda f: 1000 * lat[min(len(lat) - 1, int(len(lat) * f))] if lat else 0.0)
        return (f"{self.name:<10} all acked after {s.drain_s:6.1f} s  sent {s.sends:6,} for {s.frames:6,} frames "
                f"(resent {s.resends:5,}, windows missed {s.windows_missed:5,})  ack latency p50 {q(0.5):6.1f} ms "
                f"p99 {q(0.99):7.1f} ms max {q(1.0):7.1f} ms  gateway: accepted {self.accepted:,}, duplicates "
                f"{self.duplicates:,}, CPU {self.cpu_s:5.1f} s" + (f"  NOT ACKED: {sum(map(len, s.unacked.values()))}"
                                                                  if s.unacked else ""))


def _flush_child(host: str, port: int, queues: dict, keys: dict, kw: dict, out: Any) -> None:
    import asyncio

    try:
        out.put(asyncio.run(FleetFlush(host, port, queues, keys, **kw).run(kw.pop("deadline_s", 900.0))))
    except Exception as e:  # noqa: BLE001 - the parent waits on `out`
        out.put(f"{type(e).__name__}: {e}")


def _burst(name: str, rules: bool, prepared: Path, tmp: Path, broker_url: str, calendar: Path,
           queues: dict[int, list[tuple[int, bytes]]], keys: dict[int, protocol.DeviceKeys], start_t: float,
           flush_kw: dict) -> BurstRow:
    from segel.service.gateway import Gateway

    work, judges = phase_folder(tmp, name, prepared, rules, calendar, 300.0)
    clock = FollowClock(start_t)
    lock = threading.Lock()

    def on_commit(results: list, at: float) -> None:
        with lock:
            for r in results:
                if r.accepted:
                    clock.saw(r.accepted.event_time)

    cfg = cfgmod.load(None, env={}, overrides={
        "gateway.db": str(work / "segel.db"), "gateway.fleet_secret": str(work / "fleet.key"),
        "gateway.recording_dir": str(work / "rec"), "gateway.health_interval_s": 10 * 86400.0,
        "gateway.tick_interval_s": 600.0, "mqtt.url": broker_url,
        "mqtt.client_id": f"segel-bench-burst-{name.replace(' ', '-')}-{os.getpid()}", "mqtt.session_expiry_s": 5})
    broker = mqtt.parse_url(broker_url)
    gw = Gateway(cfg, judges, on_commit=on_commit, clock=clock).start()
    try:
        if not gw.wait_until(lambda s: s.mqtt_connected, 15):
            raise RuntimeError("the gateway could not connect to the benchmark's broker")
        time.sleep(0.3)
        ctx = mp.get_context("spawn")
        q = ctx.Queue()
        p = ctx.Process(target=_flush_child, args=(broker.host, broker.port, queues, keys,
                                                   dict(flush_kw, client_id=f"segel-bench-flush-{os.getpid()}"), q))
        cpu0 = os.times()
        p.start()
        got = q.get(timeout=flush_kw.get("deadline_s", 900.0) + 60)
        cpu1 = os.times()
        p.join(30)
        if isinstance(got, str):
            raise RuntimeError(f"the trackers' simulator failed: {got}")
        snap = gw.snapshot()
    finally:
        gw.stop()
    return BurstRow(name, got, snap.accepted, snap.duplicates, (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system))


def run(trackers: int = 700, queue: int = 24, jitter_ms: int = 3000, window_ms: int = 2500, per_wake: int = 8,
        wake_gap_s: float = 10.0, broker_url: str | None = None, workdir: Path | None = None) -> str:
    load_before = os.getloadavg()[0]
    with base.bench_folder(workdir, "segel-bench-burst-", broker_url) as (tmp, broker_url):
        secret = create_fleet_secret(tmp / "fleet.key")
        traffic = route_traffic(paths.scenarios_dir() / "kutai-timur", secret, boxes=trackers, interval_s=300,
                                days=queue * 300 / 86400)
        prepared = prepare(tmp, traffic)
        f = traffic.scenario.files()
        queues: dict[int, list[tuple[int, bytes]]] = {}
        for _tp, fr, _t in traffic.frames:
            queues.setdefault(int.from_bytes(fr[1:4], "big"), []).append((int.from_bytes(fr[4:7], "big"), fr))
        keys = {d: protocol.DeviceKeys.from_device_key(protocol.derive_device_key(secret, d, 0)) for d in queues}
        kw = dict(jitter_ms=jitter_ms, window_ms=window_ms, per_wake=per_wake, wake_gap_s=wake_gap_s)
        rows = [_burst(name, rules, prepared, tmp, broker_url, f["calendar"], queues, keys, traffic.frames[0][2], kw)
                for name, rules in (("rules off", False), ("rules on", True))]
        frames = sum(len(v) for v in queues.values())
        head = (f"{len(queues)} Kutai Timur trackers leave a dead zone at once with {frames:,} frames queued "
                f"({queue} report intervals each, along their routes); firmware flush: up to {jitter_ms} ms jitter "
                f"before each frame, {window_ms} ms receive window, {per_wake} frames per wake, next wake "
                f"{wake_gap_s:g} s later")
        tail = (f"machine: {os.cpu_count()} CPUs, load average {load_before:.1f} at start, {os.getloadavg()[0]:.1f} at end; "
                f"broker {mqtt.redact(broker_url)}")
        return "\n".join([head] + [r.line() for r in rows] + [tail])
