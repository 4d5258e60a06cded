"""Segel protocol v1, gateway side: key derivation, verify, decrypt, decode, and encode.

An implementation independent of the firmware's (`firmware/segelfw/protocol.py`): this one uses
the `cryptography` package for HKDF and AES-CTR. Both must reproduce the golden vectors in
`tests/protocol/vectors.json` byte for byte. Specification: `docs/protocol.md`.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import Union

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF, HKDFExpand

VERSION = 1
HEADER_LEN = 11
MAC_LEN = 4
COUNTER_MAX = 0xFFFFFF
DEVICE_ID_MAX = 0xFFFFFF
FLEET_SALT = b"segel/fleet/v1"


class FrameType(IntEnum):
    POSITION = 1
    SEAL = 2
    STATUS = 3
    APPLIED = 4
    ACK = 8
    CONFIG = 9

    @property
    def is_downlink(self) -> bool:
        return self.value >= 8


BODY_LEN = {
    FrameType.POSITION: 9,
    FrameType.SEAL: 9,
    FrameType.STATUS: 9,
    FrameType.APPLIED: 9,
    FrameType.ACK: 7,
    FrameType.CONFIG: 6,
}


class Flag(IntEnum):
    FIX = 0x01
    LOOP_OPEN = 0x02
    LID_OPEN = 0x04
    TAMPER = 0x08
    LOW_BATT = 0x10
    EXT_POWER = 0x20
    CASE_OPEN = 0x40


class SealEvent(IntEnum):
    LOOP_OPEN = 1
    LOOP_CLOSED = 2
    LID_OPEN = 3
    LID_CLOSED = 4
    CASE_OPEN = 5
    REARMED = 6
    ARMED = 7
    POWER_RESTORED = 8
    WAKE_UNEXPLAINED = 9  # a seal pin woke the tracker, every input read as armed (brief opening)


class ConfigFlag(IntEnum):
    REARM = 0x01
    STATUS_NOW = 0x02
    STORAGE = 0x04
    TRACKING = 0x08


class AppliedResult(IntEnum):
    REARMED = 0x01
    REARM_REFUSED = 0x02
    SF_REFUSED = 0x04
    INTERVAL_REFUSED = 0x08
    FIX_TIMEOUT_REFUSED = 0x10


MODES = ("tracking", "storage")  # the mode byte of an applied frame indexes this


class ResetCause(IntEnum):
    UNKNOWN = 0
    POWER_ON = 1
    HARD = 2
    WATCHDOG = 3
    DEEPSLEEP = 4
    SOFT = 5
    BROWNOUT = 6


class RejectReason:
    """Stable names under which rejected frames are counted and logged."""

    TRUNCATED = "truncated"
    BAD_VERSION = "bad_version"
    BAD_TYPE = "bad_type"
    BAD_LENGTH = "bad_length"
    UNKNOWN_DEVICE = "unknown_device"
    BAD_MAC = "bad_mac"
    REPLAY = "replay"
    MALFORMED = "malformed"

    ALL = (TRUNCATED, BAD_VERSION, BAD_TYPE, BAD_LENGTH, UNKNOWN_DEVICE, BAD_MAC, REPLAY, MALFORMED)


class FrameError(ValueError):
    """A frame that cannot be accepted; `reason` is one of RejectReason."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def derive_device_key(fleet_secret: bytes, device_id: int, key_epoch: int) -> bytes:
    """HKDF-SHA256 (RFC 5869) of the fleet secret, bound to device id and key epoch."""
    info = b"segel device key" + device_id.to_bytes(3, "big") + key_epoch.to_bytes(2, "big")
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=FLEET_SALT, info=info).derive(fleet_secret)


@dataclass(frozen=True)
class DeviceKeys:
    enc_key: bytes
    mac_key: bytes

    @classmethod
    def from_device_key(cls, device_key: bytes) -> DeviceKeys:
        if len(device_key) != 32:
            raise ValueError("device key must be 32 bytes")
        enc = HKDFExpand(algorithm=hashes.SHA256(), length=16, info=b"segel enc").derive(device_key)
        mac = HKDFExpand(algorithm=hashes.SHA256(), length=32, info=b"segel mac").derive(device_key)
        return cls(enc, mac)


@dataclass(frozen=True)
class Header:
    version: int
    type: int
    device_id: int
    counter: int
    time: int

    @property
    def is_downlink(self) -> bool:
        return self.type >= 8


# ---- typed bodies ------------------------------------------------------------------------------


def i24_to_lat(v: int) -> float:
    return v * 90 / 0x800000


def i24_to_lon(v: int) -> float:
    return v * 180 / 0x800000


def _div_round(num: int, den: int) -> int:
    if num >= 0:
        return (2 * num + den) // (2 * den)
    return -((-2 * num + den) // (2 * den))


def lat_e7_to_i24(lat_e7: int) -> int:
    return max(-0x7FFFFF, min(0x7FFFFF, _div_round(lat_e7 * 0x800000, 900_000_000)))


def lon_e7_to_i24(lon_e7: int) -> int:
    return max(-0x7FFFFF, min(0x7FFFFF, _div_round(lon_e7 * 0x800000, 1_800_000_000)))


def _get_i24(b: bytes) -> int:
    return int.from_bytes(b, "big", signed=True)


def _put_i24(v: int) -> bytes:
    return v.to_bytes(3, "big", signed=True)


@dataclass(frozen=True)
class Position:
    lat: float
    lon: float
    flags: int
    hdop: float
    speed_kmh: int

    @property
    def fix(self) -> bool:
        return bool(self.flags & Flag.FIX)


@dataclass(frozen=True)
class Seal:
    event: int
    seq: int
    flags: int
    lat: float
    lon: float

    @property
    def event_name(self) -> str:
        try:
            return SealEvent(self.event).name.lower()
        except ValueError:
            return f"unknown_{self.event}"


@dataclass(frozen=True)
class Status:
    battery_mv: int
    firmware: str
    queue_depth: int
    reset_cause: int
    flags: int
    uptime_min: int


@dataclass(frozen=True)
class Ack:
    counters: tuple[int, ...]


@dataclass(frozen=True)
class Config:
    report_interval_s: int
    fix_timeout_s: int
    flags: int
    sf: int


@dataclass(frozen=True)
class Applied:
    """The tracker's confirmation of a config downlink: the settings now in force."""

    down_counter: int
    report_interval_s: int
    fix_timeout_s: int
    mode: int
    sf: int
    result: int


Body = Union[Position, Seal, Status, Ack, Config, Applied]


@dataclass(frozen=True)
class Frame:
    header: Header
    body: Body

    @property
    def type(self) -> FrameType:
        return FrameType(self.header.type)


def decode_body(ftype: int, plain: bytes) -> Body:
    if ftype == FrameType.POSITION:
        return Position(
            lat=i24_to_lat(_get_i24(plain[0:3])),
            lon=i24_to_lon(_get_i24(plain[3:6])),
            flags=plain[6],
            hdop=plain[7] / 10,
            speed_kmh=plain[8],
        )
    if ftype == FrameType.SEAL:
        return Seal(
            event=plain[0],
            seq=plain[1],
            flags=plain[2],
            lat=i24_to_lat(_get_i24(plain[3:6])),
            lon=i24_to_lon(_get_i24(plain[6:9])),
        )
    if ftype == FrameType.STATUS:
        batt, fw, queue, reset, flags, uptime = struct.unpack(">HBHBBH", plain)
        return Status(batt, f"{fw >> 4}.{fw & 0x0F}", queue, reset, flags, uptime)
    if ftype == FrameType.APPLIED:
        interval, fix_timeout, mode_sf, result = struct.unpack(">HHBB", plain[3:9])
        return Applied(int.from_bytes(plain[0:3], "big"), interval, fix_timeout, mode_sf >> 4, mode_sf & 0x0F, result)
    if ftype == FrameType.ACK:
        base = int.from_bytes(plain[0:3], "big")
        bitmap = int.from_bytes(plain[3:7], "big")
        return Ack((base,) + tuple(base + 1 + i for i in range(32) if bitmap >> i & 1))
    if ftype == FrameType.CONFIG:
        return Config(*struct.unpack(">HHBB", plain))
    raise FrameError(RejectReason.BAD_TYPE, f"frame type {ftype}")


def encode_body(body: Body) -> tuple[FrameType, bytes]:
    """The inverse of decode_body; floats are quantised exactly as the firmware does."""
    if isinstance(body, Position):
        return FrameType.POSITION, (
            _put_i24(lat_e7_to_i24(round(body.lat * 1e7)))
            + _put_i24(lon_e7_to_i24(round(body.lon * 1e7)))
            + bytes((body.flags, min(255, _div_round(round(body.hdop * 100), 10)), min(255, body.speed_kmh)))
        )
    if isinstance(body, Seal):
        return FrameType.SEAL, (
            bytes((body.event, body.seq & 0xFF, body.flags))
            + _put_i24(lat_e7_to_i24(round(body.lat * 1e7)))
            + _put_i24(lon_e7_to_i24(round(body.lon * 1e7)))
        )
    if isinstance(body, Status):
        major, minor = (int(p) for p in body.firmware.split("."))
        return FrameType.STATUS, struct.pack(
            ">HBHBBH",
            min(body.battery_mv, 0xFFFF),
            (major << 4) | minor,
            min(body.queue_depth, 0xFFFF),
            body.reset_cause,
            body.flags,
            min(body.uptime_min, 0xFFFF),
        )
    if isinstance(body, Applied):
        return FrameType.APPLIED, body.down_counter.to_bytes(3, "big") + struct.pack(
            ">HHBB", body.report_interval_s, body.fix_timeout_s, (body.mode & 0x0F) << 4 | (body.sf & 0x0F), body.result)
    if isinstance(body, Ack):
        return FrameType.ACK, ack_body(body.counters)
    if isinstance(body, Config):
        return FrameType.CONFIG, struct.pack(">HHBB", body.report_interval_s, body.fix_timeout_s, body.flags, body.sf)
    raise TypeError(f"not a frame body: {body!r}")


def ack_body(counters: tuple[int, ...] | list[int]) -> bytes:
    """Base = lowest counter; bit i of the bitmap acknowledges base+1+i (up to 32 more)."""
    if not counters:
        raise ValueError("nothing to acknowledge")
    base = min(counters)
    bitmap = 0
    for c in counters:
        if 0 < c - base <= 32:
            bitmap |= 1 << (c - base - 1)
    return base.to_bytes(3, "big") + bitmap.to_bytes(4, "big")


def ack_groups(counters: list[int]) -> list[tuple[int, ...]]:
    """Split counters into groups that each fit one ACK frame."""
    out: list[tuple[int, ...]] = []
    cur: list[int] = []
    for c in sorted(set(counters)):
        if cur and c - cur[0] > 32:
            out.append(tuple(cur))
            cur = []
        cur.append(c)
    if cur:
        out.append(tuple(cur))
    return out


# ---- frame level --------------------------------------------------------------------------------


def parse_header(frame: bytes) -> Header:
    """The cleartext header, unauthenticated; raises FrameError for what no key can fix."""
    if len(frame) < HEADER_LEN + MAC_LEN:
        raise FrameError(RejectReason.TRUNCATED, f"{len(frame)} bytes, the shortest frame has {HEADER_LEN + MAC_LEN + 6}")
    ver, ftype = frame[0] >> 4, frame[0] & 0x0F
    if ver != VERSION:
        raise FrameError(RejectReason.BAD_VERSION, f"version {ver}, this gateway speaks version {VERSION}")
    if ftype not in BODY_LEN.keys():
        raise FrameError(RejectReason.BAD_TYPE, f"frame type {ftype} is not defined in version {VERSION}")
    want = HEADER_LEN + BODY_LEN[ftype] + MAC_LEN  # (an IntEnum key is found by its int)
    if len(frame) < want:
        raise FrameError(RejectReason.TRUNCATED, f"{len(frame)} bytes, a {FrameType(ftype).name} frame has {want}")
    if len(frame) > want:
        raise FrameError(RejectReason.BAD_LENGTH, f"{len(frame)} bytes, a {FrameType(ftype).name} frame has {want}")
    return Header(
        version=ver,
        type=ftype,
        device_id=int.from_bytes(frame[1:4], "big"),
        counter=int.from_bytes(frame[4:7], "big"),
        time=int.from_bytes(frame[7:11], "big"),
    )


def _nonce(ftype: int, device_id: int, counter: int) -> bytes:
    direction = 1 if ftype >= 8 else 0
    return b"SG" + bytes((direction,)) + device_id.to_bytes(3, "big") + counter.to_bytes(3, "big") + bytes(7)


def _ctr(keys: DeviceKeys, ftype: int, device_id: int, counter: int, data: bytes) -> bytes:
    # The 16-byte initial counter block is the 14-byte nonce followed by a 16-bit block index 0;
    # cryptography increments the whole block big-endian, which is the same for < 65536 blocks.
    enc = Cipher(algorithms.AES(keys.enc_key), modes.CTR(_nonce(ftype, device_id, counter))).encryptor()
    return enc.update(data) + enc.finalize()


def _mac(keys: DeviceKeys, signed: bytes) -> bytes:
    return hmac.new(keys.mac_key, signed, hashlib.sha256).digest()[:MAC_LEN]


def verify_and_decode(keys: DeviceKeys, frame: bytes) -> Frame:
    hdr = parse_header(frame)
    n = HEADER_LEN + BODY_LEN[FrameType(hdr.type)]
    if not hmac.compare_digest(_mac(keys, frame[:n]), frame[n:]):
        raise FrameError(RejectReason.BAD_MAC, f"MAC does not verify for device {hdr.device_id:06x}")
    plain = _ctr(keys, hdr.type, hdr.device_id, hdr.counter, frame[HEADER_LEN:n])
    return Frame(hdr, decode_body(hdr.type, plain))


def encode_frame(keys: DeviceKeys, ftype: int, device_id: int, counter: int, dev_time: int, plain: bytes) -> bytes:
    if not 0 <= device_id <= DEVICE_ID_MAX:
        raise ValueError(f"device id {device_id} out of range 0..{DEVICE_ID_MAX}")
    if not 0 <= counter <= COUNTER_MAX:
        raise ValueError(f"counter {counter} exhausted (max {COUNTER_MAX}): re-key the device with a new key epoch")
    if not 0 <= dev_time <= 0xFFFFFFFF:
        raise ValueError("device time out of range")
    if len(plain) != BODY_LEN[FrameType(ftype)]:
        raise ValueError("body length does not match frame type")
    hdr = bytes(((VERSION << 4) | ftype,)) + device_id.to_bytes(3, "big") + counter.to_bytes(3, "big") + dev_time.to_bytes(4, "big")
    signed = hdr + _ctr(keys, ftype, device_id, counter, plain)
    return signed + _mac(keys, signed)


def encode(keys: DeviceKeys, device_id: int, counter: int, dev_time: int, body: Body) -> bytes:
    ftype, plain = encode_body(body)
    return encode_frame(keys, ftype, device_id, counter, dev_time, plain)
