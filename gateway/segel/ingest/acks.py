"""The acks of one batch: merged per tracker into as few ACK frames as fit, sent back the way the
tracker was heard best, each on a fresh downlink counter that must never run out in anger.

The tracker's downlink counter is 24 bits (docs/protocol.md, "Counters"). Near its end the
tracker gets a warning notice (DOWN_WARN acks before the end, then every DOWN_REMIND acks); at
the end only this tracker's acks stop, with a notice; the custody judge turns notices into
alerts. Nothing here raises for a counter, so no tracker can stall a batch.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import TYPE_CHECKING

from segel import protocol, store
from segel.ids import device_hex
from segel.ingest import commands
from segel.ingest.codec import FrameCodec
from segel.messages import ACKS_STOPPED, DOWNLINK_COUNTERS_LOW, TRACKER, Downlink, Notice, RxMeta, Source, Uplink

if TYPE_CHECKING:
    from segel.ingest.pipeline import ProcessResult

DOWN_WARN = protocol.COUNTER_MAX - (1 << 20)  # ten years of 5-minute acks before the end
DOWN_REMIND = 1 << 16


class AckBatch:
    """Collects, for one batch, the counters each tracker is owed an ack for."""

    def __init__(self) -> None:
        # (device, TRACKER or BRIDGE) -> (codec, counters, the result that carries the downlinks)
        self.wanted: dict[tuple[int, str], tuple[FrameCodec, list[int], ProcessResult]] = {}
        self.best_bridge: dict[int, tuple[RxMeta, Source]] = {}

    def heard(self, dev_id: int, up: Uplink) -> None:
        """Remember the best bridge reception of a tracker in this batch (where its acks go)."""
        src = up.source
        if src is None or src.kind == TRACKER:
            return
        m = up.meta or RxMeta()
        best = self.best_bridge.get(dev_id)
        if best is None or m.better_than(best[0]):
            self.best_bridge[dev_id] = (m, src)

    def want(self, res: ProcessResult, dev_id: int, counter: int, codec: FrameCodec) -> None:
        src = res.uplink.source
        if src is None:  # e.g. a replayed recording with foreign topics: nobody to answer
            return
        key = (dev_id, src.kind)  # the tracker itself (WiFi), or the best bridge, chosen at flush
        entry = self.wanted.get(key)
        if entry is None:
            self.wanted[key] = (codec, [counter], res)
        else:  # one ACK frame for several frames of this batch, on the latest result
            entry[1].append(counter)
            self.wanted[key] = (codec, entry[1], res)

    def flush(self, state_of: Callable[[int], store.DeviceState], now: int,
              notice: Callable[[ProcessResult, Notice], None], conn: sqlite3.Connection | None = None) -> None:
        """Encode the ACK frames onto their results' `downlinks`, spending downlink counters; a
        device command waiting for the tracker (`segel device set`) goes in front of its ack."""
        waiting = commands.waiting(conn) if conn is not None and self.wanted else set()  # usually none
        for (dev_id, kind), (codec, counters, res) in self.wanted.items():
            state = state_of(dev_id)
            at = res.uplink.received_at
            via = Source(TRACKER, device_hex(dev_id)) if kind == TRACKER else self.best_bridge[dev_id][1]
            if dev_id in waiting and conn is not None and state.down_counter < protocol.COUNTER_MAX - 1:
                # the config before the ack: the tracker keeps listening until its ack comes
                waiting.discard(dev_id)
                cfg = commands.for_downlink(conn, dev_id, state.down_counter + 1, now)
                if cfg is not None:
                    state.down_counter += 1
                    res.downlinks.append(Downlink(dev_id, codec.encode(dev_id, state.down_counter, now, cfg), via))
            for group in protocol.ack_groups(counters):
                if state.down_counter >= protocol.COUNTER_MAX:  # only this tracker's acks stop
                    notice(res, Notice(ACKS_STOPPED, at, dev_id, detail={"down_counter": state.down_counter}))
                    break
                state.down_counter += 1
                if state.down_counter >= DOWN_WARN and (state.down_counter - DOWN_WARN) % DOWN_REMIND == 0:
                    notice(res, Notice(DOWNLINK_COUNTERS_LOW, at, dev_id, detail={
                        "down_counter": state.down_counter, "left": protocol.COUNTER_MAX - state.down_counter}))
                frame = codec.encode(dev_id, state.down_counter, now, protocol.Ack(group))
                res.downlinks.append(Downlink(dev_id, frame, via))
