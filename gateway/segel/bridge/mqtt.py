"""The bridge's broker side: drains the durable buffer to the broker in order (QoS 1), keeps the
retained health message and last will, and hands downlinks to the radio side.

One paho client per connection: when the broker goes away the client is dropped, and the next
connection starts again from the oldest row still in the buffer. A row leaves the buffer only
after its PUBACK, so an outage delays uplinks and never loses one (a message whose PUBACK was lost
is published twice; QoS 1 is at-least-once and the gateway drops duplicates by device and counter).
"""

from __future__ import annotations

import collections
import json
import logging
import math
import ssl
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt

from segel.bridge.buffer import Buffer
from segel.edge import topics
from segel.edge.mqtt import parse_url
from segel.edge.payloads import strict_json

log = logging.getLogger("segel.bridge.mqtt")


class Publisher:
    def __init__(self, broker: str, bridge_id: str, buffer: Buffer, on_downlink: Callable[[dict[str, Any]], None],
                 window: int = 64, reconnect_s: float = 0.5, ca_file: str | None = None) -> None:
        """`broker`: mqtt://[user:pass@]host[:1883] or mqtts://…[:8883] (TLS, the broker's
        certificate verified against the system's CAs or `ca_file`)."""
        self.url = parse_url(broker)
        self.ca_file = ca_file
        self.bridge_id = bridge_id
        self.buffer = buffer
        self.on_downlink = on_downlink
        self.window = window
        self.reconnect_s = reconnect_s
        self.connected = threading.Event()
        self.published = 0
        self.connects = 0
        self.bad_downlinks = 0
        self._status: dict[str, Any] = {"bridge_id": bridge_id, "online": True}
        self._stop = threading.Event()
        self._acked: collections.deque[int] = collections.deque()
        self._wake = threading.Event()
        self._client: mqtt.Client | None = None
        self._last_fail: str | None = None
        self._thread = threading.Thread(target=self._run, name=f"bridge-mqtt-{bridge_id}", daemon=True)
        buffer.listeners.append(self._wake.set)

    def start(self) -> Publisher:
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)

    def set_status(self, status: dict[str, Any]) -> None:
        """Replace the health message (retained on the status topic); published now if connected."""
        self._status = dict(status, bridge_id=self.bridge_id, online=True)
        c = self._client
        if c is not None and self.connected.is_set():
            c.publish(topics.bridge_status(self.bridge_id), json.dumps(self._status), qos=1, retain=True)

    # --- the connection loop ---
    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._session()
            except Exception:  # noqa: BLE001 - log and reconnect, never die
                log.exception("broker session failed")
            self.connected.clear()
            self._stop.wait(self.reconnect_s)

    def _session(self) -> None:
        lost = threading.Event()
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"segel-bridge-{self.bridge_id}-{uuid.uuid4().hex[:8]}",
                             clean_session=True)
        if self.url.username:
            client.username_pw_set(self.url.username, self.url.password)
        if self.url.tls:
            client.tls_set(ca_certs=self.ca_file, cert_reqs=ssl.CERT_REQUIRED)
        client.will_set(topics.bridge_status(self.bridge_id), json.dumps({"bridge_id": self.bridge_id, "online": False}),
                        qos=1, retain=True)
        up = threading.Event()

        def on_connect(c: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any = None) -> None:
            if rc == 0 or getattr(rc, "value", 1) == 0:
                c.subscribe(topics.bridge_down(self.bridge_id), qos=1)
                up.set()
            else:
                log.warning("broker refused the connection: %s", rc)
                lost.set()

        def on_disconnect(c: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any = None) -> None:
            lost.set()
            self._wake.set()
            c.disconnect()  # stops paho's own reconnect loop: the next session starts clean

        def on_publish(_c: mqtt.Client, _u: Any, mid: int, _rc: Any = None, _p: Any = None) -> None:
            self._acked.append(mid)
            self._wake.set()

        client.max_inflight_messages_set(self.window)
        client.on_connect = on_connect
        client.on_disconnect = on_disconnect
        client.on_publish = on_publish
        client.on_message = self._message
        try:
            client.connect(self.url.host, self.url.port, keepalive=15)
        except OSError as e:  # (ssl.SSLError is an OSError: a certificate that does not verify)
            why = f"{type(e).__name__}: {e}"
            if why != self._last_fail:  # each new reason once at WARNING, not every retry
                log.warning("broker %s:%s not reachable: %s (retrying)", self.url.host, self.url.port, why)
            self._last_fail = why
            return
        client.loop_start()
        try:
            if not up.wait(10) or lost.is_set():
                return
            self._client = client
            self._last_fail = None
            self.connects += 1
            self.connected.set()
            log.info("connected to broker %s:%s", self.url.host, self.url.port)
            client.publish(topics.bridge_status(self.bridge_id), json.dumps(self._status), qos=1, retain=True)
            self._drain(client, lost)
        finally:
            self._client = None
            if self._stop.is_set() and self.connected.is_set():
                # a clean disconnect sends no last will: say so ourselves
                info = client.publish(topics.bridge_status(self.bridge_id),
                                      json.dumps({"bridge_id": self.bridge_id, "online": False}), qos=1, retain=True)
                try:
                    info.wait_for_publish(3)
                except (RuntimeError, ValueError):
                    pass
            self.connected.clear()
            client.disconnect()
            client.loop_stop()
            self._acked.clear()

    def _drain(self, client: mqtt.Client, lost: threading.Event) -> None:
        inflight: dict[int, int] = {}  # mid -> buffer row id
        last_id = 0
        try:
            while not lost.is_set() and not self._stop.is_set():
                self._wake.clear()
                self._settle(inflight)
                room = self.window - len(inflight)
                if room >= self.window // 2:  # refill in batches: fewer, larger SQLite transactions
                    for rid, topic, payload in self.buffer.peek(last_id, room):
                        info = client.publish(topic, payload, qos=1)
                        if info.rc != mqtt.MQTT_ERR_SUCCESS:
                            return  # connection gone; the row stays for the next session
                        inflight[info.mid] = rid
                        last_id = rid
                if len(inflight) > self.window // 2 and len(self._acked) < self.window // 4:
                    time.sleep(0.002)  # let PUBACKs gather
                elif not self._acked:
                    self._wake.wait(0.2)  # until a new row, a PUBACK or a disconnect
        finally:
            time.sleep(0.05)  # PUBACKs already read by paho's thread when the connection dropped
            self._settle(inflight)

    def _settle(self, inflight: dict[int, int]) -> None:
        """Delete the rows the broker has acknowledged."""
        done = []
        while self._acked:
            rid = inflight.pop(self._acked.popleft(), None)
            if rid is not None:
                done.append(rid)
        if done:
            self.buffer.delete(done)
            self.published += len(done)

    def _message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            self.on_downlink(parse_downlink(msg.payload))
        except (ValueError, TypeError) as e:
            self.bad_downlinks += 1
            log.warning("bad downlink on %s: %s", msg.topic, e)


def parse_downlink(payload: bytes | bytearray) -> dict[str, Any]:
    """A downlink message from the gateway, checked: {"device": 6 hex digits, "frame": hex,
    "tx_at": null or a finite unix time}. ValueError says what is wrong (anyone with the
    gateway's account could send anything here)."""
    d = strict_json(bytes(payload), 4096, "downlink")  # size, depth, duplicate keys, UTF-8, finite numbers
    if not isinstance(d.get("device"), str) or not isinstance(d.get("frame"), str):
        raise ValueError("needs {\"device\": \"000101\", \"frame\": \"<hex>\", \"tx_at\": null}")
    frame = bytes.fromhex(d["frame"])
    if not 0 < len(frame) <= 255:
        raise ValueError(f"frame of {len(frame)} bytes (a LoRa payload is 1..255)")
    if len(d["device"]) != 6:
        raise ValueError("device must be 6 hex digits")
    bytes.fromhex(d["device"])
    tx_at = d.get("tx_at")
    if tx_at is not None and (isinstance(tx_at, bool) or not isinstance(tx_at, (int, float))
                              or not math.isfinite(tx_at) or not 0 <= tx_at <= 4_102_444_800):
        raise ValueError(f"tx_at must be null or a unix time, got {str(tx_at)[:40]!r}")
    return d
