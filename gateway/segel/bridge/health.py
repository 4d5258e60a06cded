"""The bridge's retained health message -> InfluxDB `base_station` points, for the gateway.

    from segel.bridge.health import base_station_points
    lines = base_station_points(json.loads(payload), ts_ns=time.time_ns())

One point per base station (serial) or packet-forwarder gateway (UDP) in `status["bases"]`, tagged
with the base id and the bridge id; fields the schema does not know are left out, missing ones are
skipped. A last-will message (`online: false`) has no bases and gives no points.
"""

from __future__ import annotations

from typing import Any

from segel import schema

FIELDS = tuple(schema.MEASUREMENTS["base_station"].fields)


def base_station_points(status: dict[str, Any], ts_ns: int) -> list[str]:
    bridge = status.get("bridge_id")
    bases = status.get("bases")
    if not isinstance(bases, dict) or not isinstance(bridge, str):
        return []
    out = []
    for base_id, b in sorted(bases.items()):
        if not isinstance(b, dict):
            continue
        fields = {k: b[k] for k in FIELDS if isinstance(b.get(k), (int, float)) and not isinstance(b.get(k), bool)}
        if fields:
            out.append(schema.point("base_station", {"base": str(base_id), "bridge": bridge}, fields, ts_ns))
    return out
