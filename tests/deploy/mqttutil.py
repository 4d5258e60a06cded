"""A small synchronous wrapper over paho-mqtt for ACL tests: connect, subscribe, publish, collect."""

from __future__ import annotations

import queue
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


class Client:
    def __init__(self, port: int, username: str | None = None, password: str | None = None,
                 ca: Path | None = None, client_id: str = "", clean: bool = True, host: str = "127.0.0.1") -> None:
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean,
                             protocol=mqtt.MQTTv311, reconnect_on_failure=False)
        if username is not None:
            self.c.username_pw_set(username, password)
        if ca is not None:
            self.c.tls_set(ca_certs=str(ca))
        self.port = port
        self.host = host
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.connack = threading.Event()
        self.rc: int | None = None
        self.session_present = False
        self.subacks: dict[int, list[int]] = {}
        self._subacked = threading.Condition()
        self.c.on_connect = self._on_connect
        self.c.on_message = lambda c, u, m: self.messages.put((m.topic, bytes(m.payload)))
        self.c.on_subscribe = self._on_subscribe

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:  # noqa: ANN001
        self.rc = int(reason_code.value) if hasattr(reason_code, "value") else int(reason_code)
        self.session_present = bool(flags.session_present)
        self.connack.set()

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:  # noqa: ANN001
        with self._subacked:
            self.subacks[mid] = [int(rc.value) for rc in reason_codes]
            self._subacked.notify_all()

    def connect(self, timeout: float = 5.0) -> int:
        """Connects and returns the CONNACK code (0 = accepted)."""
        self.c.connect(self.host, self.port, keepalive=30)
        self.c.loop_start()
        if not self.connack.wait(timeout):
            raise TimeoutError("no CONNACK")
        assert self.rc is not None
        return self.rc

    def subscribe(self, topic: str, qos: int = 1, timeout: float = 5.0) -> list[int]:
        _, mid = self.c.subscribe(topic, qos)
        deadline = time.monotonic() + timeout
        with self._subacked:
            while mid not in self.subacks:
                if not self._subacked.wait(max(0.0, deadline - time.monotonic())):
                    raise TimeoutError(f"no SUBACK for {topic}")
            return self.subacks[mid]

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        info = self.c.publish(topic, payload, qos)
        info.wait_for_publish(5)

    def wait_for(self, payload: bytes, timeout: float = 5.0) -> list[tuple[str, bytes]]:
        """Collects messages until one with `payload` arrives; returns all collected (in order)."""
        got: list[tuple[str, bytes]] = []
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{payload!r} did not arrive; got {got}")
            try:
                m = self.messages.get(timeout=remaining)
            except queue.Empty:
                continue
            got.append(m)
            if m[1] == payload:
                return got

    def drain(self, wait: float = 0.3) -> list[tuple[str, bytes]]:
        time.sleep(wait)
        out = []
        while not self.messages.empty():
            out.append(self.messages.get_nowait())
        return out

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()
