"""The InfluxDB schema, as data: every point the gateway writes goes through `point()`, which
refuses an unknown measurement, tag or field and casts each field to its one declared type, so a
field never changes type (InfluxDB answers a type change with 400 and drops the batch).

Tags hold low-cardinality identifiers only (device, box, district, kind...); counters, positions
and free text are fields. Documented in docs/influx-schema.md (kept in sync by a test).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

FLOAT, INT, STR, BOOL = "float", "int", "string", "bool"


@dataclass(frozen=True)
class Measurement:
    name: str
    doc: str
    tags: tuple[str, ...]
    fields: dict[str, str]


MEASUREMENTS: dict[str, Measurement] = {
    m.name: m
    for m in (
        Measurement(
            "position",
            "one accepted position frame, at device time",
            ("device", "box", "district"),
            {"lat": FLOAT, "lon": FLOAT, "hdop": FLOAT, "speed_kmh": FLOAT, "fix": BOOL, "flags": INT,
             "counter": INT, "late_s": FLOAT, "quality": STR, "rssi": FLOAT, "snr": FLOAT},
        ),
        Measurement(
            "seal",
            "one seal or tamper event, at device time",
            ("device", "box", "district", "event"),
            {"lat": FLOAT, "lon": FLOAT, "flags": INT, "seq": INT, "counter": INT, "late_s": FLOAT,
             "tamper": BOOL, "loop_open": BOOL},
        ),
        Measurement(
            "status",
            "tracker health report",
            ("device", "box", "district"),
            {"battery_mv": FLOAT, "queue_depth": INT, "reset_cause": INT, "uptime_min": INT, "flags": INT,
             "firmware": STR, "counter": INT},
        ),
        Measurement(
            "rx",
            "one reception of an uplink by a base station (several per frame when several heard it)",
            ("device", "base", "bridge"),
            {"rssi": FLOAT, "snr": FLOAT, "freq_khz": INT, "sf": INT, "counter": INT},
        ),
        Measurement(
            "box_state",
            "a box's custody state after each accepted frame (for the command-post map)",
            ("box", "district", "state"),
            {"lat": FLOAT, "lon": FLOAT, "place": STR, "device": STR, "tps": STR},
        ),
        Measurement(
            "custody",
            "a custody event: arrival at or departure from a place",
            ("box", "district", "event", "place_kind"),
            {"place": STR, "device": STR, "late_s": FLOAT},
        ),
        Measurement(
            "alert",
            "an alert raised, acknowledged or resolved",
            ("kind", "severity", "state", "district"),
            {"alert_id": STR, "box": STR, "device": STR, "place": STR, "message": STR, "late": BOOL,
             "open": INT},
        ),
        Measurement(
            "rejected",
            "a frame the gateway did not accept, by reason",
            ("reason",),
            {"device": STR, "topic": STR, "count": INT},
        ),
        Measurement(
            "gateway",
            "the gateway's own counters, every health interval",
            ("instance",),
            {"accepted": INT, "rejected": INT, "duplicates": INT, "outbox_depth": INT, "lag_s": FLOAT,
             "alerts_open": INT},
        ),
        Measurement(
            "base_station",
            "health of a LoRa base station or packet forwarder",
            ("base", "bridge"),
            {"uptime_s": INT, "rx_packets": INT, "crc_errors": INT, "tx_packets": INT, "queue": INT,
             "temperature_c": FLOAT},
        ),
    )
}


class SchemaError(ValueError):
    pass


_CONTROL = frozenset(chr(c) for c in (*range(0x20), 0x7F))


@functools.lru_cache(maxsize=65536)  # the same keys and tag values recur on every point
def _escape_key(s: str) -> str:
    """A tag key or value as line protocol writes it. Line protocol cannot carry a newline (or
    any control character) in a tag at all, so such a value is refused rather than mangled: it
    would end the point and start one the sender wrote."""
    if not _CONTROL.isdisjoint(s):
        raise SchemaError(f"tag value {s[:40]!r} holds a control character (newline, tab, ...)")
    return s.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


def _string_field(v: str) -> str:
    s = v.replace("\\", "\\\\").replace('"', '\\"')
    if not _CONTROL.isdisjoint(s):  # no newline may reach the line: write it as visible text
        s = "".join(f"\\\\x{ord(c):02x}" if c in _CONTROL else c for c in s)
    return f'"{s}"'


def _field_value(kind: str, v: object) -> str:
    if kind == FLOAT:
        return repr(float(v))  # type: ignore[arg-type]
    if kind == INT:
        return f"{int(v)}i"  # type: ignore[call-overload]
    if kind == BOOL:
        return "true" if v else "false"
    return _string_field(str(v))


def point(measurement: str, tags: dict[str, str | None], fields: dict[str, object], ts_ns: int) -> str:
    """One line of InfluxDB line protocol, checked against the schema. None tags/fields are left out."""
    m = MEASUREMENTS.get(measurement)
    if m is None:
        raise SchemaError(f"unknown measurement {measurement!r}")
    parts = [_escape_key(measurement)]
    for k in sorted(tags):
        if k not in m.tags:
            raise SchemaError(f"{measurement}: unknown tag {k!r}")
        v = tags[k]
        if v is not None and v != "":
            parts.append(f"{_escape_key(k)}={_escape_key(str(v))}")
    fl = []
    for k in sorted(fields):
        if k not in m.fields:
            raise SchemaError(f"{measurement}: unknown field {k!r}")
        v = fields[k]
        if v is None or (isinstance(v, float) and not math.isfinite(v)):  # line protocol has no NaN or inf
            continue
        fl.append(f"{_escape_key(k)}={_field_value(m.fields[k], v)}")
    if not fl:
        raise SchemaError(f"{measurement}: a point needs at least one field")
    return f"{','.join(parts)} {','.join(fl)} {int(ts_ns)}"
