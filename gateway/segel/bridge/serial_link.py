"""The bridge's serial side: reads a base station with pyserial, buffers each uplink durably,
then acknowledges it to the base station (which re-sends until acknowledged), and writes
downlinks. Survives the cable being pulled (reopens the port every `reopen_s`, asks the base
station to announce itself again) and garbage on the line (the framing drops it).
"""

from __future__ import annotations

import collections
import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import serial

from segel.bridge import wire
from segel.bridge.buffer import Buffer
from segel.edge import topics

log = logging.getLogger("segel.bridge.serial")


class SerialLink:
    def __init__(self, port: str, bridge_id: str, buffer: Buffer, baudrate: int = 115200, reopen_s: float = 0.5,
                 on_change: Callable[[], None] | None = None) -> None:
        self.port = port
        self.bridge_id = bridge_id
        self.buffer = buffer
        self.baudrate = baudrate
        self.reopen_s = reopen_s
        self.on_change = on_change or (lambda: None)
        self.connected = threading.Event()
        self.base: wire.Hello | None = None
        self.health: wire.Health | None = None
        self.uplinks = 0  # distinct uplink records buffered
        self.duplicates = 0  # records the base station wrote again (lost ack, reconnect)
        self.bad_records = 0
        self.opens = 0
        self.tx_status: collections.Counter[str] = collections.Counter()
        self._dec = wire.Decoder()
        self._seen: dict[int, collections.OrderedDict[int, None]] = {}
        self._down: queue.Queue[bytes] = queue.Queue()
        self._dl_seq = 0
        self._asked = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"bridge-serial-{bridge_id}", daemon=True)

    @property
    def noise(self) -> dict[str, int]:
        return {"crc_errors": self._dec.crc_errors, "framing_errors": self._dec.framing_errors, "bad_records": self.bad_records}

    def start(self) -> SerialLink:
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def downlink(self, d: dict[str, Any]) -> None:
        """Queue a downlink {"device", "frame", "tx_at"} for the base station."""
        tx_at = d.get("tx_at")
        delay = -1 if tx_at is None else max(-1, int((float(tx_at) - time.time()) * 1000))
        self._dl_seq += 1
        self._down.put(wire.down(self._dl_seq, d["device"], bytes.fromhex(d["frame"]), delay))

    # --- the port loop ---
    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                ser = serial.serial_for_url(self.port, baudrate=self.baudrate, timeout=0.05, write_timeout=2)
            except (serial.SerialException, OSError, ValueError) as e:
                log.debug("cannot open %s: %s", self.port, e)
                self._stop.wait(self.reopen_s)
                continue
            self.opens += 1
            self._dec = _carry(self._dec)
            self.connected.set()
            log.info("opened %s", self.port)
            try:
                ser.reset_input_buffer()
                ser.write(wire.hello_req())  # announce: the base station answers with HELLO, health, and its backlog
                self.on_change()
                self._pump(ser)
            except (serial.SerialException, OSError) as e:
                log.warning("serial port %s lost: %s; reopening", self.port, e)
            finally:
                self.connected.clear()
                try:
                    ser.close()
                except (serial.SerialException, OSError):
                    pass
                self.on_change()
            self._stop.wait(self.reopen_s)

    def _pump(self, ser: serial.Serial) -> None:
        while not self._stop.is_set():
            n = ser.in_waiting
            data = ser.read(n if n > 0 else 1)
            if data:
                self._records(ser, self._dec.feed(data))
            while True:
                try:
                    ser.write(self._down.get_nowait())
                except queue.Empty:
                    break

    def _records(self, ser: serial.Serial, payloads: list[bytes]) -> None:
        fresh: list[tuple[str, bytes]] = []
        acks: list[bytes] = []
        changed = False
        for p in payloads:
            try:
                r = wire.parse(p)
            except wire.RecordError as e:
                self.bad_records += 1
                log.warning("bad record from the base station: %s", e)
                continue
            if isinstance(r, wire.Uplink):
                if self.base is None or r.boot != self.base.boot:
                    if time.monotonic() - self._asked > 0.5:  # who are you? (the base re-sends the uplink later)
                        self._asked = time.monotonic()
                        ser.write(wire.hello_req())
                    continue
                seen = self._seen.setdefault(r.boot, collections.OrderedDict())
                acks.append(wire.ack(r.boot, r.seq))
                if r.seq in seen:
                    self.duplicates += 1
                    continue
                seen[r.seq] = None
                if len(seen) > 8192:
                    seen.popitem(last=False)
                fresh.append((topics.bridge_up(self.bridge_id), json.dumps(self._uplink_json(r)).encode()))
            elif isinstance(r, wire.Hello):
                if self.base is None or self.base.boot != r.boot:
                    log.info("base station %s (boot %04x, fw %s) on %s: %s kHz SF%d %s", r.base_id, r.boot, r.firmware,
                             self.port, r.freq_khz, r.sf, r.region)
                self.base = r
                changed = True
            elif isinstance(r, wire.Health):
                self.health = r
                changed = True
            elif isinstance(r, wire.TxDone):
                self.tx_status[r.status] += 1
                if r.status != "sent":
                    log.info("downlink %d not sent: %s", r.dl_seq, r.status)
        if fresh:
            self.buffer.put_many(fresh)  # durable before the base station may forget them
            self.uplinks += len(fresh)
        if acks:
            ser.write(b"".join(acks))
        if changed:
            self.on_change()

    def _uplink_json(self, r: wire.Uplink) -> dict[str, Any]:
        assert self.base is not None
        return {"frame": r.frame.hex(), "rssi": r.rssi, "snr": r.snr, "base_id": self.base.base_id, "freq_khz": r.freq_khz,
                "sf": r.sf, "rx_time": round(time.time() - r.age_ms / 1000.0, 3), "crc_ok": r.crc_ok, "bridge_id": self.bridge_id}

    def base_status(self) -> dict[str, Any] | None:
        """The base station's health in the shape of the `base_station` measurement."""
        h = self.health
        if h is None:
            return None
        return {"uptime_s": h.uptime_s, "rx_packets": h.rx_packets, "crc_errors": h.crc_errors, "tx_packets": h.tx_packets,
                "queue": h.queue, "temperature_c": h.temperature_c, "tx_late": h.tx_late, "dropped": h.dropped,
                "freq_khz": h.freq_khz, "sf": h.sf, "connected": self.connected.is_set()}


def _carry(old: wire.Decoder) -> wire.Decoder:
    """A fresh decoder for a new connection, keeping the error counts."""
    d = wire.Decoder()
    d.crc_errors, d.framing_errors = old.crc_errors, old.framing_errors
    return d
