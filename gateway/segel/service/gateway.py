"""The gateway service: MQTT in, verified state in SQLite, outbox to InfluxDB, acks and alerts out.

Threads and who owns what:
- the MQTT link (`segel.edge.link`): paho runs in a child process by default (`mqtt.link =
  "process"`, so its parsing and publishing use the second core) or in this process (`"thread"`).
  Either way its callbacks only hand batches of messages to a queue and report connection
  events: no I/O, no database, and they never raise.
- the worker thread owns the database connection and the pipeline. It takes every waiting
  message (up to `gateway.batch_max`), records them, processes them in ONE transaction,
  commits, and only then acknowledges them to the broker (manual ack), publishes the ack
  downlinks and the alerts. It also runs the judges' timers (`tick`) and the health snapshot.
- the outbox drainer thread writes InfluxDB lines with its own connection (`segel.influx.outbox`).
- changes made by other processes (an operator's ack or resolve from the console or the CLI)
  wait in the `publications` table; the worker publishes them on MQTT and to the webhooks while
  the broker is connected, then deletes them (`_drain_publications`).
- prometheus-client's HTTP thread serves /metrics from the last snapshot.

A crash at any point loses nothing: a message not yet committed was not acknowledged, so the
broker (persistent session, QoS 1) delivers it again; one committed but not acknowledged comes
back as a duplicate and is acknowledged then.
"""

from __future__ import annotations

import gc
import json
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client import start_http_server

from segel import store
from segel.config import Config
from segel.edge import link as mqttlink
from segel.edge import mqtt, payloads, topics
from segel.influx import lines, outbox
from segel.influx.writers import V1Writer, V2Writer, Writer
from segel.messages import INTERNAL_ERROR, Judge, Unreadable, Uplink
from segel.ingest.guard import Guard
from segel.ingest.pipeline import Pipeline, ProcessResult
from segel.ingest.sanity import Sanity
from segel.recording import recorder as recording
from segel.registry import KeyRing, Registry, load_fleet_secret
from segel.service import checkpointer, health

log = logging.getLogger("segel.service.gateway")


@dataclass
class _Msg:
    gen: int
    mid: int
    qos: int
    topic: str
    payload: bytes
    received_at: float  # on the gateway's clock
    wall: float  # time.monotonic() at receipt, for the ingest lag


def make_writer(cfg: Config) -> Writer | None:
    i = cfg.influx
    if i.kind == "v1":
        return V1Writer(i.url, i.database, i.retention_policy or None, i.username or None, i.password or None,
                        i.timeout_s, i.create_database)
    if i.kind == "v2":
        return V2Writer(i.url, i.bucket, i.org, i.token or None, i.timeout_s, i.verify_tls, i.ca_file or None)
    return None


CommitHook = Callable[[list[ProcessResult], float], None]

# What a parked or unreadable message keeps: its first bytes (a hostile 100 MB payload must not
# fill the disk) and its topic (MQTT allows 64 KiB).
KEEP_BYTES = 4096
KEEP_TOPIC = 1024


def _recording_line(up: Uplink, problem: Unreadable | None) -> str | None:
    """The recording's line for a message; a message that cannot even be recorded is logged and
    left out of the recording (never of ingest)."""
    try:
        return recording.to_json(up, problem.detail if problem else None)
    except Exception:  # noqa: BLE001 - one odd message must not stop the recording of the others
        log.exception("could not record a message from %s", payloads.shown(up.topic))
        return None


class _Retry(Exception):
    """A transient error while handling a failed batch message by message: retry the rest."""

    def __init__(self, cause: BaseException, remaining: list[_Msg]) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.remaining = remaining


def is_transient(e: BaseException) -> bool:
    """An error of the machine, not of a message: the database busy or locked, the disk full or
    failing, memory. A batch that fails with one is retried whole (nothing was acknowledged); any
    other error is treated as the batch's own, and the message that causes it is parked."""
    if isinstance(e, (OSError, MemoryError)):
        return True
    if isinstance(e, sqlite3.OperationalError):
        text = str(e).lower()
        return any(w in text for w in ("locked", "busy", "disk", "full", "i/o", "unable to open", "readonly"))
    return False

# The worker thread releases the GIL on every SQLite call; with Python's default 5 ms switch
# interval it then often waits for paho's network thread to give the GIL back. A dedicated
# gateway process (`segel gateway`, the benchmark) uses a shorter interval.
GATEWAY_SWITCH_INTERVAL_S = 0.0005
FIRST_CONNECT_WAIT_S = 10.0
PUBLICATIONS_EVERY_S = 0.2  # how often the worker looks for operators' changes to publish (wall clock)


class Gateway:
    """`Gateway(config).start()` … `.stop()`; runs in the calling process (demo, tests) or under
    `segel gateway`. `judges` are the places/custody stages; `on_commit` sees every committed batch."""

    def __init__(self, config: Config, judges: Sequence[Judge] = (), writer: Writer | None = None,
                 on_commit: CommitHook | None = None, clock: Callable[[], float] | None = None,
                 on_alerts: Callable[[list[dict]], None] | None = None) -> None:
        self.cfg = config
        # receive time and the judges' timers; the fleet simulator passes its accelerated clock
        self.clock: Callable[[], float] = clock or time.time
        self.judges = list(judges)
        self._writer = writer
        self.on_commit = on_commit
        # every alert after it is committed, from frames and from timers alike (webhooks)
        self.on_alerts = on_alerts
        self.snap = health.Snapshot(instance=config.gateway.instance)
        self._q: queue.Queue[list[_Msg]] = queue.Queue()  # batches as the MQTT link hands them over
        self._queued = 0  # messages in self._q
        self._stopping = threading.Event()
        self._worker: threading.Thread | None = None
        self.link: mqttlink.Link | None = None
        self.drainer: outbox.Drainer | None = None
        self._httpd: Any = None
        self.metrics_port: int | None = None
        self.pipeline: Pipeline | None = None
        self.checkpointer: checkpointer.Checkpointer | None = None
        self._lock = threading.Lock()
        self._first_contact = threading.Event()

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self) -> Gateway:
        c = self.cfg
        g = c.gateway
        db_path = c.path(g.db)
        conn = store.connect(db_path)
        conn.execute(health.HEALTH_SCHEMA)
        keyring = KeyRing(load_fleet_secret(c.path(g.fleet_secret)), Registry(conn))
        self.pipeline = Pipeline(conn, keyring, self.judges,
                                 Sanity(c.sanity.max_hdop, c.sanity.max_speed_kmh, c.sanity.min_jump_m),
                                 window=g.replay_window, reack_after_s=g.reack_after_s, clock=self.clock,
                                 guard=Guard(g.reack_burst, g.reack_refill_s, g.bad_mac_window_s, g.bad_mac_alert_after,
                                             Pipeline.LOG_REJECTS_PER_MINUTE))
        self.recorder = recording.Recorder(c.path(g.recording_dir), int(g.recording_max_mb * 1024 * 1024),
                                           g.recording_keep)
        writer = self._writer or make_writer(c)
        if writer is not None:
            self.drainer = outbox.Drainer(db_path, writer, c.influx.batch_size,
                                          max_backoff_s=c.influx.max_backoff_s).start()
            log.info("writing InfluxDB lines to %s", writer.name)
        else:
            log.warning("influx.kind = none: InfluxDB lines stay in the outbox until a writer is configured")
        if g.metrics_port:
            self._httpd, _ = start_http_server(g.metrics_port, g.metrics_host, health.metrics_registry(self.snapshot))
            self.metrics_port = g.metrics_port
            log.info("Prometheus metrics on http://%s:%d/metrics", g.metrics_host, g.metrics_port)
        self.checkpointer = checkpointer.from_config(c)  # signed ledger heads (docs/custody.md)
        self.snap.started_at = time.time()
        # Places, plans and the judges' indexes live as long as the gateway: keep them out of the
        # cyclic garbage collector's full passes, which otherwise walk them all and hold up a batch
        # or a tick for tens of milliseconds per million objects (issue 17, segel bench timers).
        gc.collect()
        gc.freeze()
        self._worker = threading.Thread(target=self._work, name="segel-worker", daemon=True)
        self._worker.start()
        self._connect()
        return self

    def _connect(self) -> None:
        m = self.cfg.mqtt
        log.info("connecting to %s as %r (MQTT %s, persistent session, paho in %s)", mqtt.redact(m.url),
                 m.client_id, m.protocol, "its own process" if m.link == "process" else "this process")
        self._first_contact.clear()
        self.link = mqttlink.make(m, m.link).start(self._on_messages, self._on_event)
        # Wait (a little) for the first attempt's outcome, so the log says at once whether the
        # broker is there; an absent broker is retried in the background all the same.
        self._first_contact.wait(FIRST_CONNECT_WAIT_S)

    def stop(self, timeout: float = 15.0) -> None:
        """Finish the batch in hand, then disconnect. Messages still queued were not acknowledged:
        the broker delivers them again on the next start."""
        self._stopping.set()
        if self._worker:
            self._worker.join(timeout)
        if not (self._worker and self._worker.is_alive()):  # a last checkpoint: the heads at the stop
            self._checkpoints(self.clock(), final=True)
        if self.link:
            self.link.stop()
        if self.drainer:
            self.drainer.stop()
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()
        self.recorder.close()
        if self.checkpointer:
            self.checkpointer.close()
        if self.pipeline:
            self.pipeline.conn.close()
        log.info("gateway stopped")

    def snapshot(self) -> health.Snapshot:
        s = self.snap
        s.at = time.time()
        s.queue = self._queued
        if self.drainer:
            d = self.drainer.stats
            s.influx_written, s.influx_parked, s.influx_errors, s.influx_last_error = (
                d.written, d.parked, d.errors, d.last_error)
            s.outbox_depth, s.outbox_lag_s = d.depth, d.lag_s
            s.stage_seconds["outbox"], s.stage_runs["outbox"] = d.write_s, d.written
        if self.pipeline is not None:
            p = self.pipeline
            s.stage_seconds.update(p.stages.seconds)
            s.stage_runs.update(p.stages.runs)
        return s

    def wait_until(self, pred: Callable[[health.Snapshot], bool], timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pred(self.snapshot()):
                return True
            time.sleep(0.02)
        return False

    # ---- from the MQTT link (its thread: quick, never raise) ----------------------------------

    def _on_event(self, event: str, detail: str) -> None:
        try:
            if event == "connected":
                self.snap.mqtt_connected = True
                self.snap.mqtt_connects += 1
                log.warning("connected to broker (session present: %s); subscribed to %s", detail,
                            ", ".join(t for t, _ in payloads.subscriptions()))
            elif event == "refused":
                log.error("broker refused the connection: %s (check mqtt.username/password, mqtt.client_id)", detail)
            elif event == "connect_failed":
                log.warning("cannot connect to the broker %s: %s (retrying with backoff up to %.0f s)",
                            mqtt.redact(self.cfg.mqtt.url), detail, self.cfg.mqtt.reconnect_max_s)
            elif event == "disconnected":
                self.snap.mqtt_connected = False
                if not self._stopping.is_set():
                    log.warning("lost the broker (%s); reconnecting with backoff", detail)
            if event in ("connected", "refused", "connect_failed"):
                self._first_contact.set()
        except Exception:
            log.exception("error handling MQTT event %s", event)

    def _on_messages(self, msgs: list[mqttlink.Incoming]) -> None:
        try:
            now = self.clock()
            batch = [_Msg(g, mid, qos, topic, payload, now, at) for g, mid, qos, topic, payload, at in msgs]
            with self._lock:
                self._queued += len(batch)
            self._q.put(batch)
            self.snap.received += len(batch)
        except Exception:
            log.exception("error queueing %d MQTT messages", len(msgs))

    # ---- worker ----------------------------------------------------------------------------

    def _work(self) -> None:
        g = self.cfg.gateway
        next_tick = self.clock() + g.tick_interval_s
        next_health = self.clock()
        next_publications = 0.0
        batch: list[_Msg] = []
        failures = 0
        while True:
            if not batch:
                # (timers with work left: do not wait for messages, tick again at once)
                batch = self._take(g.batch_max, 0.0 if self.pipeline and self.pipeline.tick_pending else 0.1)
            if not batch and self._stopping.is_set():
                break
            try:
                if batch:
                    self._handle(batch)
                    batch = []
                    if self._stopping.is_set():
                        break  # what is still queued was not acknowledged: the broker keeps it
                now = self.clock()
                if now >= next_tick:
                    next_tick = now + g.tick_interval_s
                    self._publish_alerts(self.pipeline.tick(now) if self.pipeline else [])
                    if self.pipeline is not None and self.pipeline.tick_pending:
                        next_tick = now  # more is due: the next tick right after the next batch
                    self._checkpoints(now)
                if now >= next_health:
                    next_health = now + g.health_interval_s
                    self._health(now)
                if time.monotonic() >= next_publications:
                    next_publications = time.monotonic() + PUBLICATIONS_EVERY_S
                    self._drain_publications()
            except Exception as e:
                self._rollback()
                if batch and not is_transient(e):
                    # Something in one message makes handling raise (a bug, a hostile payload):
                    # handle the batch message by message, so that message alone is parked.
                    log.error("batch of %d messages failed (%s: %s); handling them one at a time",
                              len(batch), type(e).__name__, str(e)[:200])
                    try:
                        batch = self._one_by_one(batch)
                        continue
                    except _Retry as r:  # the database or the disk: retry what was not handled yet
                        e, batch = r.cause, r.remaining
                # the database locked or the disk full: nothing was acknowledged; retry the batch
                failures += 1
                delay = min(30.0, 0.5 * 2 ** min(failures, 6))
                if failures == 1 or failures % 20 == 0:
                    log.error("%s failed (%s: %s, %d time(s) in a row); retrying in %.0f s, nothing was acknowledged",
                              f"batch of {len(batch)} messages" if batch else "timers", type(e).__name__,
                              str(e)[:200], failures, delay)
                if self._stopping.wait(delay):
                    break
            else:
                failures = 0

    def _take(self, batch_max: int, wait_s: float = 0.1) -> list[_Msg]:
        """Up to about `batch_max` waiting messages (whole hand-overs; waits up to wait_s for the first)."""
        out: list[_Msg] = []
        try:
            out += self._q.get(timeout=wait_s) if wait_s > 0 else self._q.get_nowait()
            while len(out) < batch_max:
                out += self._q.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            self._queued -= len(out)
        return out

    def _rollback(self) -> None:
        conn = self.pipeline.conn if self.pipeline else None
        if conn is not None and conn.in_transaction:
            conn.execute("ROLLBACK")

    def _one_by_one(self, batch: list[_Msg]) -> list[_Msg]:
        """Handle each message of a failed batch on its own; one that still fails for a reason of
        its own is parked (kept in the security log, acknowledged). Returns what is left when a
        transient error (the database, the disk) stops the round: the worker retries that."""
        for i, m in enumerate(batch):
            try:
                self._handle([m], record=False)
            except Exception as e:
                self._rollback()
                if is_transient(e):
                    raise _Retry(e, batch[i:]) from e
                try:
                    self._park(m, e)
                except Exception as e2:
                    self._rollback()
                    if is_transient(e2):
                        raise _Retry(e2, batch[i:]) from e2
                    log.exception("could not park a message from %s either; acknowledged, it is lost: %s",
                                  payloads.shown(m.topic), bytes(m.payload)[:64].hex())
                    if self.link is not None and m.qos:
                        self.link.ack(m.gen, [(m.mid, m.qos)])
        return []

    def _park(self, m: _Msg, e: BaseException) -> None:
        """Quarantine one message whose handling raises: its raw bytes (the first KEEP_BYTES)
        and the error go to the security log as `internal_error`, it is counted and acknowledged,
        and ingest goes on. Only a transient error (the database, the disk) stops this."""
        assert self.pipeline is not None
        p = self.pipeline
        raw = bytes(m.payload)
        detail = f"{type(e).__name__}: {str(e)[:300]} (parked: handling this message raised)"
        if len(raw) > KEEP_BYTES:
            detail += f" (first {KEEP_BYTES} of {len(raw)} bytes kept)"
        topic = m.topic[:KEEP_TOPIC]
        conn = p.conn
        conn.execute("BEGIN IMMEDIATE")
        row = store.log_security(conn, m.received_at, topic, INTERNAL_ERROR, detail, None, raw[:KEEP_BYTES])
        outbox.enqueue(conn, [lines.rejected(INTERNAL_ERROR, None, topic, m.received_at, row)])
        store.bump(conn, {f"rejected:{INTERNAL_ERROR}": 1})
        conn.execute("COMMIT")
        p.counts[f"rejected:{INTERNAL_ERROR}"] += 1
        self.snap.outcomes = dict(p.counts)
        self.snap.parked += 1
        log.error("parked a message from %s in the security log (row %d): %s", payloads.shown(m.topic), row, detail)
        if self.link is not None and m.qos:
            self.link.ack(m.gen, [(m.mid, m.qos)])

    def _read(self, m: _Msg) -> tuple[Uplink, Unreadable | None]:
        """The uplink a message holds, or why it holds none; never raises."""
        try:
            return payloads.to_uplink(m.topic, m.payload, m.received_at), None
        except payloads.PayloadError as e:
            problem = Unreadable(e.reason, e.detail)
        except Exception as e:  # noqa: BLE001 - a bug in reading must not stop the batch
            problem = Unreadable(INTERNAL_ERROR, f"reading the message raised {type(e).__name__}: {str(e)[:200]}")
        raw = bytes(m.payload)
        if len(raw) > KEEP_BYTES:
            problem = Unreadable(problem.reason, f"{problem.detail} (first {KEEP_BYTES} of {len(raw)} bytes kept)")
        return Uplink(m.received_at, m.topic[:KEEP_TOPIC], raw[:KEEP_BYTES]), problem

    def _status(self, m: _Msg, out: list[str]) -> Unreadable | None:
        """A bridge's (retained) status: base-station points, or why it was refused."""
        try:
            out += lines.base_stations(payloads.bridge_status(m.topic, m.payload), int(m.received_at * 1e9))
            return None
        except payloads.PayloadError as e:
            return Unreadable(e.reason, e.detail)

    def _handle(self, batch: list[_Msg], record: bool = True) -> None:
        assert self.pipeline is not None
        p = self.pipeline
        ups: list[tuple[Uplink, Unreadable | None]] = []
        base_lines: list[str] = []
        for m in batch:
            if payloads.is_bridge_status(m.topic):
                problem = self._status(m, base_lines)
                if problem is not None:  # counted and kept like any other unreadable message
                    ups.append((Uplink(m.received_at, m.topic[:KEEP_TOPIC], bytes(m.payload)[:KEEP_BYTES]), problem))
                continue
            ups.append(self._read(m))
        if record:  # (a batch handled again message by message was recorded the first time)
            self.recorder.write_lines(line for u, e in ups if (line := _recording_line(u, e)) is not None)
            self.recorder.flush()
        # one transaction for the whole batch (and the bridges' health points), committed here
        results = p.process_batch(ups, extra_lines=base_lines)
        committed = time.time()
        link = self.link
        if link is not None:
            by_gen: dict[int, list[tuple[int, int]]] = {}
            for m in batch:
                if m.qos:
                    by_gen.setdefault(m.gen, []).append((m.mid, m.qos))
            for gen, acks in by_gen.items():  # the link drops an older connection's ids
                link.ack(gen, acks)
            qos = self.cfg.gateway.ack_qos
            down = [(*payloads.downlink_message(d), qos, False) for r in results for d in r.downlinks]
            link.publish(down)
            self.snap.downlinks_published += len(down)
        self._publish_alerts([a for r in results for a in r.alerts])
        self.snap.outcomes = dict(p.counts)
        self.snap.batches += 1
        self.snap.last_commit_at = committed
        self.snap.ingest_lag_s = time.monotonic() - min(m.wall for m in batch)
        if self.drainer:
            self.drainer.wake.set()
        if self.on_commit:
            try:
                self.on_commit(results, committed)
            except Exception:
                log.exception("on_commit hook failed")

    def _publish_alerts(self, alerts: list[dict]) -> None:
        if alerts and self.on_alerts is not None:
            try:
                self.on_alerts(alerts)
            except Exception:
                log.exception("on_alerts hook failed")
        if not alerts or self.link is None:
            return
        self.link.publish([(topics.alert(str(a.get("kind") or "unknown")), json.dumps(a, default=str).encode(), 1, False)
                           for a in alerts] + _alert_states(alerts))
        self.snap.alerts_published += len(alerts)

    def _checkpoints(self, now: float, final: bool = False) -> None:
        if self.checkpointer is None or self.pipeline is None:
            return
        try:
            msgs = self.checkpointer.tick(self.pipeline.conn, now, final)
        except Exception:  # a checkpoint must never stop ingest; the next round tries again
            log.exception("ledger checkpoint failed")
            return
        if msgs and self.link is not None:
            self.link.publish(msgs)

    def _drain_publications(self) -> None:
        """Publish what other processes queued (operators' acks and resolves), oldest first, while
        the broker is connected; delete them once handed to the MQTT link and the webhooks."""
        if self.pipeline is None or self.link is None or not self.snap.mqtt_connected:
            return
        conn = self.pipeline.conn
        rows = store.pending_publications(conn)
        if not rows:
            return
        self._publish_alerts([body for _id, kind, body in rows if kind == "alert"])
        conn.execute("BEGIN IMMEDIATE")
        store.forget_publications(conn, rows[-1][0])
        conn.execute("COMMIT")

    def _health(self, now: float) -> None:
        assert self.pipeline is not None
        conn = self.pipeline.conn
        s = self.snapshot()
        if self.drainer is None:
            health.refresh_outbox(s, conn)
        conn.execute("BEGIN IMMEDIATE")
        pruned = store.prune_security_log(conn, self.cfg.gateway.security_log_keep)
        if pruned:
            log.warning("security log: dropped the %d oldest events (gateway.security_log_keep = %d)",
                        pruned, self.cfg.gateway.security_log_keep)
        health.save(conn, s)
        outbox.enqueue(conn, [lines.gateway_health(s.instance, s.accepted, sum(s.rejected.values()), s.duplicates,
                                                   s.outbox_depth, s.outbox_lag_s, now)])
        conn.execute("COMMIT")
        if self.link is not None:
            self.link.publish([(topics.GATEWAY_STATUS, json.dumps({
                "instance": s.instance, "at": now, "connected": s.mqtt_connected, "accepted": s.accepted,
                "duplicates": s.duplicates, "rejected": s.rejected, "outbox_depth": s.outbox_depth,
                "outbox_lag_s": round(s.outbox_lag_s, 1)}).encode(), 1, True)])


def _alert_states(alerts: list[dict]) -> list[tuple[str, bytes, int, bool]]:
    """Retained `segel/alert-state/<id>` messages: the latest JSON while an alert is open or
    acknowledged, an empty retained message (which deletes it) once it is resolved or withdrawn."""
    last = {a["id"]: a for a in alerts if a.get("id") and a.get("severity") != "info"}
    return [(topics.alert_state(i), json.dumps(a, default=str).encode() if a.get("state") in ("open", "acknowledged")
             else b"", 1, True) for i, a in last.items()]
