"""The gateway's MQTT connection, in its own process (default) or in the gateway's process.

`ThreadLink` is the durable paho consumer (stable client id, persistent session, manual ack,
automatic reconnect with backoff; see segel.edge.mqtt). Its callbacks run in paho's network thread,
never do slow work and never raise: each message becomes a tuple handed to `on_messages`, each
connection change an event handed to `on_event`.

`ProcessLink` runs a `ThreadLink` in a child process and talks to it over a pipe: batches of
messages come up, acknowledgements and publishes go down. Why: paho spends about 100 µs of CPU
on every received MQTT 5 message (packet parsing, a Properties object, the PUBACK) and as much
again on every publish; in the gateway's process that time is taken from the pipeline under the
same interpreter lock. In its own process it runs on the second core (docs/gateway.md,
*Throughput*). The child never decides anything: it acknowledges only what the gateway sends it
after the commit, and it exits as soon as the gateway's end of the pipe closes (even after a
`kill -9` of the gateway) without acknowledging anything more, so a crash still loses nothing.
If the child dies, the gateway starts a new one; the messages it had not acknowledged are
delivered again by the broker and recognised as duplicates.

Messages are `(gen, mid, qos, topic, payload, at)`: `gen` names the connection the message came
on (an ack for an older connection's message id is dropped: after a reconnect the broker
redelivers it under a new id), `at` is `time.monotonic()` at receipt.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import paho.mqtt.client as paho

from segel.config import MqttSection
from segel.edge import mqtt, payloads

log = logging.getLogger("segel.service.gateway")

Incoming = tuple[int, int, int, str, bytes, float]  # gen, mid, qos, topic, payload, monotonic time
Publish = tuple[str, bytes, int, bool]  # topic, payload, qos, retain
OnMessages = Callable[[list[Incoming]], None]
# ("connected", session_present) | ("refused", reason) | ("connect_failed", why) | ("disconnected", reason)
OnEvent = Callable[[str, str], None]


# The child hands messages over every 2 ms: one pickle for many, no thread wake-up per message.
SHIP_EVERY_S = 0.002


class ThreadLink:
    """paho in this process. `start(on_messages, on_event)`, `ack`, `publish`, `stop`."""

    def __init__(self, m: MqttSection, gen_base: int = 0) -> None:
        self.m = m
        self.gen = gen_base
        self._lock = threading.Lock()
        self._last_fail: str | None = None
        self._session_present = "?"
        self._stopping = False
        self.client: paho.Client | None = None
        self._on_messages: OnMessages = lambda msgs: None
        self._on_event: OnEvent = lambda ev, detail: None

    def start(self, on_messages: OnMessages, on_event: OnEvent) -> ThreadLink:
        self._on_messages, self._on_event = on_messages, on_event
        m = self.m
        broker = mqtt.parse_url(m.url)
        mqtt5 = m.protocol == "5"
        cl = mqtt.make_client(m.client_id, broker, mqtt5=mqtt5, username=m.username or None,
                              password=m.password or None, ca_file=m.ca_file or None, tls_insecure=m.tls_insecure,
                              reconnect_min_s=m.reconnect_min_s, reconnect_max_s=m.reconnect_max_s)
        cl.suppress_exceptions = True
        cl.on_connect = self._on_connect
        cl.on_subscribe = self._on_subscribe
        cl.on_disconnect = self._on_disconnect
        cl.on_message = self._on_message
        cl.on_connect_fail = self._on_connect_fail
        self.client = cl
        mqtt.connect_async(cl, broker, mqtt5=mqtt5, session_expiry_s=m.session_expiry_s, keepalive_s=m.keepalive_s)
        cl.loop_start()
        return self

    def ack(self, gen: int, msgs: Sequence[tuple[int, int]]) -> None:
        """Acknowledge (mid, qos) pairs received on connection `gen`; older connections' ids mean
        nothing now (the broker delivers those messages again)."""
        cl = self.client
        if cl is None or gen != self.gen:
            return
        for mid, qos in msgs:
            if qos:
                cl.ack(mid, qos)

    def publish(self, items: Sequence[Publish]) -> None:
        cl = self.client
        if cl is None:
            return
        for topic, payload, qos, retain in items:
            cl.publish(topic, payload, qos=qos, retain=retain)

    def stop(self) -> None:
        self._stopping = True
        if self.client is not None:
            self.client.disconnect()
            self.client.loop_stop()

    # paho's network thread: quick, never raise

    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        try:
            if reason.is_failure:
                self._on_event("refused", str(reason))
                return
            with self._lock:
                self.gen += 1
            self._last_fail = None
            self._session_present = str(getattr(flags, "session_present", "?"))
            client.subscribe(payloads.subscriptions())
        except Exception:
            log.exception("error in on_connect")

    def _on_subscribe(self, client: paho.Client, userdata: Any, mid: int, reasons: Any, props: Any) -> None:
        # "connected" once the broker confirmed the subscriptions: from then on nothing published
        # to an uplink topic can miss the gateway (on a brand-new session, before the SUBACK, it could)
        try:
            self._on_event("connected", self._session_present)
        except Exception:
            log.exception("error in on_subscribe")

    def _on_connect_fail(self, client: paho.Client, userdata: Any) -> None:
        try:  # paho calls this inside its `except OSError`, so the reason is at hand
            exc = sys.exc_info()[1]
            why = f"{type(exc).__name__}: {exc}" if exc else "unknown reason"
            if why != self._last_fail:  # each new reason once, not every retry
                self._last_fail = why
                self._on_event("connect_failed", why)
        except Exception:
            pass

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        try:
            if not self._stopping:
                self._on_event("disconnected", str(reason))
        except Exception:
            pass

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        try:
            self._on_messages([(self.gen, msg.mid, msg.qos, msg.topic, bytes(msg.payload), time.monotonic())])
        except Exception:
            log.exception("error in on_message")


# ---- the child process ---------------------------------------------------------------------


def _child(conn: Any, m: MqttSection, gen_base: int, log_level: int) -> None:
    """Runs in the child: a ThreadLink whose messages and events go up the pipe in batches."""
    # Ctrl-C reaches the whole process group and systemd signals the whole cgroup: the gateway
    # decides when to stop (it sends "stop" after its last commit), or its pipe closes
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(level=log_level, format="%(asctime)s %(levelname)s %(name)s[mqtt]: %(message)s")
    send_lock = threading.Lock()
    lock = threading.Lock()
    pending: list[Incoming] = []
    done = threading.Event()

    def up(item: tuple) -> bool:
        try:
            with send_lock:
                conn.send(item)
            return True
        except (OSError, EOFError):  # the gateway is gone
            done.set()
            return False

    def on_messages(msgs: list[Incoming]) -> None:  # paho's thread: append only, no wake-up per message
        with lock:
            pending.extend(msgs)

    def shipper() -> None:  # every SHIP_EVERY_S, whatever arrived goes up in one pickle
        while not done.wait(SHIP_EVERY_S):
            with lock:
                batch = pending[:]
                pending.clear()
            if batch and not up(("msgs", batch)):
                return

    link = ThreadLink(m, gen_base).start(on_messages, lambda ev, detail: up(("event", ev, detail)))
    t = threading.Thread(target=shipper, name="segel-mqtt-ship", daemon=True)
    t.start()
    try:
        while not done.is_set():
            try:
                cmd = conn.recv()
            except (EOFError, OSError):  # the gateway is gone (or was killed): acknowledge nothing more
                break
            if cmd[0] == "ack":
                link.ack(cmd[1], cmd[2])
            elif cmd[0] == "pub":
                link.publish(cmd[1])
            elif cmd[0] == "stop":
                break
    finally:
        done.set()
        link.stop()


class ProcessLink:
    """The same interface as ThreadLink, with paho in a child process (see the module docstring)."""

    def __init__(self, m: MqttSection, restart_delay_s: float = 1.0) -> None:
        self.m = m
        self.restart_delay_s = restart_delay_s
        self._ctx = mp.get_context("spawn")  # no fork of a threaded process
        self._conn: Any = None
        self._proc: Any = None
        self._send_lock = threading.Lock()
        self._stopping = threading.Event()
        self._reader: threading.Thread | None = None
        self._children = 0
        self._on_messages: OnMessages = lambda msgs: None
        self._on_event: OnEvent = lambda ev, detail: None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self, on_messages: OnMessages, on_event: OnEvent) -> ProcessLink:
        self._on_messages, self._on_event = on_messages, on_event
        self._spawn()
        self._reader = threading.Thread(target=self._read, name="segel-mqtt-link", daemon=True)
        self._reader.start()
        return self

    def _spawn(self) -> None:
        parent, child = self._ctx.Pipe(duplex=True)
        self._children += 1
        # connections of an earlier child must never match this one's: gen is unique per child
        gen_base = self._children * 1_000_000
        p = self._ctx.Process(target=_child, name="segel-mqtt",
                              args=(child, self.m, gen_base, logging.getLogger("segel").getEffectiveLevel()),
                              daemon=True)
        p.start()
        child.close()  # only the child holds its end: when the child dies, our recv() sees EOF
        self._conn, self._proc = parent, p

    def _read(self) -> None:
        while not self._stopping.is_set():
            try:
                item = self._conn.recv()
            except (EOFError, OSError):
                if self._stopping.is_set():
                    return
                code = self._proc.exitcode if self._proc is not None else None
                self._on_event("disconnected", f"the MQTT process ended (exit code {code})")
                log.error("the MQTT process ended (exit code %s); starting a new one in %.0f s (messages it had "
                          "not acknowledged come again from the broker)", code, self.restart_delay_s)
                if self._stopping.wait(self.restart_delay_s):
                    return
                self._spawn()
                continue
            try:
                if item[0] == "msgs":
                    self._on_messages(item[1])
                elif item[0] == "event":
                    self._on_event(item[1], item[2])
            except Exception:
                log.exception("error handling %s from the MQTT process", item[0])

    def _send(self, item: tuple) -> None:
        try:
            with self._send_lock:
                self._conn.send(item)
        except (OSError, EOFError):  # the child is gone: nothing acknowledged, the broker keeps it
            log.warning("could not reach the MQTT process (%s dropped; the broker delivers again what was "
                        "not acknowledged)", item[0])

    def ack(self, gen: int, msgs: Sequence[tuple[int, int]]) -> None:
        if msgs:
            self._send(("ack", gen, list(msgs)))

    def publish(self, items: Sequence[Publish]) -> None:
        if items:
            self._send(("pub", list(items)))

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        self._send(("stop",))
        if self._proc is not None:
            self._proc.join(timeout)
            if self._proc.is_alive():
                self._proc.kill()
                self._proc.join(5)
        try:
            self._conn.close()
        except OSError:
            pass
        if self._reader is not None:
            self._reader.join(5)


Link = ThreadLink | ProcessLink


def make(m: MqttSection, mode: str) -> Link:
    """`mode`: "process" (paho in a child process) or "thread" (in this process)."""
    if mode == "process":
        return ProcessLink(m)
    if mode == "thread":
        return ThreadLink(m)
    raise ValueError(f"unknown MQTT link mode {mode!r} (process or thread)")
