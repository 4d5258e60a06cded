# Serial framing between a base station and `segel bridge` (docs/protocol.md "Serial framing").
# One record on the wire: 0x00 | COBS(payload | CRC16 big-endian) | 0x00.
# COBS removes every 0x00 from the body, so a 0x00 always marks a record boundary: after noise, a
# half record or a reset mid-stream the receiver drops what it holds at the next 0x00 and is in
# step again. The CRC (CRC-16/GENIBUS: poly 0x1021, init 0xFFFF, no reflection, final XOR 0xFFFF;
# on CPython binascii.crc_hqx(data, 0xFFFF) ^ 0xFFFF) rejects a record that noise changed without
# adding a 0x00. The final XOR matters: without it a lost trailing 0x00 that turns into 0x01 makes
# COBS append a 0x00, and a CRC with a zero residue accepts the longer record.
# Pure logic: CPython and MicroPython.
import struct

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


MAX_PAYLOAD = const(300)  # longest record payload either side accepts
_MAX_WIRE = const(310)  # COBS body of MAX_PAYLOAD + CRC, with room

# record types, base station -> bridge
R_UPLINK = const(0x01)
R_HEALTH = const(0x02)
R_HELLO = const(0x03)
R_TXDONE = const(0x04)
# bridge -> base station
R_ACK = const(0x81)
R_DOWN = const(0x82)
R_HELLO_REQ = const(0x83)

# TXDONE status
TX_SENT = const(0)
TX_LATE = const(1)  # the tracker's receive window had passed
TX_NO_WINDOW = const(2)  # this base station has not heard the device
TX_RADIO_ERROR = const(3)
TX_TOO_LONG = const(4)  # over the region's dwell limit

_TABLE = None


def _table():
    global _TABLE
    if _TABLE is None:
        t = []
        for i in range(256):
            c = i << 8
            for _ in range(8):
                c = ((c << 1) ^ 0x1021) if c & 0x8000 else (c << 1)
            t.append(c & 0xFFFF)
        _TABLE = t
    return _TABLE


def crc16(data, crc=0xFFFF):
    t = _table()
    for b in data:
        crc = ((crc << 8) & 0xFFFF) ^ t[((crc >> 8) ^ b) & 0xFF]
    return crc


def cobs_encode(data):
    out = bytearray(1)
    code_at = 0
    code = 1
    n = len(data)
    for i in range(n):
        b = data[i]
        if b == 0:
            out[code_at] = code
            code_at = len(out)
            out.append(0)
            code = 1
            continue
        out.append(b)
        code += 1
        if code == 0xFF and i + 1 < n:
            out[code_at] = code
            code_at = len(out)
            out.append(0)
            code = 1
    out[code_at] = code
    return bytes(out)


def cobs_decode(data):
    """-> bytes, or None when `data` is not valid COBS."""
    out = bytearray()
    i = 0
    n = len(data)
    while i < n:
        code = data[i]
        if code == 0:
            return None
        end = i + code
        if end > n:
            return None
        for j in range(i + 1, end):
            if data[j] == 0:  # (`0 in bytes` is not implemented on MicroPython)
                return None
        out.extend(data[i + 1 : end])
        i = end
        if code < 0xFF and i < n:
            out.append(0)
    return bytes(out)


def check(payload):
    return crc16(payload) ^ 0xFFFF


def encode(payload):
    """One record ready for the wire."""
    if len(payload) > MAX_PAYLOAD:
        raise ValueError("record payload too long: " + str(len(payload)))
    c = check(payload)
    return b"\x00" + cobs_encode(bytes(payload) + bytes(((c >> 8) & 0xFF, c & 0xFF))) + b"\x00"


class Decoder:
    """Feed it bytes as they come; it returns whole, checked payloads. Counts what it drops."""

    def __init__(self):
        self.buf = bytearray()
        self.crc_errors = 0
        self.framing_errors = 0  # bad COBS or overlong runs: noise, or a record cut by a reset
        self._skip = False  # overlong: drop until the next 0x00

    def feed(self, data):
        out = []
        for b in data:
            if b != 0:
                if self._skip:
                    continue
                if len(self.buf) >= _MAX_WIRE:
                    self.buf = bytearray()
                    self._skip = True
                    self.framing_errors += 1
                    continue
                self.buf.append(b)
                continue
            self._skip = False
            if not self.buf:
                continue
            body = cobs_decode(self.buf)
            self.buf = bytearray()
            if body is None or len(body) < 3:
                self.framing_errors += 1
                continue
            p = body[:-2]
            if check(p) != (body[-2] << 8 | body[-1]):
                self.crc_errors += 1
                continue
            out.append(p)
        return out


# --- records (layouts in docs/protocol.md) ---
UPLINK_HEAD = ">BHIIhhIBB"  # type, boot, seq, age_ms, rssi, snr_x4, freq_khz, sf, flags; then the frame
HEALTH_FMT = ">BHIIIIIIHhIB6s"  # type, boot, uptime_s, rx, crc_err, tx, tx_late, dropped, queue, temp_x10, freq_khz, sf, base id
HELLO_FMT = ">BHBIB6s"  # type, boot, fw, freq_khz, sf, base id; then the region name
TXDONE_FMT = ">BHIB"  # type, boot, dl_seq, status
ACK_FMT = ">BHI"  # type, boot, seq
DOWN_HEAD = ">BI3si"  # type, dl_seq, device id, delay_ms (-1: in the device's window, now); then the frame
TEMP_NONE = const(-32768)


def uplink(boot, seq, age_ms, rssi, snr_x4, freq_khz, sf, frame):
    return struct.pack(UPLINK_HEAD, R_UPLINK, boot, seq, age_ms, rssi, snr_x4, freq_khz, sf, 1) + bytes(frame)


def parse_down(p):
    """(dl_seq, device bytes, delay_ms, frame) from a DOWN payload."""
    n = struct.calcsize(DOWN_HEAD)
    if len(p) <= n:
        raise ValueError("short DOWN record")
    _, seq, dev, delay = struct.unpack(DOWN_HEAD, p[:n])
    return seq, dev, delay, bytes(p[n:])
