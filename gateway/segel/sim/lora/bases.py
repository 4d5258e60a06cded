"""A simulated site: the firmware's base-station role on a radio fed by the air, a pty, and a real `segel bridge`."""

from __future__ import annotations

import os
import select
import threading
from collections import deque
from pathlib import Path
from typing import Any

from segel import paths
from segel.sim.lora.radio import LoraOptions, Site

paths.import_firmware()
from segelfw import basestation as fw_base  # noqa: E402
from segelfw import config as fw_config  # noqa: E402
from segelfw.hal import RxPacket  # noqa: E402


class PtyPort:
    """The base station's UART: the master side of a pseudo-terminal whose other side `segel
    bridge` opens with pyserial, as it would open /dev/ttyUSB0."""

    def __init__(self) -> None:
        import pty
        import tty

        m, s = pty.openpty()
        tty.setraw(s)
        os.set_blocking(m, False)
        self.fd: int | None = m
        self._slave: int | None = s
        self.path = os.ttyname(s)
        self._lock = threading.Lock()

    def write(self, data: bytes) -> int:
        fd = self.fd
        if fd is None:
            raise OSError("closed")
        with self._lock:
            view = memoryview(bytes(data))
            while view:
                select.select([], [fd], [], 1.0)
                n = os.write(fd, view)  # BlockingIOError (an OSError) when nobody reads: the base keeps the record
                view = view[n:]
        return len(data)

    def read(self) -> bytes | None:
        fd = self.fd
        if fd is None:
            return None
        try:
            return os.read(fd, 4096) or None
        except (BlockingIOError, OSError):
            return None

    def close(self) -> None:
        for fd in (self.fd, self._slave):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.fd = self._slave = None


class AirRadio:
    """micropython-lib lora's synchronous radio API for a base station, fed by the air: recv()
    returns what the air pushed (an RxPacket stamped with the base station's ticks on arrival),
    send() hands a downlink back to the air. The only simulated part of a base station."""

    def __init__(self, base_id: str, on_send: Any) -> None:
        self.base_id = base_id
        self.on_send = on_send
        self.queue: deque[RxPacket] = deque()
        self.received = 0
        self.sent = 0
        self._r, self._w = os.pipe()
        os.set_blocking(self._r, False)
        os.set_blocking(self._w, False)

    # --- what the air does
    def push(self, payload: bytes, rssi: float, snr: float) -> None:
        self.queue.append(RxPacket(payload, ticks_ms=fw_base.ticks_ms(), snr=int(round(snr * 4)), rssi=int(round(rssi))))
        self.received += 1
        try:
            os.write(self._w, b"\x01")
        except BlockingIOError:
            pass  # the base station is already woken

    @property
    def wake_fd(self) -> int:
        return self._r

    def drain(self) -> None:
        try:
            while os.read(self._r, 512):
                pass
        except BlockingIOError:
            pass

    # --- the lora driver's API, as segelfw.basestation uses it
    def configure(self, lora_cfg: dict) -> None:
        pass

    def recv(self, timeout_ms: int | None = None, rx_length: int = 0xFF, rx_packet: Any = None) -> RxPacket | None:
        try:
            return self.queue.popleft()
        except IndexError:
            return None

    def send(self, packet: bytes, tx_at_ms: int | None = None) -> int:
        self.sent += 1
        self.on_send(self.base_id, bytes(packet))
        return int(fw_base.ticks_ms())

    def standby(self) -> None:
        pass

    def sleep(self) -> None:
        pass

    def close(self) -> None:
        fds, self._r, self._w = (self._r, self._w), -1, -1
        for fd in fds:
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass


class SimBase:
    """One site: the firmware's base-station role on an AirRadio and a pty, and a real `segel
    bridge` on the other end of the pty publishing to the broker."""

    def __init__(self, site: Site, opts: LoraOptions, broker_url: str, buffer_dir: Path, on_downlink: Any,
                 boot_id: int) -> None:
        from segel.bridge import Bridge

        self.site = site
        self.radio = AirRadio(site.base_id, on_downlink)
        self.port = PtyPort()
        cfg = {"device_id": site.base_id, "region": opts.region, "sf": opts.sf, "channel": opts.channel_khz,
               "ack_window_ms": fw_config.DEFAULTS["ack_window_ms"], "preamble": fw_config.DEFAULTS["preamble"]}
        self.base = fw_base.BaseStation(self.radio, self.port, cfg, boot_id=boot_id)
        self.bridge = Bridge(site.bridge_id, broker_url, buffer_dir / f"{site.bridge_id}.sqlite", port=self.port.path,
                             reopen_s=0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"segel-base-{site.base_id}", daemon=True)

    def start(self) -> SimBase:
        self.bridge.start()
        self._thread.start()
        return self

    def _run(self) -> None:
        """The base station's main loop (segelfw.hw.basestation.main polls in a loop; here it sleeps until
        the air or the bridge has something, so 40 idle base stations cost nothing)."""
        fds = [self.port.fd, self.radio.wake_fd]
        while not self._stop.is_set():
            try:
                select.select(fds, [], [], 0.2)
            except (OSError, ValueError):
                return
            self.radio.drain()
            self.base.poll(rx_timeout_ms=0)
            while self.radio.queue:
                self.base.poll(rx_timeout_ms=0)

    def ready(self) -> bool:
        s = self.bridge.serial
        return self.bridge.publisher.connected.is_set() and s is not None and s.base is not None

    def idle(self) -> bool:
        """Nothing heard is still on its way to the broker."""
        return not self.radio.queue and not self.base.order and self.bridge.buffer.depth() == 0

    def stop(self) -> None:
        self.bridge.stop()
        self._stop.set()
        self._thread.join(5)
        self.port.close()
        self.radio.close()
