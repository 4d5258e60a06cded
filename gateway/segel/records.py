"""Records that flow through the gateway pipeline, and the contract of a judging stage.

ingest (MQTT, serial bridge, replay) -> Uplink -> verify/dedupe/decode/sanity -> Accepted
-> judges (places, custody rules) -> Alert. Stages exchange only these types.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Protocol

from segel.protocol import Frame


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


@dataclass(frozen=True)
class RxMeta:
    """Receive metadata added by a LoRa base station / packet forwarder and its bridge."""

    rssi: float | None = None
    snr: float | None = None
    base_id: str | None = None
    bridge_id: str | None = None
    freq_khz: int | None = None
    sf: int | None = None
    rx_time: float | None = None  # unix seconds at the base station

    def better_than(self, other: RxMeta | None) -> bool:
        if other is None or other.rssi is None:
            return self.rssi is not None
        if self.rssi is None:
            return False
        return (self.snr or -99.0, self.rssi) > (other.snr or -99.0, other.rssi)


@dataclass(frozen=True)
class Uplink:
    """One received MQTT message (or recorded line): not yet trusted."""

    received_at: float  # unix seconds at the gateway
    topic: str
    frame: bytes
    meta: RxMeta | None = None


@dataclass(frozen=True)
class Accepted:
    """A verified, decoded, first-seen frame from a registered device."""

    device_id: int
    counter: int
    device_time: int  # unix seconds from the device clock; 0 = device clock not set
    received_at: float
    frame: Frame
    meta: RxMeta | None = None
    box_id: str | None = None
    quality: frozenset[str] = field(default_factory=frozenset)  # no_fix, poor_hdop, impossible_jump

    @property
    def event_time(self) -> float:
        """Device time when the device had a clock, else the receive time."""
        return float(self.device_time) if self.device_time else self.received_at


@dataclass(frozen=True)
class Rejected:
    """A frame that was not accepted, with the reason under which it is counted."""

    received_at: float
    topic: str
    frame: bytes
    reason: str
    detail: str
    device_id: int | None = None


class Judge(Protocol):
    """A stage after decoding: places, custody rules. Called inside the store's transaction, so
    what it writes through `db` commits (or not) together with the frame that caused it.
    It returns alert payloads (JSON-able dicts) that the gateway publishes after the commit."""

    def on_accepted(self, rec: Accepted, db: sqlite3.Connection) -> list[dict]: ...

    def on_rejected(self, rec: Rejected, db: sqlite3.Connection) -> list[dict]: ...

    def on_tick(self, now: float, db: sqlite3.Connection) -> list[dict]: ...
