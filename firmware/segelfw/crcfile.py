# Append-only files of CRC records: the flash queue, seal event log and counter reservation use them.
# Record: 0xA5 | kind u8 | len u8 | payload | CRC-32 (4 B, big-endian) over kind, len, payload.
# A power cut during append leaves a torn tail: scan() stops at the first bad record and reports
# where the good data ends, so callers rewrite (compact) instead of appending after garbage.
import os
import struct

try:
    from binascii import crc32
except ImportError:  # a port built without MICROPY_PY_BINASCII_CRC32
    crc32 = None

MAGIC = 0xA5
OVERHEAD = 7

_table = None


def _crc32_py(data, crc=0):
    global _table
    if _table is None:
        _table = []
        for i in range(256):
            c = i
            for _ in range(8):
                c = (c >> 1) ^ 0xEDB88320 if c & 1 else c >> 1
            _table.append(c)
    crc ^= 0xFFFFFFFF
    for b in data:
        crc = _table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def crc(data):
    if crc32 is not None:
        return crc32(data) & 0xFFFFFFFF
    return _crc32_py(data)


def pack(kind, payload):
    if len(payload) > 255:
        raise ValueError("record payload over 255 bytes")
    body = bytes((kind, len(payload))) + payload
    return bytes((MAGIC,)) + body + struct.pack(">I", crc(body))


def exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def size(path):
    try:
        return os.stat(path)[6]
    except OSError:
        return 0


def scan(path, fn):
    """Call fn(kind, payload, offset) for every good record. -> (end_of_good_data, file_size)."""
    try:
        f = open(path, "rb")
    except OSError:
        return 0, 0
    good = 0  # offset just after the last good record
    buf = b""  # unconsumed bytes from offset `good`
    eof = False
    try:
        while True:
            if not eof:
                chunk = f.read(512)
                if chunk:
                    buf += chunk
                else:
                    eof = True
            i = 0
            while len(buf) - i >= OVERHEAD:
                n = buf[i + 2]
                if buf[i] != MAGIC or (len(buf) - i >= OVERHEAD + n and crc(buf[i + 1 : i + 3 + n]) != struct.unpack(">I", buf[i + 3 + n : i + 7 + n])[0]):
                    return good, size(path)
                if len(buf) - i < OVERHEAD + n:
                    break
                fn(buf[i + 1], bytes(buf[i + 3 : i + 3 + n]), good)
                i += OVERHEAD + n
                good += OVERHEAD + n
            buf = buf[i:]
            if eof:
                return good, good + len(buf)
    finally:
        f.close()


def append(path, data):
    f = open(path, "ab")
    try:
        f.write(data)
    finally:
        f.close()


def replace(path, data):
    """Atomically replace a file's content: write a temporary file, then rename over (LittleFS)."""
    tmp = path + ".new"
    f = open(tmp, "wb")
    try:
        f.write(data)
    finally:
        f.close()
    os.rename(tmp, path)


def remove(path):
    try:
        os.remove(path)
    except OSError:
        pass
