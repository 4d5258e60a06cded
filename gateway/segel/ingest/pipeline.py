"""The ingest pipeline: one uplink in, one committed result out.

Order, written once (docs/protocol.md "Receiving a frame" gives each step's rejection reason):
parse header -> direction -> source (a tracker's own topic) -> registry (unknown device) -> MAC
(and decrypt) -> key epoch -> replay window (too old) -> seen? (duplicate, or replay when the
bytes differ) -> decode -> sanity marks -> per-device state -> outbox lines -> judges -> ack
downlink. The MAC is checked before the replay window, so nothing unauthenticated moves a
tracker's window. Everything one uplink causes is written inside one SQLite transaction (or one
savepoint of the caller's transaction, so a gateway can commit a batch at once), and the result
says what to publish after the commit.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from segel import protocol, store
from segel.ids import device_hex
from segel.influx import lines, outbox
from segel.ingest import commands
from segel.ingest.acks import AckBatch
from segel.ingest.codec import FrameCodec
from segel.ingest.guard import Guard
from segel.messages import (
    BAD_MAC_FLOOD,
    BRIDGE,
    INTERNAL_ERROR,
    TRACKER,
    WRONG_TOPIC,
    Accepted,
    Downlink,
    Judge,
    Notice,
    Rejected,
    RxMeta,
    Unreadable,
    Uplink,
)
from segel.ingest.sanity import Sanity
from segel.ingest.stages import Stages
from segel.protocol import FrameError, RejectReason
from segel.registry import Device, KeyRing, Registry

log = logging.getLogger("segel.ingest.pipeline")

DEFAULT_WINDOW = 4096

Item = Uplink | tuple[Uplink, Unreadable | str | None]


@dataclass
class ProcessResult:
    uplink: Uplink
    accepted: Accepted | None = None
    rejected: Rejected | None = None
    duplicate: bool = False
    alerts: list[dict] = field(default_factory=list)
    downlinks: list[Downlink] = field(default_factory=list)  # acks, sent by the edge after the commit

    @property
    def outcome(self) -> str:
        if self.accepted:
            return "accepted"
        if self.duplicate:
            return "duplicate"
        return f"rejected:{self.rejected.reason}" if self.rejected else "none"


class _Redo(Exception):
    """Raised on the fast path: roll the batch back and run it again with savepoints."""

def _copy_state(st: store.DeviceState) -> store.DeviceState:
    c = object.__new__(store.DeviceState)
    c.__dict__.update(st.__dict__)
    return c


class Pipeline:
    """Verify, dedupe, decode, mark, store and judge uplinks; see the module docstring.

    `conn` is the gateway database (`segel.store.connect`), used only from the calling thread.
    Registry lookups are cached for `registry_ttl_s` (a changed key epoch is picked up at once:
    a MAC failure re-reads the registry before rejecting).
    """

    def __init__(self, conn: sqlite3.Connection, keyring: KeyRing, judges: Sequence[Judge] = (),
                 sanity: Sanity | None = None, window: int = DEFAULT_WINDOW, reack_after_s: float = 5.0,
                 registry_ttl_s: float = 2.0, clock: Callable[[], float] = time.time,
                 guard: Guard | None = None) -> None:
        if window < 32:
            raise ValueError("replay window must be at least 32 counters")
        self.conn = conn
        store.init(conn)
        commands.ensure_schema(conn)
        self.registry = Registry(conn)
        self.keyring = keyring
        self.judges = list(judges)
        self.sanity = sanity or Sanity()
        self.window = window
        self.reack_after_s = reack_after_s
        self.registry_ttl_s = registry_ttl_s
        self.clock = clock  # device time of downlinks (a simulation passes its own clock)
        self._codecs: dict[tuple[int, int], FrameCodec] = {}
        self._devices: dict[int, tuple[float, Device | None]] = {}
        self.counts: Counter[str] = Counter()  # since this Pipeline was made: accepted, duplicate, rejected:<r>
        self.stages = Stages()  # time per stage since this Pipeline was made (/metrics)
        # per batch
        self._lines: list[str] = []
        self._states: dict[int, store.DeviceState] = {}
        self._acks = AckBatch()
        self._undo: dict[int, store.DeviceState | None] = {}
        # `seen` rows of this batch, read in one query and written in one executemany:
        # key -> [digest, received_at, rssi, snr, base_id, bridge_id, receptions]
        self._seen: dict[tuple[int, int], list] = {}
        self._seen_dirty: set[tuple[int, int]] = set()
        self._undo_seen: dict[tuple[int, int], list | None] = {}
        self._careful = True
        self._t_commit = 0.0
        self.guard = guard or Guard(per_minute=self.LOG_REJECTS_PER_MINUTE)
        # device_state rows as last committed by this pipeline (it is their only writer); only
        # used while this pipeline owns its transactions, dropped on any rollback
        self._cache: dict[int, store.DeviceState] = {}
        self._saved: dict[int, store.DeviceState] = {}

    # ---- public ----------------------------------------------------------------------------

    def process(self, up: Uplink) -> ProcessResult:
        """Handle one uplink in its own transaction, or in a savepoint of the caller's."""
        return self.process_batch([up])[0]

    def reject_unreadable(self, up: Uplink, problem: Unreadable | str) -> ProcessResult:
        """Record a message that holds no readable frame (bad bridge JSON, a bad name, too big)
        under its reason (a bare string: `malformed`)."""
        return self.process_batch([(up, problem)])[0]

    def process_batch(self, items: Sequence[Item], extra_lines: Sequence[str] = ()) -> list[ProcessResult]:
        """Handle many uplinks in one transaction (the gateway commits per batch of messages),
        or in a savepoint of the caller's. Acks for several frames of one tracker are merged
        into as few ACK frames as fit.

        Fast path: no savepoint per uplink. If any uplink raises (a bug) or any judge fails, the
        batch is rolled back and run again carefully, each uplink and each judge call in its own
        savepoint, so the failure loses only that uplink's (or judge's) changes; the uplink is
        then logged as `internal_error` with its bytes. `extra_lines` (the bridges' health
        points) join the batch's outbox lines in the same transaction."""
        own = not self.conn.in_transaction
        if not own:  # the caller may still roll back: keep no per-device state across batches
            self._cache.clear()
        self.conn.execute("BEGIN IMMEDIATE" if own else "SAVEPOINT segel_batch")
        try:
            self.conn.execute("SAVEPOINT segel_fast")
            try:
                results, batch_counts = self._run(items, extra_lines, careful=False)
                self.conn.execute("RELEASE segel_fast")
            except _Redo:
                self.conn.execute("ROLLBACK TO segel_fast")
                self.conn.execute("RELEASE segel_fast")
                results, batch_counts = self._run(items, extra_lines, careful=True)
        except BaseException:
            self._cache.clear()
            self.conn.execute("ROLLBACK" if own else "ROLLBACK TO segel_batch")
            if not own:
                self.conn.execute("RELEASE segel_batch")
            raise
        try:
            self.conn.execute("COMMIT" if own else "RELEASE segel_batch")
        except BaseException:
            self._cache.clear()
            raise
        self.stages.took("commit", self._t_commit)
        if own:  # committed: what this batch saved is what the database holds
            self._cache.update(self._saved)
        else:
            self._cache.clear()
        self._saved = {}
        self.counts.update(batch_counts)
        return results

    def _run(self, items: Sequence[Item], extra_lines: Sequence[str], careful: bool) -> tuple[list[ProcessResult], Counter[str]]:
        self._lines, self._states, self._acks, self._careful = [], {}, AckBatch(), careful
        self._seen, self._seen_dirty = self._prefetch_seen(items), set()
        results: list[ProcessResult] = []
        batch_counts: Counter[str] = Counter()
        try:
            for item in items:
                up, err = item if isinstance(item, tuple) else (item, None)
                res = self._one(up, err) if careful else self._fast(up, err)
                results.append(res)
                batch_counts[res.outcome] += 1
            self._acks.flush(self._state, int(self.clock()), self._notice, self.conn)
            self._t_commit = time.perf_counter()
            self._write_seen()
            outbox.enqueue(self.conn, self._lines + list(extra_lines))
            store.save_states(self.conn, list(self._states.values()))
            self._saved = {k: _copy_state(v) for k, v in self._states.items()}
            store.bump(self.conn, batch_counts)
        finally:
            self._lines, self._states, self._acks, self._careful = [], {}, AckBatch(), True
            self._seen, self._seen_dirty = {}, set()
        return results, batch_counts

    def _prefetch_seen(self, items: Sequence[Item]) -> dict[tuple[int, int], list]:
        keys = set()
        cache = self._cache  # (empty unless this pipeline owns its transactions)
        for item in items:
            up, err = item if isinstance(item, tuple) else (item, None)
            f = up.frame
            if err is None and len(f) >= 7:
                dev, ctr = int.from_bytes(f[1:4], "big"), int.from_bytes(f[4:7], "big")
                st = cache.get(dev)
                if st is not None and ctr > st.max_counter:
                    continue  # newer than every frame this device had accepted: it has no `seen` row
                keys.add((dev, ctr))
        return store.seen_rows(self.conn, list(keys))

    def _seen_put(self, key: tuple[int, int], row: list) -> None:
        if self._careful and key not in self._undo_seen:
            self._undo_seen[key] = self._seen.get(key)
        self._seen[key] = row
        self._seen_dirty.add(key)

    def _write_seen(self) -> None:
        store.write_seen(self.conn, [(k[0], k[1], *self._seen[k]) for k in self._seen_dirty if k in self._seen])

    def tick(self, now: float) -> list[dict]:
        """Run the judges' timers (silent tracker, overdue boxes) in one transaction."""
        alerts: list[dict] = []
        t0 = time.perf_counter()
        own = not self.conn.in_transaction
        self.conn.execute("BEGIN IMMEDIATE" if own else "SAVEPOINT segel_tick")
        for j in self.judges:
            alerts += self._call_judge(j, "on_tick", now)
        self.conn.execute("COMMIT" if own else "RELEASE segel_tick")
        self.stages.took("timers", t0)
        return alerts

    @property
    def tick_pending(self) -> bool:  # a judge's last tick left due work (bounded per tick): tick again soon
        return any(getattr(getattr(j, "timers", None), "pending", False) for j in self.judges)

    # ---- stages ----------------------------------------------------------------------------

    def _unreadable(self, up: Uplink, err: Unreadable | str) -> ProcessResult:
        u = err if isinstance(err, Unreadable) else Unreadable(RejectReason.MALFORMED, err)
        return self._reject(ProcessResult(up), u.reason, u.detail, None)

    def _fast(self, up: Uplink, err: Unreadable | str | None) -> ProcessResult:
        self._undo, self._undo_seen = {}, {}
        try:
            if err is not None:
                return self._unreadable(up, err)
            return self._process(up)
        except _Redo:
            raise
        except Exception as e:
            raise _Redo() from e

    def _one(self, up: Uplink, err: Unreadable | str | None) -> ProcessResult:
        self.conn.execute("SAVEPOINT segel_uplink")
        n_lines = len(self._lines)
        self._undo, self._undo_seen = {}, {}
        try:
            if err is not None:
                res = self._unreadable(up, err)
            else:
                res = self._process(up)
        except Exception as e:  # a bug must not lose the frame nor stop the gateway
            log.exception("internal error on uplink from %s (%s); kept in the security log", up.topic, up.frame.hex())
            self.conn.execute("ROLLBACK TO segel_uplink")
            del self._lines[n_lines:]
            for dev, before in self._undo.items():  # per-device state as it was before this uplink
                if before is None:
                    self._states.pop(dev, None)
                else:
                    self._states[dev] = before
            for key, row in self._undo_seen.items():
                if row is None:
                    self._seen.pop(key, None)
                    self._seen_dirty.discard(key)
                else:
                    self._seen[key] = row
            res = ProcessResult(up)
            self._reject(res, INTERNAL_ERROR, f"{type(e).__name__}: {e}", None)
        self.conn.execute("RELEASE segel_uplink")
        return res

    def _device(self, dev_id: int, fresh: bool = False) -> Device | None:
        now = time.monotonic()
        hit = self._devices.get(dev_id)
        if hit is None or fresh or now - hit[0] > self.registry_ttl_s:
            hit = (now, self.registry.get(dev_id))
            self._devices[dev_id] = hit
        return hit[1]

    def _state(self, dev_id: int) -> store.DeviceState:
        st = self._states.get(dev_id)
        if self._careful and dev_id not in self._undo:  # (the fast path redoes the batch instead)
            self._undo[dev_id] = _copy_state(st) if st is not None else None
        if st is None:
            cached = self._cache.get(dev_id)
            st = _copy_state(cached) if cached is not None else store.load_state(self.conn, dev_id)
            self._states[dev_id] = st
        return st

    def _process(self, up: Uplink) -> ProcessResult:
        t0 = time.perf_counter()
        res = ProcessResult(up)
        frame = up.frame
        try:
            hdr = protocol.parse_header(frame)
        except FrameError as e:
            dev = int.from_bytes(frame[1:4], "big") if len(frame) >= 4 else None
            return self._reject(res, e.reason, e.detail, dev)
        dev_id = hdr.device_id
        if hdr.is_downlink:
            return self._reject(res, RejectReason.BAD_TYPE, f"downlink frame type {hdr.type} sent as an uplink", dev_id)
        src = up.source
        if src is not None and src.kind == TRACKER and src.id != device_hex(dev_id):
            return self._reject(res, WRONG_TOPIC, f"frame of device {device_hex(dev_id)} on topic {up.topic}", dev_id)
        device = self._device(dev_id)
        if device is None:
            device = self._device(dev_id, fresh=True)
        if device is None:
            return self._reject(res, RejectReason.UNKNOWN_DEVICE, f"device {device_hex(dev_id)} is not registered", dev_id)
        state = self._state(dev_id)
        codec = self._codec(dev_id, device.key_epoch)
        try:
            codec.verify(frame, hdr)
        except FrameError as e:
            fresh = self._device(dev_id, fresh=True) if e.reason == RejectReason.BAD_MAC else None
            if fresh is None or fresh.key_epoch == device.key_epoch:
                return self._reject(res, e.reason, e.detail, dev_id)
            device = fresh  # the tracker was re-keyed since we cached its record
            codec = self._codec(dev_id, device.key_epoch)
            try:
                codec.verify(frame, hdr)
            except FrameError as e2:
                return self._reject(res, e2.reason, e2.detail, dev_id)
        t1 = self.stages.took("verify", t0)
        try:
            decoded = codec.decode(frame, hdr)
        except FrameError as e:
            return self._reject(res, e.reason, e.detail, dev_id)
        self.stages.took("decode", t1)
        if state.key_epoch != device.key_epoch:  # re-imaged tracker: its counters start again
            store.forget_seen(self.conn, dev_id)
            for key in [k for k in self._seen if k[0] == dev_id]:
                self._undo_seen.setdefault(key, self._seen[key])
                del self._seen[key]
                self._seen_dirty.discard(key)
            state.key_epoch, state.max_counter = device.key_epoch, -1
        if hdr.counter <= state.max_counter - self.window:
            return self._reject(res, RejectReason.REPLAY, f"counter {hdr.counter} of {device_hex(dev_id)} is older than "
                                f"the replay window ({state.max_counter} - {self.window})", dev_id)
        digest = hashlib.blake2b(frame, digest_size=16).digest()
        m = up.meta
        key = (dev_id, hdr.counter)
        seen = self._seen.get(key)
        self._acks.heard(dev_id, up)
        if seen is None:
            self._seen_put(key, [digest, up.received_at, m.rssi if m else None, m.snr if m else None,
                                 m.base_id if m else None, m.bridge_id if m else None, 1])
            return self._accept(res, up, decoded, device.box_id, codec, state)
        if seen[0] == digest:
            return self._duplicate(res, up, hdr, seen, codec, state)
        return self._reject(res, RejectReason.REPLAY,
                            f"counter {hdr.counter} of {device_hex(dev_id)} was already accepted with other bytes", dev_id)

    def _accept(self, res: ProcessResult, up: Uplink, fr: protocol.Frame, box_id: str | None,
                keys: FrameCodec, state: store.DeviceState) -> ProcessResult:
        """A first-seen frame (its `seen` row is already written)."""
        hdr = fr.header
        m = up.meta
        newest = hdr.counter > state.max_counter
        if newest:
            state.max_counter = hdr.counter
            if hdr.counter % 64 == 0:
                store.forget_seen(self.conn, hdr.device_id, hdr.counter - self.window)
        event_time = float(hdr.time) if hdr.time else up.received_at
        quality: frozenset[str] = frozenset()
        body = fr.body
        if isinstance(body, protocol.Position):
            last = None
            if state.last_fix_time is not None and state.last_lat is not None and state.last_lon is not None:
                last = (state.last_fix_time, state.last_lat, state.last_lon)
            quality = self.sanity.marks(body, event_time, last)
            if not quality and event_time >= (state.last_fix_time or 0.0):
                state.last_fix_time, state.last_lat, state.last_lon = event_time, body.lat, body.lon
        elif isinstance(body, protocol.Seal):
            if event_time >= (state.last_seal_time or 0.0):
                state.last_seal_event, state.last_seal_time = body.event_name, event_time
        elif isinstance(body, protocol.Status):
            state.last_battery_mv = body.battery_mv
        elif isinstance(body, protocol.Applied):  # the tracker confirms a device command
            commands.applied(self.conn, hdr.device_id, body, up.received_at)
        if newest and isinstance(body, (protocol.Position, protocol.Seal, protocol.Status)):
            state.last_flags = body.flags
        state.last_seen_at = max(state.last_seen_at or 0.0, up.received_at)
        src = up.source
        if src is not None:
            state.last_route = TRACKER if src.kind == TRACKER else f"{src.kind}:{src.id}"
        acc = Accepted(hdr.device_id, hdr.counter, hdr.time, up.received_at, fr, m, box_id, quality)
        res.accepted = acc
        self._lines.extend(lines.telemetry(acc))
        if self.judges:
            t0 = time.perf_counter()
            for j in self.judges:
                res.alerts += self._call_judge(j, "on_accepted", acc)
            self.stages.took("rules", t0)
        self._acks.want(res, hdr.device_id, hdr.counter, keys)
        return res

    def _duplicate(self, res: ProcessResult, up: Uplink, hdr: protocol.Header, seen: list,
                   keys: FrameCodec, state: store.DeviceState) -> ProcessResult:
        """The same bytes again: a second base station, or a re-send after a lost ack."""
        res.duplicate = True
        m = up.meta
        best = RxMeta(rssi=seen[2], snr=seen[3], base_id=seen[4], bridge_id=seen[5])
        row = list(seen)
        row[6] = (row[6] or 1) + 1
        if m is not None and m.better_than(best):
            row[2:6] = [m.rssi, m.snr, m.base_id, m.bridge_id]
        self._seen_put((hdr.device_id, hdr.counter), row)
        if m is not None:
            line = lines.rx(hdr.device_id, hdr.counter, lines.frame_ts_ns(hdr.time, seen[1], hdr.counter), m)
            if line:
                self._lines.append(line)
        # Heard again well after the first reception: the tracker missed our ack, send it again.
        if up.received_at - seen[1] >= self.reack_after_s and self.guard.allow_reack(hdr.device_id, up.received_at):
            self._acks.want(res, hdr.device_id, hdr.counter, keys)
        return res

    def _reject(self, res: ProcessResult, reason: str, detail: str, dev_id: int | None) -> ProcessResult:
        up = res.uplink
        rej = Rejected(up.received_at, up.topic, up.frame, reason, detail, dev_id)
        res.rejected = rej
        row = store.log_security(self.conn, up.received_at, up.topic, reason, detail, dev_id, up.frame)
        self._lines.append(lines.rejected(reason, dev_id, up.topic, up.received_at, row))
        self._log_reject(res, reason, dev_id, detail)
        for j in self.judges:
            res.alerts += self._call_judge(j, "on_rejected", rej)
        return res

    # ---- helpers ---------------------------------------------------------------------------

    LOG_REJECTS_PER_MINUTE = 10

    def _log_reject(self, res: ProcessResult, reason: str, dev_id: int | None, detail: str) -> None:
        up = res.uplink
        if reason != RejectReason.BAD_MAC:
            self.guard.log_reject(reason, up.topic, detail)
            return
        keys = [f"device {device_hex(dev_id)}"] if dev_id is not None else []
        if up.source is not None and up.source.kind == BRIDGE:
            keys.append(f"bridge {up.source.id}")
        for key, n in self.guard.bad_mac(keys, up.topic, detail):
            kind, _, name = key.partition(" ")
            self._notice(res, Notice(BAD_MAC_FLOOD, up.received_at, dev_id if kind == "device" else None,
                                     name if kind == "bridge" else None,
                                     {"count": n, "window_s": self.guard.window_s}))

    def _notice(self, res: ProcessResult, n: Notice) -> None:
        """Hand a notice to every judge that takes notices (they turn them into alerts)."""
        for j in self.judges:
            if hasattr(j, "on_notice"):
                res.alerts += self._call_judge(j, "on_notice", n)

    def _codec(self, dev_id: int, epoch: int) -> FrameCodec:
        c = self._codecs.get((dev_id, epoch))
        if c is None:
            c = FrameCodec(protocol.DeviceKeys.from_device_key(self.keyring.device_key(dev_id, epoch)))
            self._codecs[(dev_id, epoch)] = c
        return c

    def _call_judge(self, judge: Judge, method: str, arg: object) -> list[dict]:
        """One failing judge is logged and rolled back; the frame and the other judges go on.
        (On the fast path a failure makes the whole batch run again carefully.)"""
        if not self._careful:
            try:
                return list(getattr(judge, method)(arg, self.conn) or [])
            except Exception as e:
                raise _Redo() from e
        self.conn.execute("SAVEPOINT segel_judge")
        try:
            out = getattr(judge, method)(arg, self.conn) or []
        except Exception:
            log.exception("judge %s.%s failed; its changes for this frame were rolled back",
                          type(judge).__name__, method)
            self.conn.execute("ROLLBACK TO segel_judge")
            self.conn.execute("RELEASE segel_judge")
            return []
        self.conn.execute("RELEASE segel_judge")
        return list(out)
