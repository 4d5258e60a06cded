"""The bridge: one radio side (a serial base station or a packet-forwarder UDP server), the
durable buffer and the broker publisher, and the health message that ties them together."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from serial.tools import list_ports as _lp

from segel.bridge.buffer import Buffer
from segel.bridge.mqtt import Publisher
from segel.bridge.serial_link import SerialLink
from segel.bridge.udp import PacketForwarderServer
from segel.edge.mqtt import parse_url

log = logging.getLogger("segel.bridge")


def list_ports() -> list[dict[str, str | None]]:
    """Candidate serial ports (pyserial's listing), USB ones first."""
    out = []
    for p in _lp.comports():
        out.append({"device": p.device, "description": p.description, "hwid": p.hwid,
                    "vid_pid": f"{p.vid:04x}:{p.pid:04x}" if p.vid is not None and p.pid is not None else None})
    return sorted(out, key=lambda d: (d["vid_pid"] is None, d["device"] or ""))


def parse_hostport(s: str) -> tuple[str, int]:
    host, sep, port = s.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected HOST:PORT like 0.0.0.0:1700, got {s!r}")
    return host or "0.0.0.0", int(port)


class Bridge:
    """Serial mode: Bridge(..., port="/dev/ttyUSB0"). UDP mode: Bridge(..., udp="0.0.0.0:1700")."""

    def __init__(self, bridge_id: str, broker: str, buffer_path: Path | str, port: str | None = None, udp: str | None = None,
                 baudrate: int = 115200, gateways: set[str] | None = None, status_interval_s: float = 30.0,
                 reopen_s: float = 0.5, window_ms: int = 2500, ca_file: str | None = None) -> None:
        if (port is None) == (udp is None):
            raise ValueError("give exactly one of a serial port or --udp HOST:PORT")
        self.bridge_id = bridge_id
        parse_url(broker)  # bad input fails before anything is opened
        hostport = parse_hostport(udp) if udp is not None else None
        self.buffer = Buffer(buffer_path)
        self.publisher = Publisher(broker, bridge_id, self.buffer, self._downlink, ca_file=ca_file)
        self.serial: SerialLink | None = None
        self.udp: PacketForwarderServer | None = None
        if port is not None:
            self.serial = SerialLink(port, bridge_id, self.buffer, baudrate, reopen_s, on_change=self.publish_status)
        else:
            assert hostport is not None
            self.udp = PacketForwarderServer(hostport[0], hostport[1], bridge_id, self.buffer, gateways, window_ms=window_ms,
                                             on_change=self.publish_status)
        self.status_interval_s = status_interval_s
        self.started = time.time()
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick, name=f"bridge-status-{bridge_id}", daemon=True)

    def start(self) -> Bridge:
        self.publisher.start()
        if self.serial:
            self.serial.start()
        if self.udp:
            self.udp.start()
        self._ticker.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self.serial:
            self.serial.stop()
        if self.udp:
            self.udp.stop()
        self.publisher.stop()
        self._ticker.join(5)
        self.buffer.close()

    def _downlink(self, d: dict[str, Any]) -> None:
        if self.serial:
            self.serial.downlink(d)
        elif self.udp:
            self.udp.downlink(d)

    def _tick(self) -> None:
        while not self._stop.wait(self.status_interval_s):
            self.publish_status()

    def status(self) -> dict[str, Any]:
        s: dict[str, Any] = {"time": round(time.time(), 3), "uptime_s": int(time.time() - self.started),
                             "buffer_depth": self.buffer.depth(), "published": self.publisher.published,
                             "broker_connects": self.publisher.connects, "bad_downlinks": self.publisher.bad_downlinks}
        bases: dict[str, Any] = {}
        if self.serial:
            sl = self.serial
            s.update(mode="serial", port=sl.port, serial_connected=sl.connected.is_set(), port_opens=sl.opens,
                     uplinks=sl.uplinks, duplicates=sl.duplicates, tx_status=dict(sl.tx_status), **sl.noise)
            b = sl.base_status()
            if sl.base is not None:
                bases[sl.base.base_id] = dict(b or {}, firmware=sl.base.firmware, region=sl.base.region)
        if self.udp:
            s.update(mode="udp", listen=f"{self.udp.address[0]}:{self.udp.address[1]}", counters=dict(self.udp.counters))
            bases.update(self.udp.base_status())
        s["bases"] = bases
        return s

    def publish_status(self) -> None:
        try:
            self.publisher.set_status(self.status())
        except Exception:  # noqa: BLE001 - health must never stop the bridge
            log.exception("status")
