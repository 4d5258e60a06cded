"""`segel bench ingest --rules`: the gateway with the Kutai Timur rules on, against itself with the
rules off and against a bare paho subscriber, all in one run on one broker.

The traffic is the rehearsal's (`segel.sim.traffic`): trackers reporting along their boxes' real
routes, seal openings and re-arms, so place lookups, arrivals, leg changes and alerts happen at
the rehearsal's rates. Every gateway phase starts from a copy of one prepared database (places,
corridors, calendar, one tracker per box, paired, plans). The gateway's clock follows the traffic
(the device time of the last committed frame), as the rehearsal's does, so lateness is judged as
in the rehearsal; its timers tick about every 10 s of wall time at 1,000 frames/s. Phases: bare subscriber, rules off, rules on (unpaced: throughput;
latency is then time queued in the broker), rules on paced (latency below saturation: publish ->
commit, and publish -> the alert's arrival at an MQTT subscriber of segel/alerts/#).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from segel import config as cfgmod
from segel import paths, store
from segel.bench import ingest as base
from segel.custody.judge import build_judge
from segel.edge import mqtt, topics
from segel.registry import Registry, create_fleet_secret
from segel.sim.traffic import Traffic, route_traffic


@dataclass
class Phase:
    name: str
    frames: int
    rate: float  # publisher pacing, 0 = unpaced
    committed: int = 0
    frames_per_s: float = 0.0
    commit_p50_ms: float = 0.0
    commit_p99_ms: float = 0.0
    alerts: int = 0  # alerts caused by these frames and seen on MQTT
    alert_p50_ms: float | None = None
    alert_p99_ms: float | None = None
    cpu_s: float = 0.0  # the gateway process's CPU time in the phase


@dataclass
class RulesResult:
    boxes: int
    frames: int
    broker: str
    bare_runs: tuple[float, ...]
    phases: list[Phase] = field(default_factory=list)
    load_before: float = 0.0
    load_after: float = 0.0
    peak_rss_mb: float = 0.0

    @property
    def bare(self) -> float:
        return sum(self.bare_runs) / len(self.bare_runs) if self.bare_runs else 0.0

    def report(self) -> str:
        out = [f"{self.frames} frames of {self.boxes} Kutai Timur trackers along their routes (places, corridors, "
               f"calendar, plans loaded), broker {self.broker}",
               f"bare paho subscriber          : {self.bare:8,.0f} frames/s (mean of "
               f"{', '.join(f'{r:,.0f}' for r in self.bare_runs)}: before and after the gateway)"]
        for p in self.phases:
            paced = f"paced {p.rate:,.0f}/s" if p.rate else "unpaced"
            line = (f"gateway, {p.name:<8} {paced:<13}: {p.frames_per_s:8,.0f} frames/s  "
                    f"ratio {p.frames_per_s / self.bare if self.bare else 0:4.2f}  "
                    f"publish->commit p50 {p.commit_p50_ms:7.1f} ms p99 {p.commit_p99_ms:7.1f} ms  "
                    f"CPU {1e6 * p.cpu_s / max(1, p.committed):5.0f} us/frame")
            if p.alert_p50_ms is not None:
                line += f"\n{'':34}publish->alert on MQTT ({p.alerts} alerts) p50 {p.alert_p50_ms:.1f} ms p99 {p.alert_p99_ms:.1f} ms"
            if p.committed < p.frames:
                line += f"  (committed only {p.committed} of {p.frames})"
            out.append(line)
        out.append(f"peak RSS of the benchmark process (gateway inside): {self.peak_rss_mb:.0f} MB")
        out.append(f"machine: {os.cpu_count()} CPUs, load average {self.load_before:.1f} at start, {self.load_after:.1f} at end "
                   "(other work lowers every rate; compare the ratios)")
        return "\n".join(out)


class FollowClock:
    """The gateway's clock in the benchmark: the device time of the newest committed frame."""

    def __init__(self, start: float) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t

    def saw(self, t: float) -> None:
        if t > self.t:
            self.t = t


def _alert_listener(host: str, port: int, ready: Any, stop: Any, out: Any) -> None:
    """Child process: when each alert (id, event) arrives on segel/alerts/#."""
    import json

    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    seen: dict[tuple[str, str], float] = {}

    def on_message(c: Any, u: Any, m: Any) -> None:
        try:
            a = json.loads(m.payload)
            seen.setdefault((a["id"], a["event"]), time.time())
        except (ValueError, KeyError, TypeError):
            pass

    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"segel-bench-alerts-{os.getpid()}")
    c.on_message = on_message
    c.on_connect = lambda cl, *a: cl.subscribe(topics.ALERT_SUB, qos=1)
    c.on_subscribe = lambda *a: ready.set()
    c.connect(host, port)
    c.loop_start()
    stop.wait(3600)
    time.sleep(0.5)
    c.loop_stop()
    out.put(seen)


def _pct(xs: list[float], q: float) -> float:
    return xs[min(len(xs) - 1, int(len(xs) * q))] if xs else 0.0


def phase_folder(tmp: Path, name: str, prepared: Path, rules: bool, calendar: Path,
                 interval_s: float) -> tuple[Path, list]:
    """A phase's own copy of the prepared database and fleet key, and its judge when the rules are on."""
    work = tmp / name.replace(" ", "-")
    work.mkdir()
    shutil.copy(prepared, work / "segel.db")
    shutil.copy(tmp / "fleet.key", work / "fleet.key")
    judges = []
    if rules:
        conn = store.connect(work / "segel.db")
        judges = [build_judge(conn, calendar=calendar, settings={"report_interval_s": interval_s})]
        conn.close()
    return work, judges


def _phase(name: str, rate: float, traffic: Traffic, prepared: Path, tmp: Path, broker_url: str, rules: bool,
           timeout: float, batch_max: int) -> Phase:
    from segel.service.gateway import Gateway

    broker = mqtt.parse_url(broker_url)
    scn = traffic.scenario
    work, judges = phase_folder(tmp, name, prepared, rules, scn.files()["calendar"], float(scn.settings.report_interval_s))
    items = [(tp, fr) for tp, fr, _t in traffic.frames]
    first: dict[str, int] = {}
    for i, (tp, _fr) in enumerate(items):
        first.setdefault(tp, i)
    warm_idx = sorted(first.values())
    warm = [items[i] for i in warm_idx]  # each tracker's first frame: keys, first rows
    rest_idx = [i for i in range(len(items)) if i not in set(warm_idx)]
    rest = [items[i] for i in rest_idx]
    clock = FollowClock(traffic.frames[0][2])
    # the traffic's days pass in seconds here: the timers tick about every 10 s of wall time at
    # 1,000 frames/s (as gateway.tick_interval_s does for a live fleet), not every 10 s of its days
    span = traffic.frames[-1][2] - traffic.frames[0][2]
    tick_s = max(600.0, span / (len(traffic.frames) / 1000.0) * 10.0)
    cfg = cfgmod.load(None, env={}, overrides={
        "gateway.db": str(work / "segel.db"), "gateway.fleet_secret": str(work / "fleet.key"),
        "gateway.recording_dir": str(work / "rec"), "gateway.batch_max": batch_max,
        "gateway.health_interval_s": 10 * 86400.0, "gateway.tick_interval_s": tick_s,
        "mqtt.url": broker_url,
        "mqtt.client_id": f"segel-bench-{name.replace(' ', '-')}-{os.getpid()}", "mqtt.session_expiry_s": 5})
    commit_at: dict[tuple[int, int], float] = {}
    alert_src: dict[tuple[str, str], tuple[int, int]] = {}
    lock = threading.Lock()

    def on_commit(results: list, at: float) -> None:
        with lock:
            for r in results:
                if r.accepted:
                    k = (r.accepted.device_id, r.accepted.counter)
                    commit_at[k] = at
                    clock.saw(r.accepted.event_time)
                    for a in r.alerts:
                        alert_src.setdefault((a["id"], a["event"]), k)

    ctx = mp.get_context("spawn")
    ready, stop, q = ctx.Event(), ctx.Event(), ctx.Queue()
    listener = ctx.Process(target=_alert_listener, args=(broker.host, broker.port, ready, stop, q), daemon=True)
    listener.start()
    ready.wait(15)
    gw = Gateway(cfg, judges, on_commit=on_commit, clock=clock).start()
    try:
        if not gw.wait_until(lambda s: s.mqtt_connected, 15):
            raise RuntimeError("the gateway could not connect to the benchmark's broker")
        time.sleep(0.3)
        p, pq = base._run_publisher(broker, warm, f"warm-{os.getpid()}")
        base._times(pq)
        p.join(30)
        gw.wait_until(lambda s: s.accepted >= len(warm), 120)
        with lock:
            commit_at.clear()
            alert_src.clear()
        cpu0 = os.times()
        p, pq = base._run_publisher(broker, rest, f"{name}-{os.getpid()}", rate)
        gw.wait_until(lambda s: s.accepted >= len(warm) + len(rest), timeout)
        cpu1 = os.times()
        times = base._times(pq)
        p.join(30)
        time.sleep(0.5)  # the last alerts reach the listener
    finally:
        gw.stop()
        stop.set()
    seen = q.get(timeout=30)
    listener.join(10)
    keys = [(int.from_bytes(fr[1:4], "big"), int.from_bytes(fr[4:7], "big")) for _, fr in rest]
    sent = dict(zip(keys, times))
    lat = sorted((commit_at[k] - sent[k]) * 1000 for k in keys if k in commit_at)
    alat = sorted((t - sent[alert_src[a]]) * 1000 for a, t in seen.items() if a in alert_src and alert_src[a] in sent)
    last = max(commit_at.values()) if commit_at else times[0]
    ph = Phase(name, len(rest), rate, committed=len(lat), frames_per_s=len(lat) / (last - times[0]) if lat else 0.0,
               commit_p50_ms=_pct(lat, 0.5), commit_p99_ms=_pct(lat, 0.99),
               cpu_s=(cpu1.user + cpu1.system) - (cpu0.user + cpu0.system))
    if rules:
        ph.alerts, ph.alert_p50_ms, ph.alert_p99_ms = len(alat), _pct(alat, 0.5), _pct(alat, 0.99)
    return ph


def prepare(tmp: Path, traffic: Traffic) -> Path:
    """The database every phase starts from a copy of: the traffic's trackers registered, Kutai
    Timur's places and corridors imported, boxes paired (each box gets its plan from the calendar
    when a judge is built on it)."""
    prepared = tmp / "prepared.db"
    conn = store.connect(prepared)
    reg = Registry(conn)
    conn.execute("BEGIN IMMEDIATE")
    for dev in traffic.devices.values():
        reg.add_device(dev)
    conn.execute("COMMIT")
    (tmp / "boxes.csv").write_text(traffic.boxes_csv, encoding="utf-8")
    f = traffic.scenario.files()
    build_judge(conn, places=[f["places"], f["corridors"]], boxes=tmp / "boxes.csv", calendar=f["calendar"])
    conn.close()
    return prepared


def run(frames: int = 20_000, broker_url: str | None = None, paced_rate: float = 1000.0, batch_max: int = 1000,
        workdir: Path | None = None, timeout: float = 900) -> RulesResult:
    import resource

    load_before = os.getloadavg()[0]
    with base.bench_folder(workdir, "segel-bench-rules-", broker_url) as (tmp, broker_url):
        broker = mqtt.parse_url(broker_url)
        secret = create_fleet_secret(tmp / "fleet.key")
        traffic = route_traffic(paths.scenarios_dir() / "kutai-timur", secret, frames=frames)
        prepared = prepare(tmp, traffic)
        bare_items = [(tp, fr) for tp, fr, _t in traffic.frames]
        bare_before = base.bare_rate(broker, bare_items, timeout)
        phases = [_phase("rules off", 0.0, traffic, prepared, tmp, broker_url, False, timeout, batch_max),
                  _phase("rules on", 0.0, traffic, prepared, tmp, broker_url, True, timeout, batch_max)]
        if paced_rate:
            phases.append(_phase("rules on paced", paced_rate, traffic, prepared, tmp, broker_url, True, timeout, batch_max))
        bare_after = base.bare_rate(broker, bare_items, timeout)
        res = RulesResult(len(traffic.boxes), len(traffic.frames), mqtt.redact(broker_url), (bare_before, bare_after),
                          phases, load_before, os.getloadavg()[0],
                          resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        for p in res.phases:
            p.name = p.name.replace(" paced", "")
        return res
