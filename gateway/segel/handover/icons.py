"""The handover app's icons (a ballot box on the console's blue), drawn as PNG without an image library."""

from __future__ import annotations

import functools
import struct
import zlib

BLUE = (20, 35, 58)
WHITE = (255, 255, 255)
ACCENT = (11, 92, 173)


def _png(width: int, height: int, rows: list[bytes]) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    raw = b"".join(b"\x00" + r for r in rows)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


@functools.lru_cache(maxsize=4)
def icon(size: int) -> bytes:
    """A size x size PNG: a white box with a ballot slot and a seal band, on blue (maskable: the
    drawing stays inside the middle 60 %)."""
    def inside(x: float, y: float) -> tuple[int, int, int]:
        u, v = x / size, y / size
        if 0.26 <= u <= 0.74 and 0.36 <= v <= 0.76:  # the box
            if 0.40 <= u <= 0.60 and 0.43 <= v <= 0.47:
                return BLUE  # the slot
            if 0.36 <= v <= 0.76 and 0.47 <= u <= 0.53 and v > 0.52:
                return ACCENT  # the seal band
            return WHITE
        if 0.22 <= u <= 0.78 and 0.30 <= v <= 0.36:
            return WHITE  # the lid
        return BLUE
    rows = [bytes(c for x in range(size) for c in inside(x + 0.5, y + 0.5)) for y in range(size)]
    return _png(size, size, rows)
