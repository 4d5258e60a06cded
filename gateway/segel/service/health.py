"""Health of a running gateway: a snapshot of its counters, served to Prometheus at /metrics,
saved in the database for `segel status`, and written to InfluxDB as the `gateway` measurement.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from segel import store
from segel.influx import outbox

STAGES = ("verify", "decode", "rules", "timers", "commit", "outbox")
HEALTH_SCHEMA = "CREATE TABLE IF NOT EXISTS health (instance TEXT PRIMARY KEY, at REAL NOT NULL, snapshot TEXT NOT NULL)"


@dataclass
class Snapshot:
    instance: str = "gateway"
    at: float = 0.0
    started_at: float = 0.0
    mqtt_connected: bool = False
    mqtt_connects: int = 0
    received: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)  # accepted, duplicate, rejected:<reason>
    queue: int = 0
    batches: int = 0
    outbox_depth: int = 0
    outbox_lag_s: float = 0.0
    influx_written: int = 0
    influx_parked: int = 0
    influx_errors: int = 0
    influx_last_error: str | None = None
    alerts_published: int = 0
    parked: int = 0  # messages whose handling raised, kept in the security log (internal_error)
    downlinks_published: int = 0
    last_commit_at: float | None = None
    ingest_lag_s: float = 0.0  # receipt -> commit of the oldest message of the last batch
    # time per stage (verify, decode, rules, timers, commit, outbox) and how many runs it covers
    # (frames for verify/decode/rules, batches for commit, ticks for timers, lines for outbox)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    stage_runs: dict[str, int] = field(default_factory=dict)

    @property
    def accepted(self) -> int:
        return self.outcomes.get("accepted", 0)

    @property
    def duplicates(self) -> int:
        return self.outcomes.get("duplicate", 0)

    @property
    def rejected(self) -> dict[str, int]:
        return {k.split(":", 1)[1]: v for k, v in self.outcomes.items() if k.startswith("rejected:")}


def refresh_outbox(snap: Snapshot, conn: sqlite3.Connection) -> None:
    snap.outbox_depth = outbox.depth(conn)
    snap.outbox_lag_s = outbox.lag_s(conn)


def save(conn: sqlite3.Connection, snap: Snapshot) -> None:
    conn.execute(HEALTH_SCHEMA)
    conn.execute("INSERT OR REPLACE INTO health(instance, at, snapshot) VALUES (?,?,?)",
                 (snap.instance, snap.at, json.dumps(asdict(snap))))


def load_all(conn: sqlite3.Connection) -> list[Snapshot]:
    conn.execute(HEALTH_SCHEMA)
    return [Snapshot(**json.loads(r[0])) for r in conn.execute("SELECT snapshot FROM health ORDER BY instance")]


class _Collector(Collector):
    def __init__(self, get: Callable[[], Snapshot]) -> None:
        self._get = get

    def collect(self) -> Iterator[Any]:
        s = self._get()
        up = CounterMetricFamily("segel_uplinks", "Uplinks handled since start, by outcome", labels=["outcome", "reason"])
        up.add_metric(["accepted", ""], s.accepted)
        up.add_metric(["duplicate", ""], s.duplicates)
        for reason, n in sorted(s.rejected.items()):
            up.add_metric(["rejected", reason], n)
        yield up
        yield CounterMetricFamily("segel_mqtt_received", "MQTT messages received since start", value=s.received)
        yield GaugeMetricFamily("segel_mqtt_connected", "1 when connected to the broker", value=int(s.mqtt_connected))
        yield CounterMetricFamily("segel_mqtt_connects", "Successful broker connections", value=s.mqtt_connects)
        yield GaugeMetricFamily("segel_ingest_queue", "Messages received, not yet committed", value=s.queue)
        yield GaugeMetricFamily("segel_ingest_lag_seconds", "Receipt to commit of the last batch's oldest message",
                                value=s.ingest_lag_s)
        yield GaugeMetricFamily("segel_outbox_depth", "InfluxDB lines waiting in the outbox", value=s.outbox_depth)
        yield GaugeMetricFamily("segel_outbox_lag_seconds", "Age of the oldest outbox line", value=s.outbox_lag_s)
        yield CounterMetricFamily("segel_influx_written_lines", "Lines InfluxDB accepted", value=s.influx_written)
        yield CounterMetricFamily("segel_influx_parked_lines", "Lines InfluxDB refused for good", value=s.influx_parked)
        yield CounterMetricFamily("segel_influx_write_errors", "Failed InfluxDB write attempts", value=s.influx_errors)
        yield CounterMetricFamily("segel_alerts_published", "Alerts published", value=s.alerts_published)
        yield CounterMetricFamily("segel_messages_parked", "Messages whose handling raised, kept in the security log",
                                  value=s.parked)
        yield CounterMetricFamily("segel_downlinks_published", "Downlinks (acks) published", value=s.downlinks_published)
        secs = CounterMetricFamily("segel_stage_seconds", "Time spent per stage since start: verify (header, registry, "
                                   "MAC), decode, rules (the judges per frame), timers, commit, outbox (InfluxDB writes)",
                                   labels=["stage"])
        runs = CounterMetricFamily("segel_stage_runs", "What each stage's time covers: frames (verify, decode, rules), "
                                   "batches (commit), ticks (timers), lines written (outbox)", labels=["stage"])
        for stage in STAGES:
            secs.add_metric([stage], s.stage_seconds.get(stage, 0.0))
            runs.add_metric([stage], s.stage_runs.get(stage, 0))
        yield secs
        yield runs
        yield GaugeMetricFamily("segel_last_commit_timestamp_seconds", "Unix time of the last commit",
                                value=s.last_commit_at or 0.0)


def metrics_registry(get: Callable[[], Snapshot]) -> CollectorRegistry:
    reg = CollectorRegistry(auto_describe=True)
    reg.register(_Collector(get))
    return reg


def status_text(conn: sqlite3.Connection, now: float | None = None) -> str:
    """What `segel status` prints: live snapshots, lifetime counters, outbox, security log."""
    now = now or time.time()
    out: list[str] = []
    snaps = load_all(conn)
    if not snaps:
        out.append("gateway: no health snapshot yet (has `segel gateway` run with this database?)")
    for s in snaps:
        age = now - s.at
        state = "running" if age < 120 else f"NOT RUNNING? last heartbeat {age:.0f} s ago"
        out.append(f"gateway {s.instance}: {state}; broker {'connected' if s.mqtt_connected else 'DISCONNECTED'} "
                   f"(connects {s.mqtt_connects}); up {max(0.0, s.at - s.started_at):.0f} s")
        out.append(f"  since start: received {s.received}, accepted {s.accepted}, duplicates {s.duplicates}, "
                   f"rejected {sum(s.rejected.values())}; alerts {s.alerts_published}; "
                   f"ingest lag {s.ingest_lag_s:.2f} s" + (f"; PARKED {s.parked} (see --security)" if s.parked else ""))
        out.append(f"  InfluxDB: written {s.influx_written}, parked {s.influx_parked}, failed attempts {s.influx_errors}"
                   + (f"; last error: {s.influx_last_error}" if s.influx_last_error else ""))
    st = store.stats(conn)
    out.append("lifetime: accepted {}, duplicates {}".format(st.get("accepted", 0), st.get("duplicate", 0)))
    rej = {k.split(":", 1)[1]: v for k, v in st.items() if k.startswith("rejected:")}
    out.append("rejected by reason: " + (", ".join(f"{k} {v}" for k, v in sorted(rej.items())) or "none"))
    out.append(f"outbox: {outbox.depth(conn)} lines waiting, oldest {outbox.lag_s(conn, now):.0f} s; "
               f"{len(outbox.parked(conn))} parked")
    devs = conn.execute("SELECT COUNT(*), MAX(last_seen_at) FROM device_state").fetchone()
    out.append(f"trackers heard: {devs[0]}" + (f", last {now - devs[1]:.0f} s ago" if devs[1] else ""))
    return "\n".join(out)
