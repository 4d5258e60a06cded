# Segel protocol v1: frame encoder (uplink) and downlink decoder for the tracker.
# docs/protocol.md is the specification; tests/protocol/vectors.json the golden vectors.
# Pure logic: no pins, runs on CPython and MicroPython.
import struct

from segelfw import crypto

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


VERSION = const(1)
HEADER_LEN = const(11)
MAC_LEN = const(4)
COUNTER_MAX = const(0xFFFFFF)
DEVICE_ID_MAX = const(0xFFFFFF)

# frame types: 0..7 uplink, 8..15 downlink
T_POSITION = const(1)
T_SEAL = const(2)
T_STATUS = const(3)
T_APPLIED = const(4)  # the settings in force after a config downlink (docs/protocol.md)
T_ACK = const(8)
T_CONFIG = const(9)

# flag bits shared by position, seal and status bodies
F_FIX = const(0x01)
F_LOOP_OPEN = const(0x02)
F_LID_OPEN = const(0x04)
F_TAMPER = const(0x08)
F_LOW_BATT = const(0x10)
F_EXT_POWER = const(0x20)
F_CASE_OPEN = const(0x40)

# seal event codes
E_LOOP_OPEN = const(1)
E_LOOP_CLOSED = const(2)
E_LID_OPEN = const(3)
E_LID_CLOSED = const(4)
E_CASE_OPEN = const(5)
E_REARMED = const(6)
E_ARMED = const(7)
E_POWER_RESTORED = const(8)
E_WAKE_UNEXPLAINED = const(9)  # a seal pin woke the chip, but every input reads as it was armed

# config downlink flags (docs/protocol.md "config")
CFG_REARM = const(0x01)
CFG_STATUS_NOW = const(0x02)
CFG_STORAGE = const(0x04)  # storage mode: a status every storage_interval_s, no routine fixes
CFG_TRACKING = const(0x08)  # back to tracking (normal reports)

# modes in applied frames
MODE_TRACKING = const(0)
MODE_STORAGE = const(1)

# applied-frame result bits: what the tracker did with the config
A_REARMED = const(0x01)
A_REARM_REFUSED = const(0x02)  # an input was open, or there was nothing to clear
A_SF_REFUSED = const(0x04)  # over the dwell limit
A_INTERVAL_REFUSED = const(0x08)
A_FIX_TIMEOUT_REFUSED = const(0x10)

# reset causes in status frames
R_UNKNOWN = const(0)
R_POWER_ON = const(1)
R_HARD = const(2)
R_WATCHDOG = const(3)
R_DEEPSLEEP = const(4)
R_SOFT = const(5)
R_BROWNOUT = const(6)

BODY_LEN = {T_POSITION: 9, T_SEAL: 9, T_STATUS: 9, T_APPLIED: 9, T_ACK: 7, T_CONFIG: 6}

_LAT_SCALE = const(900000000)  # 90 degrees in 1e-7 degree units
_LON_SCALE = const(1800000000)
_I24 = const(0x800000)


class ProtocolError(ValueError):
    pass


class Keys:
    """Per-device keys. device_key is what provisioning puts in the tracker's config."""

    def __init__(self, device_key, block=None, subkeys=None):
        if len(device_key) != 32:
            raise ProtocolError("device key must be 32 bytes")
        if subkeys is not None:  # (enc_key, mac_key) derived earlier, e.g. cached across deep sleep
            self.enc_key, self.mac_key = subkeys
        else:
            self.enc_key = crypto.hkdf_expand(device_key, b"segel enc", 16)
            self.mac_key = crypto.hkdf_expand(device_key, b"segel mac", 32)
        self.block = block if block is not None else crypto.ecb_block(self.enc_key)


def derive_device_key(fleet_secret, device_id, key_epoch):
    # HKDF-SHA256 (RFC 5869); the tracker never holds the fleet secret, only this result.
    prk = crypto.hkdf_extract(b"segel/fleet/v1", fleet_secret)
    info = b"segel device key" + _u24(device_id) + struct.pack(">H", key_epoch)
    return crypto.hkdf_expand(prk, info, 32)


def _u24(v):
    return bytes(((v >> 16) & 0xFF, (v >> 8) & 0xFF, v & 0xFF))


def _i24(v):
    return _u24(v & 0xFFFFFF)


def _div_round(num, den):
    # integer division rounding half away from zero (identical on every Python)
    if num >= 0:
        return (2 * num + den) // (2 * den)
    return -((-2 * num + den) // (2 * den))


def lat_to_i24(lat_e7):
    v = _div_round(lat_e7 * _I24, _LAT_SCALE)
    return max(-_I24 + 1, min(_I24 - 1, v))


def lon_to_i24(lon_e7):
    v = _div_round(lon_e7 * _I24, _LON_SCALE)
    return max(-_I24 + 1, min(_I24 - 1, v))


def _clamp8(v):
    return 0 if v < 0 else (255 if v > 255 else v)


def position_body(lat_e7, lon_e7, flags, hdop_x10, speed_kmh):
    return _i24(lat_to_i24(lat_e7)) + _i24(lon_to_i24(lon_e7)) + bytes(
        (flags & 0xFF, _clamp8(hdop_x10), _clamp8(speed_kmh))
    )


def seal_body(event, seq, flags, lat_e7, lon_e7):
    return bytes((event & 0xFF, seq & 0xFF, flags & 0xFF)) + _i24(lat_to_i24(lat_e7)) + _i24(lon_to_i24(lon_e7))


def status_body(batt_mv, fw, queue_depth, reset_cause, flags, uptime_min):
    return struct.pack(
        ">HBHBBH",
        min(batt_mv, 0xFFFF),
        fw & 0xFF,
        min(queue_depth, 0xFFFF),
        reset_cause & 0xFF,
        flags & 0xFF,
        min(uptime_min, 0xFFFF),
    )


def header(ftype, device_id, counter, dev_time):
    if not 0 <= device_id <= DEVICE_ID_MAX:
        raise ProtocolError("device id out of range")
    if not 0 <= counter <= COUNTER_MAX:
        raise ProtocolError("counter exhausted: re-key the tracker (new key epoch)")
    if not 0 <= dev_time <= 0xFFFFFFFF:
        raise ProtocolError("device time out of range")
    return bytes(((VERSION << 4) | ftype,)) + _u24(device_id) + _u24(counter) + struct.pack(">I", dev_time)


def nonce(ftype, device_id, counter):
    direction = 1 if ftype >= 8 else 0
    return b"SG" + bytes((direction,)) + _u24(device_id) + _u24(counter) + bytes(5)


def encode(keys, ftype, device_id, counter, dev_time, body):
    if BODY_LEN.get(ftype) != len(body):
        raise ProtocolError("body length does not match frame type")
    hdr = header(ftype, device_id, counter, dev_time)
    ct = crypto.ctr_xor(keys.block, nonce(ftype, device_id, counter), body)
    mac = crypto.hmac_sha256(keys.mac_key, hdr + ct)[:MAC_LEN]
    return hdr + ct + mac


def parse_header(frame):
    """Cleartext header: (version, type, device_id, counter, time). No authentication."""
    if len(frame) < HEADER_LEN + MAC_LEN:
        raise ProtocolError("truncated frame")
    b0 = frame[0]
    dev = (frame[1] << 16) | (frame[2] << 8) | frame[3]
    ctr = (frame[4] << 16) | (frame[5] << 8) | frame[6]
    (t,) = struct.unpack(">I", frame[7:11])
    return b0 >> 4, b0 & 0x0F, dev, ctr, t


def _mac_ok(a, b):
    # constant time over the (fixed) MAC length
    d = 0
    for x, y in zip(a, b):
        d |= x ^ y
    return d == 0 and len(a) == len(b)


def decode(keys, frame):
    """Verify and decrypt any frame; returns (type, device_id, counter, time, body)."""
    ver, ftype, dev, ctr, t = parse_header(frame)
    if ver != VERSION:
        raise ProtocolError("unknown version")
    n = BODY_LEN.get(ftype)
    if n is None:
        raise ProtocolError("unknown frame type")
    if len(frame) != HEADER_LEN + n + MAC_LEN:
        raise ProtocolError("wrong length for frame type")
    ct = frame[HEADER_LEN : HEADER_LEN + n]
    mac = crypto.hmac_sha256(keys.mac_key, frame[: HEADER_LEN + n])[:MAC_LEN]
    if not _mac_ok(mac, frame[HEADER_LEN + n :]):
        raise ProtocolError("bad MAC")
    return ftype, dev, ctr, t, crypto.ctr_xor(keys.block, nonce(ftype, dev, ctr), ct)


def applied_body(down_counter, interval_s, fix_timeout_s, mode, sf, result):
    """The settings in force after config downlink `down_counter`, and what was refused or done."""
    return _u24(down_counter) + struct.pack(">HHBB", min(interval_s, 0xFFFF), min(fix_timeout_s, 0xFFFF),
                                            ((mode & 0x0F) << 4) | (sf & 0x0F), result & 0xFF)


def parse_applied(body):
    down = (body[0] << 16) | (body[1] << 8) | body[2]
    interval_s, fix_timeout_s, ms, result = struct.unpack(">HHBB", body[3:9])
    return {"down": down, "report_interval_s": interval_s, "fix_timeout_s": fix_timeout_s, "mode": ms >> 4,
            "sf": ms & 0x0F, "result": result}


def ack_body(base, bitmap):
    return _u24(base) + struct.pack(">I", bitmap)


def parse_ack(body):
    """-> list of acknowledged counters (base, and base+1+i for each set bit i)."""
    base = (body[0] << 16) | (body[1] << 8) | body[2]
    (bm,) = struct.unpack(">I", body[3:7])
    out = [base]
    for i in range(32):
        if bm & (1 << i):
            out.append(base + 1 + i)
    return out


def config_body(interval_s, fix_timeout_s, flags, sf):
    return struct.pack(">HHBB", interval_s, fix_timeout_s, flags, sf)


def parse_config(body):
    interval_s, fix_timeout_s, flags, sf = struct.unpack(">HHBB", body)
    return {"report_interval_s": interval_s, "fix_timeout_s": fix_timeout_s, "flags": flags, "sf": sf}
