"""Flood guards of the ingest stage: a per-tracker budget for re-acks, a watch on bad MACs per
tracker and per bridge, and rejection logs that a flood cannot bury.

- **Re-acks** (acks for frames already accepted: a lost ack, or someone replaying an overheard
  frame) each spend one of the tracker's 2^24 downlink counters. A token bucket per tracker
  (`reack_burst` tokens, refilled over `reack_refill_s`) bounds what replays can spend: at the
  defaults 8 a minute, so 16.7 million counters last more than four years of non-stop replaying,
  while a tracker that missed an ack still gets one at its next resend. Acks for new frames are
  never limited (only the tracker's key can make those).
- **Bad MACs** are counted per tracker and per bridge in windows of `window_s`; the first of a
  window is logged, the rest are summed into one line when the window ends, and crossing
  `alert_after` in one window yields a notice (the custody judge raises `bad_mac_flood`): someone
  is trying.
- **Other rejections** are logged at most `per_minute` times a minute per reason.

All of it is memory only: a restart forgets the windows, which at worst delays an alert by one window.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from segel.messages import BAD_MAC_FLOOD, BRIDGE, Notice, Uplink

log = logging.getLogger("segel.ingest.pipeline")


def _safe(text: str, limit: int = 120) -> str:
    """A topic or detail from the wire, safe for one log line (no newline can forge another)."""
    cut = text[:limit] + ("..." if len(text) > limit else "")
    return cut if cut.isprintable() else repr(cut)


@dataclass
class _Window:
    start: float
    count: int = 0
    alerted: bool = False
    topics: set[str] = field(default_factory=set)


class Guard:
    def __init__(self, reack_burst: int = 8, reack_refill_s: float = 60.0, window_s: float = 600.0,
                 alert_after: int = 20, per_minute: int = 10, clock: Callable[[], float] = time.monotonic) -> None:
        self.reack_burst = reack_burst
        self.reack_refill_s = reack_refill_s
        self.window_s = window_s
        self.alert_after = alert_after
        self.per_minute = per_minute
        self.clock = clock
        self._tokens: dict[int, tuple[float, float]] = {}  # device -> (tokens, at)
        self._mac: dict[str, _Window] = {}  # "device 000101" / "bridge ppk-1" -> window
        self._logs: dict[str, tuple[float, int, int]] = {}  # reason -> (minute start, shown, hidden)
        self.reacks_refused = 0

    # ---- re-acks -------------------------------------------------------------------------------

    def allow_reack(self, device_id: int, now: float) -> bool:
        """Spend one of the tracker's re-ack tokens, if it has one."""
        tokens, at = self._tokens.get(device_id, (float(self.reack_burst), now))
        tokens = min(float(self.reack_burst), tokens + max(0.0, now - at) * self.reack_burst / self.reack_refill_s)
        ok = tokens >= 1.0
        if ok:
            tokens -= 1.0
        else:
            self.reacks_refused += 1
        if len(self._tokens) > 500_000:  # a flood of device ids must not grow this without bound
            self._tokens.clear()
        self._tokens[device_id] = (tokens, now)
        return ok

    # ---- bad MACs ------------------------------------------------------------------------------

    def bad_mac(self, keys: list[str], topic: str, detail: str) -> list[tuple[str, int]]:
        """Count one bad MAC under each key ("device 000101", "bridge ppk-1"); returns the keys
        whose window just crossed `alert_after`, with their counts."""
        now = self.clock()
        crossed = []
        for key in keys:
            w = self._mac.get(key)
            if w is not None and now - w.start >= self.window_s:
                self._close(key, w)
                w = None
            if w is None:
                if len(self._mac) > 100_000:
                    self._mac.clear()
                w = self._mac[key] = _Window(now)
                log.warning("rejected bad_mac for %s from %s: %s (further ones in the next %.0f min are counted, "
                            "then summed up)", key, _safe(topic), _safe(detail), self.window_s / 60)
            w.count += 1
            if len(w.topics) < 5:
                w.topics.add(_safe(topic, 60))
            if w.count >= self.alert_after and not w.alerted:
                w.alerted = True
                crossed.append((key, w.count))
        return crossed

    def bad_mac_notices(self, dev_id: int | None, up: Uplink, detail: str) -> list[Notice]:
        """Count a bad MAC for its tracker and the bridge it came through; a notice for each whose
        window just crossed `alert_after` (the custody judge raises bad_mac_flood)."""
        keys = [f"device {dev_id:06x}"] if dev_id is not None else []
        if up.source is not None and up.source.kind == BRIDGE:
            keys.append(f"bridge {up.source.id}")
        out = []
        for key, n in self.bad_mac(keys, up.topic, detail):
            kind, _, name = key.partition(" ")
            out.append(Notice(BAD_MAC_FLOOD, up.received_at, dev_id if kind == "device" else None,
                              name if kind == "bridge" else None, {"count": n, "window_s": self.window_s}))
        return out

    def _close(self, key: str, w: _Window) -> None:
        if w.count > 1:
            log.warning("... %d frames with a bad MAC for %s in %.0f min (topics: %s); see `segel status --security`",
                        w.count, key, self.window_s / 60, ", ".join(sorted(w.topics)))

    # ---- other rejections ----------------------------------------------------------------------

    def log_reject(self, reason: str, topic: str, detail: str) -> None:
        """Each rejection is counted and kept in the security log anyway; the operator's log shows
        at most `per_minute` per reason per minute (a flood of garbage must not bury it)."""
        now = self.clock()
        start, shown, hidden = self._logs.get(reason, (now, 0, 0))
        if now - start >= 60:
            if hidden:
                log.warning("... and %d more %s rejections in the last minute (see `segel status --security`)",
                            hidden, reason)
            start, shown, hidden = now, 0, 0
        if shown < self.per_minute:
            log.warning("rejected %s from %s: %s", reason, _safe(topic), _safe(detail, 300))
            shown += 1
        else:
            hidden += 1
        self._logs[reason] = (start, shown, hidden)
