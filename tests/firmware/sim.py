"""Test helpers: a simulated tracker on a route, acknowledged by the gateway's own protocol code."""

from __future__ import annotations

from pathlib import Path

from segel import protocol as gp
from segelfw import config, cycle
from simhw import SimTracker

T0 = 1_800_000_000  # 2027-01-15 08:00 UTC
KEY = bytes(range(32))
DEV = 0x000101
# warehouse (Sangatta) -> PPK office -> TPS, about 3 hours on the road
ROUTE = [(T0, 0.5069, 117.5453), (T0 + 3600, 0.6500, 117.3000), (T0 + 7200, 0.8100, 117.0500),
         (T0 + 10800, 0.9000, 116.9000)]


def cfg(**over) -> dict:
    base = {"device_id": f"{DEV:06x}", "key": KEY.hex(), "board": "tbeam-v1.1"}
    base.update(over)
    return config.validate(base)


class Gateway:
    """Answers each uplink like the real gateway: verify, then a signed ack for its counter."""

    def __init__(self, delay_ms: int = 600) -> None:
        self.keys = gp.DeviceKeys.from_device_key(KEY)
        self.down = 0
        self.delay_ms = delay_ms
        self.frames: list[gp.Frame] = []  # every uplink verified, in order received
        self.online = True
        self.sent: list[bytes] = []

    def __call__(self, packet: bytes, info: dict):
        if not self.online:
            return None
        f = gp.verify_and_decode(self.keys, packet)
        self.frames.append(f)
        return [(self.delay_ms, self.downlink(gp.Ack((f.header.counter,)), int(info["t_ms"] // 1000)))]

    def downlink(self, body, t: int = T0) -> bytes:
        self.down += 1
        b = gp.encode(self.keys, DEV, self.down, t, body)
        self.sent.append(b)
        return b


def tracker(tmp: Path, **kw) -> SimTracker:
    return SimTracker(tmp, ROUTE, T0, **kw)


def wake(t: SimTracker, c: dict) -> int:
    """One wake cycle on the simulated board, then the deep sleep it asked for. -> frames sent."""
    n = len(t.radio.sent)
    cycle.run(t.drivers(), c, board=t.board)
    assert not t.gnss.on, "GNSS left powered into deep sleep"
    t.deep_sleep()
    return len(t.radio.sent) - n
