"""Test harness: the firmware's base-station logic on one end of a pseudo-terminal pair, so the
bridge opens a real tty with real pyserial. Unplugging closes the pair (the bridge's reads fail as
with a pulled USB cable); plugging opens a new pair behind the same path (a symlink)."""

from __future__ import annotations

import json
import os
import pty
import random
import select
import threading
import time
import tty
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from segel.radio import channel as lorasim
from segelfw.basestation import BaseStation

BASE_CFG = {"device_id": "b00001", "region": "AS923-2", "sf": 10, "channel": 921400, "ack_window_ms": 2500, "preamble": 8}


class MasterPort:
    """The base station's UART: the pty master, optionally noisy (bit flips both ways)."""

    def __init__(self, noise: float = 0.0, seed: int = 3) -> None:
        self.fd: int | None = None
        self.noise = noise
        self.rng = random.Random(seed)
        self.flipped = 0
        self._lock = threading.Lock()

    def _garble(self, data: bytes) -> bytes:
        if not self.noise or self.rng.random() >= self.noise:
            return data
        b = bytearray(data)
        i = self.rng.randrange(len(b))
        b[i] ^= 1 << self.rng.randrange(8)
        self.flipped += 1
        return bytes(b)

    def write(self, data: bytes) -> int:
        fd = self.fd
        if fd is None:
            raise OSError("unplugged")
        data = self._garble(bytes(data))
        with self._lock:
            view = memoryview(data)
            while view:
                select.select([], [fd], [], 1.0)
                n = os.write(fd, view)
                view = view[n:]
        return len(data)

    def inject(self, data: bytes) -> None:
        """Garbage on the line, between whole writes."""
        self.write_raw(data)

    def write_raw(self, data: bytes) -> None:
        fd = self.fd
        if fd is not None:
            with self._lock:
                os.write(fd, data)

    def read(self) -> bytes | None:
        fd = self.fd
        if fd is None:
            return None
        try:
            r, _, _ = select.select([fd], [], [], 0)
            if not r:
                return None
            return self._garble(os.read(fd, 4096))
        except OSError:
            return None


class PtyBase:
    """A base station (segelfw.basestation on a ReplayRadio) behind a pty at `path`."""

    def __init__(self, tmp: Path, name: str = "ttyBASE", cfg: dict[str, Any] | None = None, noise: float = 0.0,
                 boot_id: int = 0x1234) -> None:
        self.path = tmp / name
        self.port = MasterPort(noise)
        self.radio = lorasim.ReplayRadio()
        self._slave: int | None = None
        self.plug()
        self.base = BaseStation(self.radio, self.port, dict(BASE_CFG, **(cfg or {})), boot_id=boot_id, health_interval_ms=500)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.base.poll(rx_timeout_ms=2)

    def plug(self) -> None:
        m, s = pty.openpty()
        tty.setraw(s)
        os.set_blocking(m, False)
        self._slave = s
        if self.path.is_symlink() or self.path.exists():
            self.path.unlink()
        self.path.symlink_to(os.ttyname(s))
        self.port.fd = m

    def unplug(self) -> None:
        fd, self.port.fd = self.port.fd, None
        if self.path.is_symlink():
            self.path.unlink()
        with self.port._lock:
            if fd is not None:
                os.close(fd)
        if self._slave is not None:
            os.close(self._slave)
            self._slave = None

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.unplug()


class Collector:
    """A subscriber on a persistent session (survives a broker restart)."""

    def __init__(self, port: int, topic: str = "segel/bridge/+/up", client_id: str = "test-collector") -> None:
        self.messages: list[tuple[str, dict[str, Any]]] = []
        self.dup_flags: list[bool] = []
        self.raw: list[tuple[str, bytes, bool]] = []
        self.redelivered = 0  # DUP flag set: the broker delivering again what it sent before a restart
        self.cond = threading.Condition()
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
        c.on_connect = lambda cl, *_: cl.subscribe([(topic, 1), ("segel/bridge/+/status", 1)])
        c.on_message = self._on
        c.reconnect_delay_set(0.1, 0.5)
        c.connect("127.0.0.1", port)
        c.loop_start()
        self.client = c

    def _on(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self.cond:
            self.raw.append((msg.topic, msg.payload, msg.retain))
            self.redelivered += bool(msg.dup)
            if msg.topic.endswith("/up"):
                self.messages.append((msg.topic, json.loads(msg.payload)))
                self.dup_flags.append(bool(msg.dup))
            self.cond.notify_all()

    def frames(self) -> list[str]:
        with self.cond:
            return [m["frame"] for _, m in self.messages]

    def first_deliveries(self) -> list[str]:
        """Frames as published: without the broker's own re-deliveries (DUP flag) after a restart."""
        with self.cond:
            return [m["frame"] for (_, m), dup in zip(self.messages, self.dup_flags, strict=True) if not dup]

    def statuses(self) -> list[dict[str, Any]]:
        with self.cond:
            return [json.loads(p) for t, p, _ in self.raw if t.endswith("/status")]

    def wait_frames(self, n: int, timeout: float = 30.0) -> list[str]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while len({m["frame"] for _, m in self.messages}) < n and time.monotonic() < deadline:
                self.cond.wait(0.2)
        return self.frames()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def frames(n: int, seed: int = 0, device_base: int = 0x101) -> list[bytes]:
    """Distinct 24-byte uplink-shaped frames (version 1, type position, device, counter)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        dev = device_base + i % 7
        out.append(bytes([0x11]) + dev.to_bytes(3, "big") + (i + 1).to_bytes(3, "big") + rng.randbytes(17))
    return out


def wait_until(cond: Any, timeout: float = 20.0, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(step)
    return bool(cond())
