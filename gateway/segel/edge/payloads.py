"""MQTT messages <-> the gateway's messages: uplinks from trackers and bridges, acks back to them.

Payloads (docs/mqtt.md): a tracker on WiFi publishes raw frame bytes to `segel/up/<device>`; a
LoRa bridge publishes JSON to `segel/bridge/<bridge>/up` with the frame as hex and the receive
metadata of its base station, and its health (retained) to `segel/bridge/<bridge>/status`. The
gateway answers a tracker with raw frame bytes on `segel/down/<device>`, a bridge with JSON on
`segel/bridge/<bridge>/down`. Only this module (and `segel.edge.topics`) knows topics and payload
formats; the pipeline sees `Uplink.source`.

Everything here is read strictly, because anyone with a bridge account (or a broker without
ACLs) can publish anything: sizes, nesting depth, duplicate keys, UTF-8, the type, range and
finiteness of every number, and the alphabet of every identifier are checked before anything is
built from them. A message that fails raises `PayloadError(detail, reason)`; the gateway then
records it as rejected under that reason, never as an exception.
"""

from __future__ import annotations

import json
import math
from typing import Any

from segel import protocol
from segel.edge import topics
from segel.ids import NAME_ALPHABET, device_hex, is_device_hex, is_name
from segel.messages import BAD_NAME, BRIDGE, OVERSIZE, TRACKER, WRONG_TOPIC, Downlink, RxMeta, Source, Uplink

MALFORMED = protocol.RejectReason.MALFORMED

MAX_TOPIC = 256  # characters; Segel's longest topic is about 80
MAX_FRAME = 255  # bytes: the largest LoRa payload, far above any v1 frame (24)
MAX_UPLINK_JSON = 4096  # bytes of a bridge's uplink message (about 250 in practice)
MAX_STATUS_JSON = 65536  # bytes of a bridge's status message (about 200 per base station)
MAX_DEPTH = 4  # nesting of JSON objects and arrays (status: {"bases": {id: {...}}} is 3)

# The receive metadata a bridge may give, with its type and the range a real radio can report.
# None of these is required; any other key is ignored (forward compatible), but counts for size
# and depth like everything else.
RX_FIELDS: dict[str, tuple[type, float, float]] = {
    "rssi": (float, -200.0, 30.0),  # dBm
    "snr": (float, -40.0, 40.0),  # dB
    "freq_khz": (int, 100_000, 3_000_000),  # 100 MHz .. 3 GHz: every LoRa band with margin
    "sf": (int, 5, 12),
    "rx_time": (float, 0.0, 4_102_444_800.0),  # unix seconds up to 2100-01-01
}


class PayloadError(ValueError):
    """A message that cannot be read; `reason` is the rejection reason it is counted under."""

    def __init__(self, detail: str, reason: str = MALFORMED) -> None:
        super().__init__(detail)
        self.detail = detail
        self.reason = reason


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
        route = topics.split(topic) if len(topic) <= MAX_TOPIC else None
        src = _sources[topic] = Source(TRACKER if route[0] == "tracker" else BRIDGE, route[1]) if route else None
    return src  # type: ignore[return-value]


def uplink(received_at: float, topic: str, frame: bytes, meta: RxMeta | None = None) -> Uplink:
    """An Uplink as it arrived on `topic`, with its source set from the topic."""
    return Uplink(received_at, topic, frame, meta, source_of(topic))


def shown(text: str, limit: int = 80) -> str:
    """A hostile string, safe for a log line or an error: printable, quoted, cut at `limit`."""
    return repr(text[:limit]) + ("..." if len(text) > limit else "")


# ---- strict JSON ------------------------------------------------------------------------------

def _refuse_constant(name: str) -> Any:
    raise PayloadError(f"JSON number {name} is not allowed (numbers must be finite)")


def _finite_float(text: str) -> float:
    v = float(text)
    if not math.isfinite(v):
        raise PayloadError(f"JSON number {text[:40]} is out of range (numbers must be finite)")
    return v


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise PayloadError(f"JSON key {shown(k, 40)} appears twice")
        out[k] = v
    return out


def _depth(text: str) -> int:
    """The deepest nesting of objects and arrays in JSON text (strings skipped), without
    building anything: so a payload of ten thousand brackets is refused before json.loads."""
    depth = deepest = 0
    in_str = esc = False
    for ch in text:
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_DEPTH:
                    return deepest
        elif ch in "]}":
            depth -= 1
    return deepest


def strict_json(payload: bytes, limit: int, what: str) -> dict[str, Any]:
    """A JSON object read strictly, or PayloadError: size, UTF-8, depth, finite numbers, no
    duplicate keys."""
    if len(payload) > limit:
        raise PayloadError(f"{what} of {len(payload)} bytes, more than the {limit} allowed", OVERSIZE)
    try:
        text = bytes(payload).decode("utf-8")
    except UnicodeDecodeError as e:
        raise PayloadError(f"{what} is not UTF-8 ({e.reason} at byte {e.start})") from None
    if _depth(text) > MAX_DEPTH:
        raise PayloadError(f"{what} nests objects or arrays deeper than {MAX_DEPTH}")
    try:
        doc = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float,
                         object_pairs_hook=_no_duplicates)
    except PayloadError:
        raise
    except (ValueError, RecursionError) as e:  # JSONDecodeError, an integer over Python's digit limit
        raise PayloadError(f"{what} is not JSON ({str(e)[:120]})") from None
    if not isinstance(doc, dict):
        raise PayloadError(f"{what} must be a JSON object, got {type(doc).__name__}")
    return doc


def _number(d: dict, key: str) -> Any:
    v = d.get(key)
    if v is None:
        return None
    kind, lo, hi = RX_FIELDS[key]
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise PayloadError(f"bridge JSON field {key!r} must be a number, got {type(v).__name__}")
    if not lo <= v <= hi:  # (finite: parse_float refused the rest; a huge int fails the range)
        raise PayloadError(f"bridge JSON field {key!r} = {str(v)[:40]} is out of range {lo:g} .. {hi:g}")
    if kind is int:
        if v != int(v):
            raise PayloadError(f"bridge JSON field {key!r} = {v!r} must be a whole number")
        return int(v)
    return float(v)


def _name(d: dict, key: str) -> str | None:
    v = d.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (str, int)):
        raise PayloadError(f"bridge JSON field {key!r} must be text, got {type(v).__name__}", BAD_NAME)
    text = str(v)
    if not is_name(text):
        raise PayloadError(f"bridge JSON field {key!r} = {shown(text, 64)} is not a valid name: use {NAME_ALPHABET}",
                           BAD_NAME)
    return text


def _check_topic(topic: str) -> Source:
    src = source_of(topic)
    if src is None:
        if len(topic) > MAX_TOPIC:
            raise PayloadError(f"topic of {len(topic)} characters, more than the {MAX_TOPIC} allowed", OVERSIZE)
        raise PayloadError(f"topic {shown(topic)} is not an uplink topic")
    if src.kind == TRACKER and not is_device_hex(src.id):
        raise PayloadError(f"topic {shown(topic)}: {shown(src.id, 20)} is not a device id (six lowercase hex "
                           "digits)", BAD_NAME)
    if src.kind == BRIDGE and not is_name(src.id):
        raise PayloadError(f"topic {shown(topic)}: the bridge id is not a valid name ({NAME_ALPHABET})", BAD_NAME)
    return src


def to_uplink(topic: str, payload: bytes, received_at: float) -> Uplink:
    """The Uplink an MQTT message carries; raises PayloadError naming what is wrong."""
    src = _check_topic(topic)
    if src.kind == TRACKER:
        if len(payload) > MAX_FRAME:
            raise PayloadError(f"payload of {len(payload)} bytes, more than a frame can be ({MAX_FRAME})", OVERSIZE)
        return Uplink(received_at, topic, bytes(payload), None, src)
    d = strict_json(payload, MAX_UPLINK_JSON, "bridge uplink")
    hexframe = d.get("frame")
    if not isinstance(hexframe, str):
        raise PayloadError('bridge JSON needs "frame": "<hex>"')
    if len(hexframe) > 2 * MAX_FRAME:
        raise PayloadError(f'bridge JSON "frame" of {len(hexframe) // 2} bytes, more than a frame can be', OVERSIZE)
    if len(hexframe) % 2 or any(c not in "0123456789abcdefABCDEF" for c in hexframe):
        raise PayloadError('bridge JSON "frame" is not hex (pairs of 0-9, a-f)')
    crc_ok = d.get("crc_ok")
    if crc_ok is not None and not isinstance(crc_ok, bool):
        raise PayloadError('bridge JSON "crc_ok" must be true or false')
    if crc_ok is False:
        raise PayloadError("the base station reported a LoRa CRC error (crc_ok false)")
    bridge = _name(d, "bridge_id")
    if bridge is not None and bridge != src.id:
        raise PayloadError(f"bridge JSON names bridge {bridge!r} but arrived on bridge {src.id!r}'s topic", WRONG_TOPIC)
    meta = RxMeta(rssi=_number(d, "rssi"), snr=_number(d, "snr"), base_id=_name(d, "base_id"), bridge_id=src.id,
                  freq_khz=_number(d, "freq_khz"), sf=_number(d, "sf"), rx_time=_number(d, "rx_time"))
    return Uplink(received_at, topic, bytes.fromhex(hexframe), meta, src)


def bridge_status(topic: str, payload: bytes) -> dict[str, Any]:
    """A bridge's (retained) status message, read as strictly as an uplink: its own bridge id,
    base-station ids in the alphabet, numbers finite. The last will (`online: false`) is valid."""
    bridge = topic.split("/")[2] if is_bridge_status(topic) else ""
    if not is_name(bridge):
        raise PayloadError(f"topic {shown(topic)}: the bridge id is not a valid name ({NAME_ALPHABET})", BAD_NAME)
    d = strict_json(payload, MAX_STATUS_JSON, "bridge status")
    named = d.get("bridge_id")
    if named is not None and named != bridge:
        raise PayloadError(f"bridge status names bridge {shown(str(named), 64)} but arrived on bridge {bridge!r}'s "
                           "topic", WRONG_TOPIC)
    bases = d.get("bases")
    if bases is not None:
        if not isinstance(bases, dict):
            raise PayloadError('bridge status "bases" must be an object')
        for base_id, b in bases.items():
            if not is_name(base_id):
                raise PayloadError(f"bridge status: base id {shown(base_id, 64)} is not a valid name "
                                   f"({NAME_ALPHABET})", BAD_NAME)
            if not isinstance(b, dict):
                raise PayloadError(f"bridge status: base {base_id!r} must be an object")
    return dict(d, bridge_id=bridge)


def downlink_message(d: Downlink) -> tuple[str, bytes]:
    """(topic, payload) of a downlink: raw bytes to a tracker, the documented JSON to a bridge."""
    dev = device_hex(d.device_id)
    if d.via.kind == TRACKER:
        return topics.tracker_down(dev), d.frame
    return topics.bridge_down(d.via.id), json.dumps({"device": dev, "frame": d.frame.hex(), "tx_at": None}).encode()
