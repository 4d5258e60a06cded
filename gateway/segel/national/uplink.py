"""The regency's uplink: store-and-forward of `national_outbox` to the national tier over MQTT.

One thread, its own SQLite connection, its own paho client driven with `loop()` (no extra
threads, no locks). It publishes items in `seq` order (QoS 1, many items per message) and
keeps at most `window` of them unconfirmed. The national tier confirms with receipts on
`segel/receipt/<code>`: "everything up to `applied` is stored". Confirmation comes from the
store, not from the broker's PUBACK, so an item the bus lost (a node killed before it replicated
a message) is simply sent again: when no receipt advanced for `resend_after_s`, and after every
reconnect, sending starts over at the first unconfirmed item (go-back-N). The national store
ignores what it has (`seq <= applied`) and refuses gaps, so every item is applied exactly once
and in order. A receipt lower than what was confirmed before (the national store was restored
from a backup) rewinds the uplink too, as far as the items are still kept (`keep_days`).

The confirmed position is saved in `national_state` (at most once a second), so after a crash
or `kill -9` the uplink starts again from there; items confirmed after that save are sent
again and ignored nationally. Nodes are tried in turn, the next one when a connection fails.
"""

from __future__ import annotations

import logging
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from segel import store
from segel.config import ConfigError, NationalSection
from segel.edge import mqtt
from segel.national import capture, codes, model
from segel.national.worker import Worker

log = logging.getLogger("segel.national.uplink")

SAVE_EVERY_S = 1.0
PRUNE_EVERY_S = 600.0


@dataclass
class UplinkStats:
    connected: bool = False
    node: str = ""
    connects: int = 0
    acked: int = 0
    last_seq: int = 0
    messages: int = 0
    items_sent: int = 0
    resends: int = 0
    rewinds: int = 0
    receipts: int = 0
    last_receipt_at: float = 0.0
    last_error: str = ""
    summaries: int = 0

    @property
    def backlog(self) -> int:
        return max(0, self.last_seq - self.acked)


@dataclass
class _Node:
    url: str
    broker: mqtt.Broker = field(repr=False)


def check(n: NationalSection, source: str = "") -> tuple[str, list[_Node]]:
    """The regency code and nodes of a [national] section; ConfigError names the bad key."""
    try:
        code = codes.parse(n.regency)
    except codes.CodeError as e:
        raise ConfigError("national.regency", str(e), source) from None
    if not n.urls:
        raise ConfigError("national.urls", "no national node given", source)
    nodes = []
    for u in n.urls:
        try:
            nodes.append(_Node(mqtt.redact(u), mqtt.parse_url(u)))
        except ValueError as e:
            raise ConfigError("national.urls", str(e), source) from None
    if n.window < 1 or n.batch_items < 1:
        raise ConfigError("national.window", "window and batch_items must be at least 1", source)
    return code, nodes


class Uplink(Worker):
    """`Uplink(db_path, section).start()` ... `.stop()`; `stats` for health and tests."""

    def __init__(self, db_path: str | Path, section: NationalSection, source: str = "",
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.db_path = Path(db_path)
        self.s = section
        self.code, self.nodes = check(section, source)
        self.topic = codes.up_topic(self.code)
        self.receipt_topic = codes.receipt_topic(self.code)
        self.username = section.username or codes.user(self.code)
        self.clock = clock
        self.stats = UplinkStats()
        self._client: paho.Client | None = None
        self._receipt: int | None = None
        self._node_i = 0

    thread_name = "segel-national-uplink"

    # ---- the thread ----------------------------------------------------------------------------

    def run(self) -> None:
        """Run the uplink; an unexpected error (a database locked too long, a full disk) is logged
        and the uplink starts again from what it saved: it never stops for good."""
        while not self._stop.is_set():
            try:
                self._session()
                return
            except Exception as e:  # noqa: BLE001 - logged; the gateway goes on, the uplink retries
                self.stats.last_error = f"{type(e).__name__}: {e}"
                self.stats.connected = False
                self._client = None
                log.exception("national uplink failed; starting again in 5 s (nothing recorded is lost)")
                self._stop.wait(5.0)

    def _session(self) -> None:
        conn = store.connect(self.db_path)
        capture.ensure_schema(conn)
        st = self.stats
        st.acked = int(capture.get_state(conn, "acked") or 0)
        saved = st.acked
        nxt = st.acked + 1
        last_progress = time.monotonic()
        last_save = last_prune = last_summary = last_warn = 0.0
        linger_since: float | None = None
        backoff = 1.0
        log.info("national uplink for %s (%s): items confirmed up to %d; nodes %s", self.code, self.s.name or "-",
                 st.acked, ", ".join(n.url for n in self.nodes))
        try:
            while not self._stop.is_set():
                if self._client is None:
                    if not self._connect():
                        self._stop.wait(backoff)
                        backoff = min(backoff * 2, max(1.0, self.s.reconnect_max_s))
                        continue
                    backoff = 1.0
                    nxt = st.acked + 1  # whatever was in flight on the old connection is sent again
                    last_progress = time.monotonic()
                cl = self._client
                rc = cl.loop(timeout=0.05)
                if rc != paho.MQTT_ERR_SUCCESS or not cl.is_connected():
                    self._drop(f"connection lost ({paho.error_string(rc)})")
                    continue
                mono = time.monotonic()
                if self._receipt is not None:
                    applied, self._receipt = self._receipt, None
                    if applied > st.acked:
                        st.acked = applied
                        last_progress = mono
                    elif applied < st.acked:
                        nxt = self._rewind(conn, applied)
                        last_progress = mono
                    nxt = max(nxt, st.acked + 1)
                st.last_seq = capture.last_seq(conn)
                if nxt > st.acked + 1 and mono - last_progress > self.s.resend_after_s:
                    log.warning("national tier confirmed nothing for %.0f s (items %d..%d unconfirmed); sending again "
                                "from %d", mono - last_progress, st.acked + 1, nxt - 1, st.acked + 1)
                    st.resends += 1
                    nxt = st.acked + 1
                    last_progress = mono
                while nxt - st.acked - 1 < self.s.window and not self._stop.is_set():
                    room = min(self.s.batch_items, self.s.window - (nxt - st.acked - 1))
                    batch = capture.pending(conn, nxt - 1, room)
                    if not batch:
                        linger_since = None
                        break
                    if len(batch) < room and nxt > st.acked + 1:
                        # a part-full message while others are on their way: wait up to linger_s
                        # for more items (fewer, fuller messages; the first one never waits)
                        linger_since = linger_since if linger_since is not None else mono
                        if mono - linger_since < self.s.linger_s:
                            break
                    linger_since = None
                    payload = model.encode(self.code, self.s.name, self.clock(), [t for _, t in batch])
                    info = cl.publish(self.topic, payload, qos=1)
                    if info.rc != paho.MQTT_ERR_SUCCESS:
                        self._drop(f"publish failed ({paho.error_string(info.rc)})")
                        break
                    if nxt == st.acked + 1:
                        last_progress = mono  # the resend clock runs from the first unconfirmed send
                    st.messages += 1
                    st.items_sent += len(batch)
                    nxt = batch[-1][0] + 1
                if st.acked != saved and mono - last_save >= SAVE_EVERY_S:
                    self._save(conn, st.acked)
                    saved, last_save = st.acked, mono
                if mono - last_summary >= self.s.summary_interval_s:
                    last_summary = mono
                    if capture.enqueue_summary(conn, self.code, self.s.name, self.clock()):
                        st.summaries += 1
                if mono - last_prune >= PRUNE_EVERY_S:
                    last_prune = mono
                    self._prune(conn, st.acked)
                if st.backlog > self.s.warn_backlog and mono - last_warn >= 60:
                    last_warn = mono
                    log.warning("%d items wait for the national tier (oldest unconfirmed: %d)", st.backlog, st.acked + 1)
        finally:
            try:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if st.acked != saved:
                    self._save(conn, st.acked)
                if self._client is not None:
                    close_client(self._client)
                    self._client = None
            finally:
                conn.close()

    def _save(self, conn: Any, acked: int) -> None:
        conn.execute("BEGIN IMMEDIATE")
        capture.set_state(conn, "acked", str(acked))
        conn.execute("COMMIT")

    def _prune(self, conn: Any, acked: int) -> None:
        conn.execute("BEGIN IMMEDIATE")
        n = capture.prune(conn, acked, self.clock() - self.s.keep_days * 86400)
        conn.execute("COMMIT")
        if n:
            log.info("forgot %d items the national tier confirmed more than %.1f days ago", n, self.s.keep_days)

    def _rewind(self, conn: Any, applied: int) -> int:
        """The national store knows less than it confirmed before: send again what it lacks."""
        st = self.stats
        first = conn.execute("SELECT MIN(seq) FROM national_outbox").fetchone()[0]
        if first is not None and first > applied + 1:
            log.error("the national tier now has items only up to %d, but items %d..%d are no longer kept here "
                      "(national.keep_days = %.1f): they cannot be sent again", applied, applied + 1, first - 1,
                      self.s.keep_days)
        else:
            log.warning("the national tier now has items only up to %d (was %d; restored from a backup?): "
                        "sending again from %d", applied, st.acked, applied + 1)
        st.rewinds += 1
        st.acked = applied
        return applied + 1

    # ---- MQTT --------------------------------------------------------------------------------

    def _connect(self) -> bool:
        node = self.nodes[self._node_i % len(self.nodes)]
        self._node_i += 1
        b = node.broker
        cl = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"segel-uplink-{codes.token(self.code)}",
                         protocol=paho.MQTTv311, clean_session=True)
        cl.username_pw_set(self.username, self.s.password or b.password)
        if b.tls:
            cl.tls_set(ca_certs=self.s.ca_file or None,
                       cert_reqs=ssl.CERT_NONE if self.s.tls_insecure else ssl.CERT_REQUIRED)
            if self.s.tls_insecure:
                cl.tls_insecure_set(True)
        cl.max_inflight_messages_set(50)
        cl.max_queued_messages_set(0)
        cl.suppress_exceptions = True
        cl.on_message = self._on_message
        result: dict[str, Any] = {}
        cl.on_connect = lambda c, u, f, rc, p: result.setdefault("rc", rc)
        try:
            cl.connect(b.host, b.port, keepalive=self.s.keepalive_s)
            deadline = time.monotonic() + 10
            while "rc" not in result and time.monotonic() < deadline and not self._stop.is_set():
                if cl.loop(timeout=0.1) != paho.MQTT_ERR_SUCCESS:
                    break
        except OSError as e:
            self.stats.last_error = f"{node.url}: {e}"
            log.warning("cannot reach national node %s: %s", node.url, str(e))
            close_client(cl, e)
            return False
        rc = result.get("rc")
        if rc is None or rc.is_failure:
            why = f"refused the connection as {self.username}: {rc}" if rc is not None else "did not answer within 10 s"
            self.stats.last_error = f"{node.url}: {why}"
            log.warning("national node %s %s", node.url, why)
            close_client(cl)
            return False
        cl.subscribe(self.receipt_topic, qos=0)
        self._client = cl
        st = self.stats
        st.connected, st.node = True, node.url
        st.connects += 1
        log.warning("connected to national node %s as %s; %d items unconfirmed", node.url, self.username,
                    st.backlog)
        return True

    def _drop(self, why: str) -> None:
        st = self.stats
        log.warning("national node %s: %s; trying the next node", st.node, why)
        st.connected = False
        st.last_error = why
        cl, self._client = self._client, None
        if cl is not None:
            close_client(cl)

    def _on_message(self, client: paho.Client, userdata: Any, msg: Any) -> None:
        try:
            regency, applied = model.read_receipt(msg.payload)
        except model.MessageError as e:
            log.warning("ignoring a message on %s: %s", msg.topic, e)
            return
        if regency != self.code:
            log.warning("ignoring a receipt for %s on %s", regency, msg.topic)
            return
        self.stats.receipts += 1
        self.stats.last_receipt_at = self.clock()
        self._receipt = applied  # receipts come in order from one ingester: the last one counts


def close_client(cl: paho.Client, error: BaseException | None = None) -> None:
    """Disconnect and close the socket, whatever state the connection is in. paho 2.x does not
    close the socket of a failed TLS handshake (it is only a local of its connect path, reachable
    from `error`'s traceback): closed here, not left to the garbage collector on every retry."""
    try:
        cl.disconnect()
        cl.loop_stop()  # the network thread, if loop_start() started one
    except Exception:  # noqa: BLE001 - best effort: the socket is closed below anyway
        pass
    socks = [cl.socket()]
    # paho 2.x keeps a socket pair to wake its loop; loop_stop() leaves it open
    for name in ("_sockpairR", "_sockpairW"):
        socks.append(getattr(cl, name, None))
        setattr(cl, name, None)
    tb = error.__traceback__ if error is not None else None
    while tb is not None:
        socks += [v for v in tb.tb_frame.f_locals.values() if isinstance(v, socket.socket)]
        tb = tb.tb_next
    for sock in socks:
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass


def start(cfg: Any, clock: Callable[[], float] = time.time) -> Uplink | None:
    """Install the capture triggers and start the uplink when `[national] urls` is set (call
    before the gateway starts, so nothing it commits escapes the outbox); None when it is not."""
    n = cfg.national
    if not n.urls:
        return None
    up = Uplink(cfg.path(cfg.gateway.db), n, cfg.source, clock)
    conn = store.connect(cfg.path(cfg.gateway.db))
    try:
        snap = capture.install(conn, n.position_interval_s)
    finally:
        conn.close()
    if snap:
        log.warning("national uplink configured: %s already in this database queued for the nation",
                    ", ".join(f"{v} {k}" for k, v in snap.items()))
    return up.start()
