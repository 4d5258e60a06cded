"""The bridge's side of the serial framing (docs/protocol.md "Serial framing").

An independent implementation of what `firmware/segelfw/serialframe.py` does on the board: COBS
from the `cobs` package, CRC-16/GENIBUS from `binascii.crc_hqx`. Tests run both against each
other, the firmware side on real MicroPython too.
"""

from __future__ import annotations

import binascii
import struct
from dataclasses import dataclass

from cobs import cobs

MAX_PAYLOAD = 300
MAX_WIRE = 310

R_UPLINK, R_HEALTH, R_HELLO, R_TXDONE = 0x01, 0x02, 0x03, 0x04
R_ACK, R_DOWN, R_HELLO_REQ = 0x81, 0x82, 0x83
TX_STATUS = {0: "sent", 1: "late", 2: "no_window", 3: "radio_error", 4: "too_long"}
TEMP_NONE = -32768

_UPLINK = struct.Struct(">BHIIhhIBB")
_HEALTH = struct.Struct(">BHIIIIIIHhIB6s")
_HELLO = struct.Struct(">BHBIB6s")
_TXDONE = struct.Struct(">BHIB")
_ACK = struct.Struct(">BHI")
_DOWN = struct.Struct(">BI3si")


def crc16(data: bytes) -> int:
    """CRC-16/GENIBUS: poly 0x1021, init 0xFFFF, final XOR 0xFFFF (check value 0xD64E)."""
    return binascii.crc_hqx(data, 0xFFFF) ^ 0xFFFF


def encode(payload: bytes) -> bytes:
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"record payload of {len(payload)} bytes is over {MAX_PAYLOAD}")
    return b"\x00" + cobs.encode(payload + crc16(payload).to_bytes(2, "big")) + b"\x00"


@dataclass(frozen=True)
class Uplink:
    boot: int
    seq: int
    age_ms: int
    rssi: float
    snr: float
    freq_khz: int
    sf: int
    crc_ok: bool
    frame: bytes


@dataclass(frozen=True)
class Health:
    boot: int
    uptime_s: int
    rx_packets: int
    crc_errors: int
    tx_packets: int
    tx_late: int
    dropped: int
    queue: int
    temperature_c: float | None
    freq_khz: int
    sf: int
    base_id: str


@dataclass(frozen=True)
class Hello:
    boot: int
    firmware: str
    freq_khz: int
    sf: int
    base_id: str
    region: str


@dataclass(frozen=True)
class TxDone:
    boot: int
    dl_seq: int
    status: str


Record = Uplink | Health | Hello | TxDone


class RecordError(ValueError):
    pass


def parse(p: bytes) -> Record:
    """One checked payload from the base station -> a record. RecordError on a bad one."""
    if not p:
        raise RecordError("empty record")
    kind = p[0]
    try:
        if kind == R_UPLINK:
            _, boot, seq, age, rssi, snr4, freq, sf, flags = _UPLINK.unpack_from(p)
            frame = bytes(p[_UPLINK.size :])
            if not frame:
                raise RecordError("uplink record without a frame")
            return Uplink(boot, seq, age, float(rssi), snr4 / 4.0, freq, sf, bool(flags & 1), frame)
        if kind == R_HEALTH:
            (_, boot, up, rx, crc, tx, late, dropped, queue, t10, freq, sf, bid) = _HEALTH.unpack_from(p)
            return Health(boot, up, rx, crc, tx, late, dropped, queue, None if t10 == TEMP_NONE else t10 / 10.0, freq, sf,
                          bid.decode("ascii", "replace"))
        if kind == R_HELLO:
            _, boot, fw, freq, sf, bid = _HELLO.unpack_from(p)
            region = bytes(p[_HELLO.size :]).decode("ascii", "replace")
            return Hello(boot, f"{fw >> 4}.{fw & 15}", freq, sf, bid.decode("ascii", "replace"), region)
        if kind == R_TXDONE:
            _, boot, dl, st = _TXDONE.unpack_from(p)
            return TxDone(boot, dl, TX_STATUS.get(st, f"status {st}"))
    except struct.error as e:
        raise RecordError(f"record type 0x{kind:02x} too short ({len(p)} bytes)") from e
    raise RecordError(f"unknown record type 0x{kind:02x}")


def ack(boot: int, seq: int) -> bytes:
    return encode(_ACK.pack(R_ACK, boot, seq))


def down(dl_seq: int, device: str, frame: bytes, delay_ms: int = -1) -> bytes:
    """A downlink for the base station: delay_ms -1 = now, inside the device's receive window."""
    return encode(_DOWN.pack(R_DOWN, dl_seq & 0xFFFFFFFF, bytes.fromhex(device), delay_ms) + frame)


def hello_req() -> bytes:
    return encode(bytes([R_HELLO_REQ]))


class Decoder:
    """Stream decoder: feed bytes, get checked payloads; counts noise it dropped."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.crc_errors = 0
        self.framing_errors = 0
        self._skip = False

    def feed(self, data: bytes) -> list[bytes]:
        out: list[bytes] = []
        for chunk in _split_keep(data):
            if chunk == b"\x00":
                self._skip = False
                if self.buf:
                    body = bytes(self.buf)
                    self.buf.clear()
                    self._end(body, out)
                continue
            if self._skip:
                continue
            self.buf += chunk
            if len(self.buf) > MAX_WIRE:
                self.buf.clear()
                self._skip = True
                self.framing_errors += 1
        return out

    def _end(self, body: bytes, out: list[bytes]) -> None:
        try:
            raw = cobs.decode(body)
        except cobs.DecodeError:
            self.framing_errors += 1
            return
        if len(raw) < 3:
            self.framing_errors += 1
            return
        p = raw[:-2]
        if crc16(p) != int.from_bytes(raw[-2:], "big"):
            self.crc_errors += 1
            return
        out.append(p)


def _split_keep(data: bytes) -> list[bytes]:
    parts: list[bytes] = []
    start = 0
    while True:
        i = data.find(b"\x00", start)
        if i < 0:
            if start < len(data):
                parts.append(data[start:])
            return parts
        if i > start:
            parts.append(data[start:i])
        parts.append(b"\x00")
        start = i + 1
