"""Trackers flushing their flash queues over MQTT the way the firmware does, for the burst benchmark
and the crash test: every frame sent, then a receive window for its ack.

Per tracker, as `segelfw.cycle` does in each wake: up to `per_wake` queued frames in queue order,
each after a random wait of up to `jitter_ms`, published at QoS 1 on `segel/up/<device>`, then a
receive window of `window_ms` that ends early once the frame's ack is in; an ACK frame frees every
counter it names. What is not acked stays queued for the next wake, `wake_gap_s` later (the
report interval, compressed). Acks that arrive between wakes are lost (the tracker is asleep).
One asyncio loop runs all trackers over one MQTT 3.1.1 connection (`segel.bench.loadgen`'s packets).
"""

from __future__ import annotations

import asyncio
import random
import struct
import time
from dataclasses import dataclass, field

from segel import protocol
from segel.bench.loadgen import _remaining_length, _utf8, connect_packet, publish_packet
from segel.edge import topics


@dataclass
class FlushStats:
    trackers: int
    frames: int
    sends: int = 0
    acked_in_window: int = 0
    windows_missed: int = 0  # receive windows that closed without the frame's ack
    latencies: list[float] = field(default_factory=list)  # publish -> ack, seconds, acks in the window
    done_at: dict[int, float] = field(default_factory=dict)  # device -> when its queue was empty
    started: float = 0.0
    unacked: dict[int, list[int]] = field(default_factory=dict)  # device -> counters never acked (timeout)

    @property
    def resends(self) -> int:
        return self.sends - self.frames

    @property
    def drain_s(self) -> float:
        return max(self.done_at.values()) - self.started if self.done_at else 0.0


class FleetFlush:
    def __init__(self, host: str, port: int, queues: dict[int, list[tuple[int, bytes]]],
                 keys: dict[int, protocol.DeviceKeys], *,
                 jitter_ms: int = 3000, window_ms: int = 2500, per_wake: int = 8, wake_gap_s: float = 10.0,
                 seed: int = 1, client_id: str = "segel-bench-flush") -> None:
        self.host, self.port, self.client_id = host, port, client_id
        self.queues = queues  # device -> [(counter, frame)] in queue order
        self.keys = keys
        self.jitter_s, self.window_s, self.per_wake, self.wake_gap_s = jitter_ms / 1000, window_ms / 1000, per_wake, wake_gap_s
        self.rng = random.Random(seed)
        self.stats = FlushStats(len(queues), sum(len(q) for q in queues.values()))
        self._awake: set[int] = set()
        self._acked: dict[int, set[int]] = {d: set() for d in queues}
        self._events: dict[int, asyncio.Event] = {}
        self._writer: asyncio.StreamWriter | None = None
        self._pid = 0

    async def run(self, deadline_s: float = 600.0) -> FlushStats:
        reader, self._writer = await asyncio.open_connection(self.host, self.port)
        self._writer.write(connect_packet(self.client_id))
        await self._writer.drain()
        await reader.readexactly(4)  # CONNACK
        var = struct.pack(">H", 1) + _utf8(topics.TRACKER_DOWN.format(device="+")) + b"\x00"
        self._writer.write(b"\x82" + _remaining_length(len(var)) + var)
        await self._writer.drain()
        self._events = {d: asyncio.Event() for d in self.queues}
        suback = asyncio.get_running_loop().create_future()
        rx = asyncio.create_task(self._read(reader, suback))
        ping = asyncio.create_task(self._ping())
        await asyncio.wait_for(suback, 10)
        self.stats.started = time.time()
        try:
            await asyncio.wait_for(asyncio.gather(*(self._tracker(d) for d in self.queues)), deadline_s)
        except asyncio.TimeoutError:
            pass
        for d, q in self.queues.items():
            left = [c for c, _ in q if c not in self._acked[d]]
            if left:
                self.stats.unacked[d] = left
        rx.cancel()
        ping.cancel()
        self._writer.close()
        return self.stats

    async def _ping(self) -> None:
        while True:
            await asyncio.sleep(20)
            assert self._writer is not None
            self._writer.write(b"\xc0\x00")

    async def _read(self, reader: asyncio.StreamReader, suback: asyncio.Future) -> None:
        while True:
            first = (await reader.readexactly(1))[0]
            n, mult = 0, 1
            while True:
                b = (await reader.readexactly(1))[0]
                n += (b & 0x7F) * mult
                mult *= 128
                if not b & 0x80:
                    break
            body = await reader.readexactly(n) if n else b""
            kind = first >> 4
            if kind == 9 and not suback.done():
                suback.set_result(True)
            elif kind == 3:
                tlen = struct.unpack(">H", body[:2])[0]
                topic = body[2:2 + tlen].decode()
                payload = body[2 + tlen + (2 if first & 0x06 else 0):]
                self._downlink(topic, payload)

    def _downlink(self, topic: str, payload: bytes) -> None:
        try:
            dev = int(topic.rsplit("/", 1)[1], 16)
        except ValueError:
            return
        if dev not in self._awake or dev not in self.keys:
            return  # asleep: the ack is lost, the frames go again at the next wake
        try:
            fr = protocol.verify_and_decode(self.keys[dev], payload)
        except protocol.FrameError:
            return
        counters = getattr(fr.body, "counters", None)
        if counters:
            self._acked[dev].update(counters)
            self._events[dev].set()

    def _publish(self, dev: int, frame: bytes) -> None:
        assert self._writer is not None
        self._pid = self._pid % 65535 + 1
        self._writer.write(publish_packet(topics.tracker_up(f"{dev:06x}"), frame, self._pid))
        self.stats.sends += 1

    async def _tracker(self, dev: int) -> None:
        acked, ev = self._acked[dev], self._events[dev]
        while True:
            pending = [(c, f) for c, f in self.queues[dev] if c not in acked]
            if not pending:
                self.stats.done_at[dev] = time.time()
                return
            self._awake.add(dev)
            for c, frame in pending[:self.per_wake]:
                if c in acked:
                    continue
                await asyncio.sleep(self.rng.uniform(0, self.jitter_s))
                ev.clear()
                t0 = time.time()
                self._publish(dev, frame)
                end = t0 + self.window_s
                while c not in acked and time.time() < end:
                    ev.clear()
                    try:
                        await asyncio.wait_for(ev.wait(), end - time.time())
                    except asyncio.TimeoutError:
                        break
                if c in acked:
                    self.stats.acked_in_window += 1
                    self.stats.latencies.append(time.time() - t0)
                else:
                    self.stats.windows_missed += 1
            self._awake.discard(dev)
            if any(c not in acked for c, _ in self.queues[dev]):
                await asyncio.sleep(self.wake_gap_s)


def flush(host: str, port: int, queues: dict[int, list[tuple[int, bytes]]], keys: dict[int, protocol.DeviceKeys],
          deadline_s: float = 600.0, **kw: object) -> FlushStats:
    return asyncio.run(FleetFlush(host, port, queues, keys, **kw).run(deadline_s))  # type: ignore[arg-type]
