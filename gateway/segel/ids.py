"""Identifiers as people and wires write them: device ids (six hex digits), bridge and base-station names."""

from __future__ import annotations

import re


# Device ids from here up are the simulator's own (`segel simulate`, `segel demo`): provisioning
# never hands them out, so a simulated tracker can never pass for a real one.
SIM_FIRST = 0xF00000


def is_simulated(device_id: int) -> bool:
    return device_id >= SIM_FIRST


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


# Bridge ids, base-station ids and other names that reach topics, tags and logs: letters, digits,
# '.', '_' and '-', starting with a letter or digit, at most 64 characters (docs/mqtt.md). Nothing
# else is built from a name outside this alphabet: no InfluxDB tag, no topic, no log line.
NAME_MAX = 64
NAME_ALPHABET = "letters, digits, '.', '_' and '-' (starting with a letter or digit), at most 64 characters"
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_DEVICE_RE = re.compile(r"[0-9a-f]{6}")


def is_name(text: object) -> bool:
    """True for a bridge or base-station id in the documented alphabet."""
    return isinstance(text, str) and _NAME_RE.fullmatch(text) is not None


def check_name(text: object, what: str) -> str:
    """`text` when it is a valid name, else ValueError saying what is wrong (the text shown safely)."""
    if not isinstance(text, str):
        raise ValueError(f"{what} must be text, got {type(text).__name__}")
    if not is_name(text):
        shown = text[:NAME_MAX] + ("..." if len(text) > NAME_MAX else "")
        raise ValueError(f"{what} {shown!r} is not a valid name: use {NAME_ALPHABET}")
    return text


def is_device_hex(text: object) -> bool:
    """True for a device id in its canonical text form (six lowercase hex digits)."""
    return isinstance(text, str) and _DEVICE_RE.fullmatch(text) is not None


# ---- box labels: what a receiving officer scans ------------------------------------------------------

BOX_LABEL_PREFIX = "SGL1"


def fleet_id(fleet_secret: bytes) -> str:
    """A fleet's public name on its labels: 8 hex digits derived from (never revealing) the fleet
    secret, so a label from another fleet is told apart at once."""
    import hashlib
    import hmac

    return hmac.new(fleet_secret, b"segel fleet id", hashlib.sha256).hexdigest()[:8].upper()


def box_label(fleet: str, box: str, device_id: int | None) -> str:
    """The QR text of a box label: SGL1:<fleet>:<box>:<tracker>. Upper-case hex, so a QR code of the
    usual box codes (64.08.04.2001-001-GUB) uses its dense alphanumeric mode."""
    dev = device_hex(device_id).upper() if device_id is not None else "-"
    return f"{BOX_LABEL_PREFIX}:{fleet.upper()}:{box}:{dev}"


def parse_box_label(text: str) -> tuple[str, str, int | None]:
    """(fleet, box, tracker) from a scanned box label; raises ValueError saying what was scanned."""
    parts = text.strip().split(":")
    if len(parts) < 4 or parts[0].upper() != BOX_LABEL_PREFIX:
        if text.strip().upper().startswith("SGL-"):
            raise ValueError(f"{text.strip()!r} is a tracker label (no box): scan the label on the box")
        raise ValueError(f"{text.strip()[:40]!r} is not a Segel box label (SGL1:<fleet>:<box>:<tracker>)")
    fleet, box, dev = parts[1], ":".join(parts[2:-1]), parts[-1]
    if not box:
        raise ValueError("the label names no box")
    return fleet.upper(), box, None if dev == "-" else parse_device(dev)
