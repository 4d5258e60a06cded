"""Every InfluxDB line the gateway writes, built in one place (docs/influx-schema.md maps onto it).

Each builder returns line protocol checked by `segel.influx.schema.point` (unknown measurement,
tag or field refused; one type per field), except `position_wifi`, the ingest hot path's most
frequent line, written directly and pinned byte for byte to `schema.point` by a property test.
Timestamps are nanoseconds; a frame's points use `frame_ts_ns`, so a line written twice (after a
crash) overwrites the same point.
"""

from __future__ import annotations

import functools
import math
from typing import Any

from segel import protocol
from segel.ids import device_hex
from segel.influx.schema import MEASUREMENTS, point
from segel.messages import Accepted, RxMeta

ALERT_ACTIVE = ("open", "acknowledged")  # the states counted as `open` in the alert measurement


def frame_ts_ns(device_time: int, received_at: float, counter: int) -> int:
    """The timestamp of a frame's points: device time (receive time when the tracker had no
    clock) plus counter mod 1000 milliseconds. Stable for a given frame; distinct for frames of one
    second."""
    base = int(device_time) if device_time else int(received_at)
    return base * 1_000_000_000 + (counter % 1000) * 1_000_000


# ---- frames (the ingest pipeline) ------------------------------------------------------------

def telemetry(acc: Accepted) -> list[str]:
    """The lines of an accepted frame: its position, seal or status point, and its reception."""
    dev = device_hex(acc.device_id)
    ts = frame_ts_ns(acc.device_time, acc.received_at, acc.counter)
    late = (acc.received_at - acc.device_time) if acc.device_time else None
    tags = {"device": dev, "box": acc.box_id}
    body = acc.frame.body
    m = acc.meta
    out: list[str] = []
    if isinstance(body, protocol.Position):
        if m is None and _plain_tag(dev) and (acc.box_id is None or _plain_tag(acc.box_id)):
            out.append(position_wifi(dev, acc.box_id, body, acc.counter, late, acc.quality, ts))
        else:
            out.append(point("position", tags, {
                "lat": body.lat, "lon": body.lon, "hdop": body.hdop, "speed_kmh": body.speed_kmh,
                "fix": body.fix, "flags": body.flags, "counter": acc.counter, "late_s": late,
                "quality": ",".join(sorted(acc.quality)) or "ok",
                "rssi": m.rssi if m else None, "snr": m.snr if m else None}, ts))
    elif isinstance(body, protocol.Seal):
        out.append(point("seal", {**tags, "event": body.event_name}, {
            "lat": body.lat, "lon": body.lon, "flags": body.flags, "seq": body.seq, "counter": acc.counter,
            "late_s": late, "tamper": bool(body.flags & protocol.Flag.TAMPER),
            "loop_open": bool(body.flags & protocol.Flag.LOOP_OPEN)}, ts))
    elif isinstance(body, protocol.Status):
        out.append(point("status", tags, {
            "battery_mv": body.battery_mv, "queue_depth": body.queue_depth, "reset_cause": body.reset_cause,
            "uptime_min": body.uptime_min, "flags": body.flags, "firmware": body.firmware,
            "counter": acc.counter}, ts))
    if m is not None:
        line = rx(acc.device_id, acc.counter, ts, m)
        if line:
            out.append(line)
    return out


@functools.lru_cache(maxsize=65536)  # device ids and box ids recur on every frame
def _plain_tag(v: str) -> bool:
    """A tag value line protocol takes as it is (no space, comma, equals sign or backslash)."""
    return bool(v) and " " not in v and "," not in v and "=" not in v and "\\" not in v


def position_wifi(dev: str, box: str | None, body: protocol.Position, counter: int, late: float | None,
                  quality: frozenset[str], ts: int) -> str:
    """The `position` line of a frame heard over WiFi (no receive metadata), written directly.
    Byte for byte what `point` writes for it; the caller makes sure the tags need no escaping."""
    q = ",".join(sorted(quality)) if quality else "ok"
    if '"' in q or "\\" in q:
        q = q.replace("\\", "\\\\").replace('"', '\\"')
    late_s = "" if late is None or not math.isfinite(late) else f",late_s={float(late)!r}"
    tags = f"position,box={box},device={dev}" if box else f"position,device={dev}"
    return (f"{tags} counter={counter}i,fix={'true' if body.flags & protocol.Flag.FIX else 'false'},"
            f"flags={body.flags}i,hdop={float(body.hdop)!r},lat={float(body.lat)!r}{late_s},lon={float(body.lon)!r},"
            f'quality="{q}",speed_kmh={float(body.speed_kmh)!r} {ts}')


def rx(device_id: int, counter: int, ts: int, m: RxMeta) -> str | None:
    """One reception of a frame by a base station (None when the bridge gave no signal figures)."""
    if m.rssi is None and m.snr is None:
        return None
    return point("rx", {"device": device_hex(device_id), "base": m.base_id, "bridge": m.bridge_id},
                 {"rssi": m.rssi, "snr": m.snr, "freq_khz": m.freq_khz, "sf": m.sf, "counter": counter}, ts)


def rejected(reason: str, device_id: int | None, topic: str, received_at: float, log_row: int) -> str:
    """A frame not accepted; `log_row` (its security-log row id) keeps points of one millisecond apart."""
    ts = int(received_at * 1000) * 1_000_000 + log_row % 1_000_000
    return point("rejected", {"reason": reason}, {
        "device": device_hex(device_id) if device_id is not None else None, "topic": topic, "count": 1}, ts)


# ---- custody (the judge, the operator's alert changes) ------------------------------------------

def alert(row: dict, at: float) -> str:
    """An alert change (raised, acknowledged, resolved, withdrawn) from its `alerts` row."""
    ts = int(at * 1e9) // 1000 * 1000 + int(row["id"][3:9], 16) % 1000
    return point("alert", {"kind": row["kind"], "severity": row["severity"], "state": row["state"],
                           "district": row["district"]},
                 {"alert_id": row["id"], "box": row["box"], "device": row["device"], "place": row["place"],
                  "message": row["message"], "late": bool(row["late"]),
                  "open": int(row["state"] in ALERT_ACTIVE)}, ts)


def custody_event(box: str, district: str | None, event: str, place_kind: str | None, place: str, device: str,
                  late_s: float, t: float, counter: int, nudge: int = 0) -> str:
    """An arrival, departure or seal event at a place (`nudge` 1 for its withdrawal's point)."""
    return point("custody", {"box": box, "district": district, "event": event, "place_kind": place_kind},
                 {"place": place, "device": device, "late_s": late_s}, int(t * 1e9) + counter % 1000 + nudge)


def box_state(box: str, district: str | None, state: str, lat: float, lon: float, place: str, device: str,
              tps: str, t: float, counter: int) -> str:
    """A box's custody state after a frame (for the command-post map)."""
    return point("box_state", {"box": box, "district": district, "state": state},
                 {"lat": lat, "lon": lon, "place": place, "device": device, "tps": tps}, int(t * 1e9) + counter % 1000)


# ---- health (the gateway's own, the bridges') ------------------------------------------------------

def gateway_health(instance: str, accepted: int, rejected: int, duplicates: int, outbox_depth: int,
                   lag_s: float, at: float) -> str:
    return point("gateway", {"instance": instance}, {
        "accepted": accepted, "rejected": rejected, "duplicates": duplicates,
        "outbox_depth": outbox_depth, "lag_s": lag_s}, int(at * 1000) * 1_000_000)


_BASE_FIELDS = tuple(MEASUREMENTS["base_station"].fields)


def base_stations(status: dict[str, Any], ts_ns: int) -> list[str]:
    """A bridge's retained status message -> one `base_station` point per base station (serial) or
    packet-forwarder gateway (UDP) in `status["bases"]`; fields the schema does not know are left
    out. A last-will message (`online: false`) has no bases and gives no points."""
    bridge = status.get("bridge_id")
    bases = status.get("bases")
    if not isinstance(bases, dict) or not isinstance(bridge, str):
        return []
    out = []
    for base_id, b in sorted(bases.items()):
        if not isinstance(b, dict):
            continue
        fields = {k: b[k] for k in _BASE_FIELDS if isinstance(b.get(k), (int, float)) and not isinstance(b.get(k), bool)}
        if fields:
            out.append(point("base_station", {"base": str(base_id), "bridge": bridge}, fields, ts_ns))
    return out
