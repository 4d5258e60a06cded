"""Identifiers as people and wires write them: device ids (six hex digits) and their parsing."""

from __future__ import annotations


def device_hex(device_id: int) -> str:
    """The canonical text form of a device id: six lowercase hex digits (topics, registry, labels)."""
    return f"{device_id:06x}"


def parse_device(text: str) -> int:
    """Accepts '00a1b2', '0x00a1b2' or 'SGL-00a1b2'; raises ValueError naming the input."""
    t = text.strip().lower()
    for prefix in ("sgl-", "0x"):
        if t.startswith(prefix):
            t = t[len(prefix):]
    if not t or len(t) > 6 or any(c not in "0123456789abcdef" for c in t):
        raise ValueError(f"{text!r} is not a device id (six hex digits, e.g. 000101)")
    return int(t, 16)
