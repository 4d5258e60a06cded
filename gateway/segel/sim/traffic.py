"""A scenario's traffic as signed frames, for benchmarks: every chosen box's tracker reporting along
its itinerary (the rehearsal's routes, stays, seal openings and re-arms), without running the
firmware. Place lookups, leg changes, arrivals and alerts then happen at the rehearsal's rates.

    t = route_traffic(scenario_dir, secret, frames=20_000)
    t.frames  # [(topic, frame bytes, device time)] in device-time order
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from pathlib import Path

from segel import protocol
from segel.edge import topics
from segel.protocol import Flag, Position, Seal, SealEvent, Status
from segel.sim import scenario as scn_mod
from segel.sim.itinerary import Builder
from segel.sim.scenario import Box, Scenario

FIRST_DEVICE = 0x000101


@dataclass
class Traffic:
    scenario: Scenario
    boxes: list[Box]
    devices: dict[str, int]  # box -> device id
    frames: list[tuple[str, bytes, float]] = field(default_factory=list)  # (topic, frame, device time)

    @property
    def boxes_csv(self) -> str:
        return scn_mod.boxes_csv_with_devices(self.scenario, self.boxes, self.devices)


def pick_boxes(scn: Scenario, n: int) -> list[Box]:
    """n boxes spread over the districts (every k-th of the scenario's list)."""
    if n >= len(scn.boxes):
        return list(scn.boxes)
    step = len(scn.boxes) / n
    return [scn.boxes[int(i * step)] for i in range(n)]


def route_traffic(scenario_dir: str | Path, secret: bytes, frames: int | None = None, boxes: int | None = None,
                  interval_s: float | None = None, days: float | None = None) -> Traffic:
    """Frames of `boxes` trackers (or as many as it takes for about `frames` frames over the whole
    scenario) reporting every `interval_s` (the scenario's) for `days` (the whole scenario), plus
    a frame at every seal opening and re-arm and a status frame a day."""
    scn = scn_mod.load(scenario_dir)
    builder = Builder(scn)
    interval = float(interval_s or scn.settings.report_interval_s)
    probe = builder.build(scn.boxes[0])
    span = (probe.end - probe.power_on) if days is None else days * 86400
    per_box = max(1, int(span / interval))
    n_boxes = boxes or max(1, min(len(scn.boxes), round((frames or 20_000) / per_box)))
    chosen = pick_boxes(scn, n_boxes)
    devices = {b.box: FIRST_DEVICE + i for i, b in enumerate(chosen)}
    streams = []
    for b in chosen:
        it = builder.build(b)
        dev = devices[b.box]
        keys = protocol.DeviceKeys.from_device_key(protocol.derive_device_key(secret, dev, 0))
        end = it.end if days is None else it.power_on + span
        events: list[tuple[float, object]] = []
        t = it.power_on
        k = 0
        while t < end:
            lat, lon = it.position(t)
            events.append((t, Position(lat, lon, Flag.FIX, 1.1, 0)))
            if k % max(1, int(86400 // interval)) == 0:
                events.append((t + 1, Status(4000, "1.0", 0, 1, Flag.FIX, 0)))
            t += interval
            k += 1
        seq = 0
        for ts, _name, is_open in it.seal:
            if is_open and ts < end:
                seq += 1
                lat, lon = it.position(ts)
                events.append((ts, Seal(int(SealEvent.LOOP_OPEN), seq & 0xFF, Flag.FIX | Flag.TAMPER, lat, lon)))
        for ts in it.rearm:
            if ts < end:
                seq += 1
                lat, lon = it.position(ts)
                events.append((ts, Seal(int(SealEvent.REARMED), seq & 0xFF, Flag.FIX, lat, lon)))
        events.sort(key=lambda e: e[0])
        topic = topics.tracker_up(f"{dev:06x}")
        streams.append([(ts, topic, protocol.encode(keys, dev, c, int(ts), body))  # type: ignore[arg-type]
                        for c, (ts, body) in enumerate(events, start=1)])
    out = Traffic(scn, chosen, devices)
    out.frames = [(topic, fr, ts) for ts, topic, fr in heapq.merge(*streams, key=lambda e: e[0])]
    if frames is not None and boxes is None:
        out.frames = out.frames[:frames]
    return out
