"""What flows between the gateway's stages: Uplink in, Accepted or Rejected out, and the Judge contract.

edge (MQTT, serial bridge, a replayed recording) -> Uplink -> ingest (verify, dedupe, decode,
sanity) -> Accepted -> judges (places, custody rules) -> alerts. Stages exchange only these types.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Protocol

from segel.protocol import Frame


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
class Source:
    """Who handed an uplink to the gateway: a tracker on WiFi (`id` = its device id, six hex
    digits) or a LoRa bridge (`id` = the bridge id). Acks go back the same way."""

    kind: str  # TRACKER or BRIDGE
    id: str


TRACKER, BRIDGE = "tracker", "bridge"

# Reasons a message is rejected before or around its frame (the frame's own are
# segel.protocol.RejectReason); every one is counted, kept in the security log with the raw
# bytes, and written as a `rejected` point (docs/gateway.md, "Rejected messages").
WRONG_TOPIC = "wrong_topic"  # the message names a sender other than its topic's
OVERSIZE = "oversize"  # longer than any message of its kind can be
BAD_NAME = "bad_name"  # a bridge, base-station or device id outside the documented alphabet
INTERNAL_ERROR = "internal_error"  # handling it raised: a bug, parked instead of stopping ingest
REVOKED = "revoked"  # a frame of a revoked (stolen, lost) tracker, under its own key
STALE_KEY = "stale_key"  # a frame under a key epoch the tracker has already left (a copy of its old image)

# What the ingest stage notices that is not a frame; judges turn notices into alerts.
DOWNLINK_COUNTERS_LOW = "downlink_counters_low"  # a tracker's downlink counters are near their end
ACKS_STOPPED = "acks_stopped"  # ... at their end: its acks stop until it is re-keyed
BAD_MAC_FLOOD = "bad_mac_flood"  # many frames with a bad MAC for a tracker or through a bridge
REVOKED_HEARD = "revoked_tracker_heard"  # a revoked tracker spoke: where it was heard


@dataclass(frozen=True)
class Unreadable:
    """Why a message holds no frame the pipeline can look at (bad JSON, a bad name, too big)."""

    reason: str
    detail: str


@dataclass(frozen=True)
class Notice:
    """Something the ingest stage noticed about a tracker or a bridge (one of the kinds above)."""

    kind: str
    at: float  # the gateway's receive time of the message that caused it
    device_id: int | None = None
    bridge: str | None = None
    detail: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Uplink:
    """One received message (or recorded line): not yet trusted. The edge sets `source` once; an
    uplink without one (e.g. a recording with foreign topics) is judged but never answered."""

    received_at: float  # unix seconds at the gateway
    topic: str  # where it arrived, as text: kept for the security log and the recording
    frame: bytes
    meta: RxMeta | None = None
    source: Source | None = None


@dataclass(frozen=True)
class Downlink:
    """A frame for a tracker (an ack) and the way back to it: `via` is the tracker itself (WiFi)
    or the bridge that heard it best. The edge turns it into a message."""

    device_id: int
    frame: bytes
    via: Source


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

    # Optional: a judge that has it is also handed the ingest stage's notices (`Notice`).
    # def on_notice(self, notice: Notice, db: sqlite3.Connection) -> list[dict]: ...
