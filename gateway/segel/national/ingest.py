"""The national ingester: regency messages off the bus, into PostgreSQL, receipts back.

A durable MQTT 3.1.1 subscriber (stable client id, clean session off, QoS 1, manual ack) on the
national message layer. Behind NATS's MQTT listener such a subscription is a JetStream consumer
of the `$MQTT_msgs` stream (replicated across the cluster), and a regency's QoS 1 publish is
stored there before its PUBACK (nats-server `mqttProcessPub`): the bus keeps what this ingester
has not yet acknowledged, through a node's death or the ingester's. paho reads in its own
thread; this one gathers messages for up to `flush_s` (or `batch_max`), applies them in one PostgreSQL
transaction (`store.apply_batch`), acknowledged only after the commit, and each regency whose
messages were in the batch gets a receipt with its watermark (QoS 0; a lost receipt is repaired
by the next one, or by the regency sending again).

Only one ingester at a time takes a given set of partitions: it holds a PostgreSQL advisory
lock named after its client id; a second one started with the same name waits as a standby.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as paho
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

from segel.edge import mqtt
from segel.national import codes, model
from segel.national import store as nstore
from segel.national.settings import NationalConfig
from segel.national.uplink import close_client
from segel.national.worker import Worker

log = logging.getLogger("segel.national.ingest")

LAG_WINDOW = 20_000  # the last this many applied items make the lag percentiles


@dataclass
class IngestStats:
    connected: bool = False
    node: str = ""
    connects: int = 0
    messages: int = 0
    items: int = 0
    duplicates: int = 0
    gaps: int = 0
    held: int = 0  # messages left unacknowledged after a gap (the bus sends them again)
    refused: int = 0
    batches: int = 0
    receipts: int = 0
    store_errors: int = 0
    last_error: str = ""
    standby: bool = False
    lags_ms: list[float] = field(default_factory=list)
    lag_window: int = LAG_WINDOW

    def figures(self) -> dict[str, Any]:
        lags = sorted(self.lags_ms)

        def pct(p: float) -> float | None:
            return round(lags[min(len(lags) - 1, int(p * len(lags)))], 1) if lags else None

        return {"messages": self.messages, "items": self.items, "duplicates": self.duplicates, "gaps": self.gaps,
                "refused": self.refused, "lag_p50_ms": pct(0.5), "lag_p99_ms": pct(0.99),
                "lag_max_ms": round(lags[-1], 1) if lags else None, "window_items": len(lags)}


class Ingester(Worker):
    thread_name = "segel-national-ingest"

    def __init__(self, cfg: NationalConfig, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.cfg = cfg
        self.i = cfg.ingest
        self.clock = clock
        self.stats = IngestStats()
        self.nodes = [mqtt.parse_url(u) for u in self.i.urls]
        self.client_id = f"segel-{self.i.name}"
        self._client: paho.Client | None = None
        # (connection generation, mid, qos, message); paho's network thread appends, this thread takes
        self._buf: list[tuple[int, int, int, nstore.Incoming]] = []
        self._lock = threading.Lock()
        self._gen = 0
        self._first_at = 0.0
        self._node_i = 0

    # ---- the loop ----------------------------------------------------------------------------

    def run(self) -> None:
        lock_conn = self._take_lock()
        if lock_conn is None:
            return
        conn = nstore.connect(self.cfg.store.dsn)
        nstore.ensure_schema(conn)
        backoff = 1.0
        last_status = 0.0
        log.info("national ingester %s: partitions %s, store %s", self.i.name, ", ".join(self.i.partitions),
                 _redact_dsn(self.cfg.store.dsn))
        try:
            while not self._stop.is_set():
                try:
                    conn, last_status, backoff = self._step(conn, last_status, backoff)
                except Exception as e:  # noqa: BLE001 - logged; unacknowledged messages come again
                    self.stats.last_error = f"{type(e).__name__}: {e}"
                    log.exception("national ingester %s: unexpected error; reconnecting in 2 s", self.i.name)
                    self._drop("unexpected error")
                    self._stop.wait(2.0)
        finally:
            if self._client is not None:
                close_client(self._client)
            conn.close()
            lock_conn.close()

    def _step(self, conn: psycopg.Connection, last_status: float, backoff: float) -> tuple[psycopg.Connection, float, float]:
        """One turn of the loop: connect if needed, read, apply what is due, save the figures."""
        if self._client is None:
            if not self._connect():
                self._stop.wait(backoff)
                return conn, last_status, min(backoff * 2, self.i.reconnect_max_s)
            backoff = 1.0
        cl = self._client
        # paho reads in its own thread (loop_start), so the socket is drained even while a long
        # transaction runs here: NATS closes a consumer that reads nothing for its write deadline
        self._stop.wait(0.01 if self._buf else 0.05)
        if not cl.is_connected():
            self._drop("connection lost")
            return conn, last_status, backoff
        mono = time.monotonic()
        if self._buf and (len(self._buf) >= self.i.batch_max or mono - self._first_at >= self.i.flush_s):
            conn = self._flush(conn)
        if mono - last_status >= self.i.status_interval_s:
            last_status = mono
            try:
                nstore.save_status(conn, self.i.name, self.clock(), self.stats.figures())
            except psycopg.Error as e:
                log.warning("cannot save the ingester's status: %s", e)
        return conn, last_status, backoff

    def _flush(self, conn: psycopg.Connection) -> psycopg.Connection:
        with self._lock:
            batch, self._buf = self._buf, []
        try:
            out = nstore.apply_batch(conn, [m for _, _, _, m in batch], self.clock)
        except psycopg.Error as e:
            # nothing acknowledged: the bus delivers these again; keep them and retry shortly
            self.stats.store_errors += 1
            self.stats.last_error = f"store: {e}"
            log.error("national store: %s; %d messages wait (not acknowledged)", str(e).strip(), len(batch))
            with self._lock:
                self._buf = batch + self._buf
                self._first_at = time.monotonic() + 1.0  # retry in about a second
            if conn.closed or conn.broken:
                try:
                    conn = nstore.connect(self.cfg.store.dsn)
                except psycopg.Error as e2:
                    log.error("cannot reconnect to the national store: %s", str(e2).strip())
            return conn
        cl = self._client
        if cl is not None:
            for n, (gen, mid, qos, _) in enumerate(batch):
                if qos and n not in out.held and gen == self._gen:  # an older connection's ids mean nothing now
                    cl.ack(mid, qos)
            for regency, applied in out.applied.items():
                cl.publish(codes.receipt_topic(regency), model.receipt(regency, applied), qos=0)
                self.stats.receipts += 1
        st = self.stats
        st.batches += 1
        st.messages += len(batch)
        st.items += out.items
        st.duplicates += out.duplicates
        st.gaps += out.gaps
        st.held += len(out.held)
        st.refused += out.refused
        st.lags_ms += [lag * 1000 for lag in out.lags_s]
        if len(st.lags_ms) > st.lag_window:
            del st.lags_ms[:len(st.lags_ms) - st.lag_window]
        return conn

    # ---- MQTT ----------------------------------------------------------------------------------

    def _connect(self) -> bool:
        b = self.nodes[self._node_i % len(self.nodes)]
        self._node_i += 1
        cl = paho.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=paho.MQTTv311,
                         clean_session=False, manual_ack=True, reconnect_on_failure=False)
        with self._lock:
            self._gen += 1
            self._buf = []  # message ids of an older connection mean nothing now: the bus sends them again
        cl.user_data_set(self._gen)
        cl.username_pw_set(self.i.username, self.i.password or b.password)
        if b.tls:
            cl.tls_set(ca_certs=self.i.ca_file or None, cert_reqs=ssl.CERT_NONE if self.i.tls_insecure else ssl.CERT_REQUIRED)
            if self.i.tls_insecure:
                cl.tls_insecure_set(True)
        cl.max_queued_messages_set(0)
        cl.suppress_exceptions = True
        cl.on_message = self._on_message
        result: dict[str, Any] = {}
        cl.on_connect = lambda c, u, f, rc, p: result.update(rc=rc, present=getattr(f, "session_present", None))
        cl.on_subscribe = lambda c, u, mid, rcs, p: result.update(granted=rcs)
        try:
            cl.connect(b.host, b.port, keepalive=self.i.keepalive_s)
            deadline = time.monotonic() + 10
            while "rc" not in result and time.monotonic() < deadline and not self._stop.is_set():
                if cl.loop(timeout=0.1) != paho.MQTT_ERR_SUCCESS:
                    break
            rc = result.get("rc")
            if rc is None or rc.is_failure:
                raise ConnectionError(str(rc) if rc is not None else "no answer")
            cl.subscribe([(p, 1) for p in self.i.partitions])
            while "granted" not in result and time.monotonic() < deadline:
                if cl.loop(timeout=0.1) != paho.MQTT_ERR_SUCCESS:
                    raise ConnectionError("lost while subscribing")
            bad = [p for p, g in zip(self.i.partitions, result.get("granted") or []) if g.is_failure]
            if "granted" not in result or bad:
                raise ConnectionError(f"subscription refused for {', '.join(bad) or 'all partitions'}")
        except (OSError, ConnectionError) as e:
            self.stats.last_error = f"{b.host}:{b.port}: {e}"
            log.warning("national node %s:%d: %s", b.host, b.port, str(e))
            close_client(cl, e)
            return False
        # loop() above made paho's wake-up socket pair, and loop_start() makes another: close the first
        for name in ("_sockpairR", "_sockpairW"):
            sock = getattr(cl, name, None)
            if sock is not None:
                sock.close()
                setattr(cl, name, None)
        cl.loop_start()
        self._client = cl
        st = self.stats
        st.connected, st.node = True, f"{b.host}:{b.port}"
        st.connects += 1
        log.warning("ingester %s connected to %s:%d (session present: %s)", self.i.name, b.host, b.port,
                    result.get("present"))
        return True

    def _drop(self, why: str) -> None:
        st = self.stats
        log.warning("ingester %s lost national node %s: %s; trying the next node", self.i.name, st.node, why)
        st.connected = False
        st.last_error = why
        cl, self._client = self._client, None
        with self._lock:
            self._gen += 1
            self._buf = []
        if cl is not None:
            close_client(cl)

    def _on_message(self, client: paho.Client, userdata: Any, msg: Any) -> None:
        """paho's thread: hand the message over, nothing else."""
        with self._lock:
            if userdata != self._gen:
                return  # a connection already given up
            if not self._buf:
                self._first_at = time.monotonic()
            self._buf.append((userdata, msg.mid, msg.qos, nstore.Incoming(msg.topic, bytes(msg.payload), self.clock())))

    # ---- one active ingester per name ----------------------------------------------------------

    def _take_lock(self) -> psycopg.Connection | None:
        """Hold the advisory lock of this ingester's name for as long as it runs; wait while
        another one holds it (a standby on another node)."""
        said = False
        while not self._stop.is_set():
            try:
                c = nstore.connect(self.cfg.store.dsn)
                got = c.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (f"segel-ingest/{self.client_id}",)).fetchone()[0]
                if got:
                    self.stats.standby = False
                    return c
                c.close()
                self.stats.standby = True
                if not said:
                    log.warning("another ingester named %s is running: waiting as its standby", self.i.name)
                    said = True
            except psycopg.Error as e:
                self.stats.last_error = f"store: {e}"
                log.error("cannot reach the national store (%s): %s", _redact_dsn(self.cfg.store.dsn), str(e).strip())
            self._stop.wait(2.0)
        return None


def _redact_dsn(dsn: str) -> str:
    from segel.config import _redact_url

    return _redact_url(dsn) if "://" in dsn else dsn
