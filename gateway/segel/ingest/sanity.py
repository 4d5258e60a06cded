"""The sanity stage: marks (never drops) fixes that should not be trusted blindly.

- `no_fix`: a position frame without the FIX flag (lat/lon are 0/0).
- `poor_hdop`: horizontal dilution of precision above `max_hdop`.
- `impossible_jump`: the straight-line speed from the device's last trusted fix exceeds
  `max_speed_kmh` (a ballot box does not fly). Compared in device time, so a late frame is
  checked against the fix nearest to it that the gateway knows, the last one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from segel.protocol import Position

NO_FIX = "no_fix"
POOR_HDOP = "poor_hdop"
IMPOSSIBLE_JUMP = "impossible_jump"

EARTH_RADIUS_M = 6_371_008.8


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine on the mean Earth radius): enough for a speed check."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


@dataclass(frozen=True)
class Sanity:
    max_hdop: float = 5.0
    max_speed_kmh: float = 250.0
    # Below this distance no jump is claimed, whatever the time step (GPS jitter between two
    # fixes a second apart would otherwise look like high speed).
    min_jump_m: float = 500.0

    def marks(self, pos: Position, event_time: float, last_fix: tuple[float, float, float] | None) -> frozenset[str]:
        """Quality marks for a position; `last_fix` is (time, lat, lon) of the last trusted fix."""
        out: set[str] = set()
        if not pos.fix:
            return frozenset((NO_FIX,))
        if pos.hdop > self.max_hdop:
            out.add(POOR_HDOP)
        if last_fix is not None:
            t0, lat0, lon0 = last_fix
            d = distance_m(lat0, lon0, pos.lat, pos.lon)
            if d >= self.min_jump_m:
                dt = abs(event_time - t0)
                if dt <= 0 or d / dt * 3.6 > self.max_speed_kmh:
                    out.add(IMPOSSIBLE_JUMP)
        return frozenset(out)
