"""MQTT messages <-> the gateway's messages: uplinks from trackers and bridges, acks back to them.

Payloads (docs/mqtt.md): a tracker on WiFi publishes raw frame bytes to `segel/up/<device>`; a
LoRa bridge publishes JSON to `segel/bridge/<bridge>/up` with the frame as hex and the receive
metadata of its base station. The gateway answers a tracker with raw frame bytes on
`segel/down/<device>`, a bridge with JSON on `segel/bridge/<bridge>/down`. Only this module (and
`segel.edge.topics`) knows topics and payload formats; the pipeline sees `Uplink.source`.
"""

from __future__ import annotations

import json
from typing import Any

from segel.edge import topics
from segel.ids import device_hex
from segel.messages import BRIDGE, TRACKER, Downlink, RxMeta, Source, Uplink


class PayloadError(ValueError):
    pass


def subscriptions() -> list[tuple[str, int]]:
    return [(topics.TRACKER_UP_SUB, 1), (topics.BRIDGE_UP_SUB, 1), (topics.BRIDGE_STATUS_SUB, 1)]


def is_bridge_status(topic: str) -> bool:
    parts = topic.split("/")
    return len(parts) == 4 and parts[0] == topics.PREFIX and parts[1] == "bridge" and parts[3] == "status"


_sources: dict[str, Source | None] = {}


def source_of(topic: str) -> Source | None:
    """Who sent a message on `topic` (a tracker or a bridge), or None for a topic that is not an
    uplink topic (cached: the same few thousand topics recur)."""
    src = _sources.get(topic, False)
    if src is False:
        if len(_sources) > 100_000:
            _sources.clear()
        route = topics.split(topic)
        src = _sources[topic] = Source(TRACKER if route[0] == "tracker" else BRIDGE, route[1]) if route else None
    return src  # type: ignore[return-value]


def uplink(received_at: float, topic: str, frame: bytes, meta: RxMeta | None = None) -> Uplink:
    """An Uplink as it arrived on `topic`, with its source set from the topic."""
    return Uplink(received_at, topic, frame, meta, source_of(topic))


def _num(d: dict, key: str, kind: type) -> Any:
    v = d.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise PayloadError(f"bridge JSON field {key!r} must be a number, got {v!r}")
    return kind(v)


def to_uplink(topic: str, payload: bytes, received_at: float) -> Uplink:
    """The Uplink an MQTT message carries; raises PayloadError naming what is wrong."""
    src = source_of(topic)
    if src is None:
        raise PayloadError(f"topic {topic!r} is not an uplink topic")
    if src.kind == TRACKER:
        return Uplink(received_at, topic, bytes(payload), None, src)
    try:
        d = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as e:
        raise PayloadError(f"bridge payload is not JSON ({e})") from None
    if not isinstance(d, dict) or not isinstance(d.get("frame"), str):
        raise PayloadError('bridge JSON needs "frame": "<hex>"')
    if d.get("crc_ok") is False:
        raise PayloadError("the base station reported a LoRa CRC error (crc_ok false)")
    try:
        frame = bytes.fromhex(d["frame"])
    except ValueError:
        raise PayloadError('bridge JSON "frame" is not hex') from None
    base, bridge = d.get("base_id"), d.get("bridge_id") or src.id
    meta = RxMeta(rssi=_num(d, "rssi", float), snr=_num(d, "snr", float),
                  base_id=str(base) if base is not None else None, bridge_id=str(bridge),
                  freq_khz=_num(d, "freq_khz", int), sf=_num(d, "sf", int), rx_time=_num(d, "rx_time", float))
    return Uplink(received_at, topic, frame, meta, src)


def downlink_message(d: Downlink) -> tuple[str, bytes]:
    """(topic, payload) of a downlink: raw bytes to a tracker, the documented JSON to a bridge."""
    dev = device_hex(d.device_id)
    if d.via.kind == TRACKER:
        return topics.tracker_down(dev), d.frame
    return topics.bridge_down(d.via.id), json.dumps({"device": dev, "frame": d.frame.hex(), "tx_at": None}).encode()
