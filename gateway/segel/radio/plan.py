"""Radio planning: how many trackers a channel carries (`segel plan radio`).

Time on air comes from the firmware's own module (`firmware/segelfw/airtime.py`), so the plan and
the tracker agree to the microsecond. Collisions follow pure ALOHA: a frame survives when no other
frame on the same channel and spreading factor starts within one time on air before or after it,
P(ok) = exp(-2G) with G = N * ToA / interval; so for a collision probability p,
N = -ln(1 - p) * interval / (2 * ToA) trackers per channel.

A single-channel base station (a T-Beam in the base role) hears one channel at one SF; an
8-channel gateway (SX1301/SX1302) hears 8 channels and every SF at once, so trackers spread at
random over its channels get 8 times the capacity at the same SF.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from types import ModuleType
from typing import Any

from segel import paths


def airtime() -> ModuleType:
    paths.import_firmware()
    from segelfw import airtime as mod

    return mod


def time_on_air_us(sf: int, payload_len: int, bw_khz: int = 125, preamble: int = 8) -> int:
    return int(airtime().time_on_air_us(sf, payload_len, bw_khz, preamble))


def trackers_per_channel(toa_s: float, interval_s: float, collision_p: float) -> int:
    if not 0 < collision_p < 1:
        raise ValueError(f"collision probability must be between 0 and 1, got {collision_p}")
    return int(math.floor(-math.log(1 - collision_p) * interval_s / (2 * toa_s)))


def collision_probability(n: int, toa_s: float, interval_s: float) -> float:
    """Pure ALOHA: the chance a frame overlaps another of the n-1 other trackers on its channel."""
    return 1 - math.exp(-2 * max(n - 1, 0) * toa_s / interval_s)


@dataclass(frozen=True)
class Plan:
    region: str
    sf: int
    payload_bytes: int
    interval_s: float
    collision_p: float
    time_on_air_ms: float
    dwell_limit_ms: float
    dwell_ok: bool
    duty_cycle_pct: float
    per_channel: int  # trackers one channel carries at collision_p
    single_channel_base: int  # a T-Beam base station: one channel, one SF
    gateway_8ch: int  # an 8-channel gateway, trackers spread over 8 channels
    trackers: int | None  # the fleet to serve, if given
    base_stations_needed: int | None  # single-channel base stations on distinct channels
    gateways_needed: int | None
    collision_at_fleet_1ch: float | None  # collision probability if the fleet shares one channel
    collision_at_fleet_8ch: float | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def plan(region: str = "AS923-2", sf: int = 10, payload_bytes: int = 24, interval_s: float = 300.0,
         collision_p: float = 0.01, trackers: int | None = None, channels: int = 8, preamble: int = 8) -> Plan:
    at = airtime()
    reg = at.region(region)
    if not 7 <= sf <= 12:
        raise ValueError(f"spreading factor must be 7 to 12, got {sf}")
    if not 1 <= payload_bytes <= 255:
        raise ValueError(f"payload must be 1 to 255 bytes, got {payload_bytes}")
    if interval_s <= 0:
        raise ValueError(f"report interval must be positive, got {interval_s}")
    toa_s = at.time_on_air_us(sf, payload_bytes, reg["bw_khz"], preamble) / 1e6
    n1 = trackers_per_channel(toa_s, interval_s, collision_p)
    nch = min(channels, len(reg["channels_khz"]))
    need_b = need_g = None
    p1 = p8 = None
    if trackers is not None:
        need_b = math.ceil(trackers / n1) if n1 else None
        need_g = math.ceil(trackers / (n1 * nch)) if n1 else None
        p1 = collision_probability(trackers, toa_s, interval_s)
        p8 = collision_probability(math.ceil(trackers / nch), toa_s, interval_s)
    return Plan(region, sf, payload_bytes, interval_s, collision_p, round(toa_s * 1000, 1), reg["dwell_us"] / 1000,
                toa_s * 1e6 <= reg["dwell_us"], round(100 * toa_s / interval_s, 3), n1, n1, n1 * nch, trackers,
                need_b, need_g, p1, p8)
