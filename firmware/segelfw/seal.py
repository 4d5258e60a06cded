# The seal: wire loop, lid switch, optional case switch (docs/firmware.md "Seal").
#
# - Debounce: an edge counts when its level then holds for DEBOUNCE_MS; chatter shorter than
#   that is dropped. A brief open-and-close (longer than the debounce) is two events, both kept.
# - Latched tamper: any input opening while the seal is armed sets TAMPER; only a technician
#   clears it (rearm(): a signed config downlink with the REARM flag, or the USB re-arm file).
# - Append-only event log on flash (CRC records). Each record carries the whole state after the
#   event, so the state after a power cut is simply the last good record.
# - Unexplained wake: a seal pin woke the chip but nothing shows (MicroPython before 1.29 cannot
#   say which pin; the input opened and closed again before main.py ran): logged as
#   E_WAKE_UNEXPLAINED, and TAMPER is latched when the seal was armed. A slow RC filter (tau ~100 ms,
#   docs/hardware.md) keeps switch bounce and noise from waking the chip in the first place.
import struct

from segelfw import protocol as P
from segelfw import crcfile

DEBOUNCE_MS = 50
ROTATE_BYTES = 16384
_K_EVENT = 1

_BIT = {"loop": 1, "lid": 2, "case": 4}
_ARMED = 0x80
_OPEN_EVENT = {"loop": P.E_LOOP_OPEN, "lid": P.E_LID_OPEN, "case": P.E_CASE_OPEN}
_CLOSE_EVENT = {"loop": P.E_LOOP_CLOSED, "lid": P.E_LID_CLOSED}


class Seal:
    def __init__(self, log_path, names, rtc_state=None):
        self.path = log_path
        self.names = tuple(names)
        self.st = rtc_state
        self.pending = []  # raw edges not yet settled: (name, is_open, unix, ticks)
        self.new_events = []  # (event, seq, flags, unix) accepted since construction
        cached = rtc_state.get("seal") if rtc_state is not None else None
        if cached:
            self.seq, self.mask, self.tamper, self.log_size = cached
        else:
            self.seq, self.mask, self.tamper, self.log_size = 0, None, False, 0
            self._replay()

    # --- state ----------------------------------------------------------------------------------
    def _replay(self):
        last = [None]

        def take(kind, payload, off):
            if kind == _K_EVENT and len(payload) == 11:
                last[0] = payload

        good, size = crcfile.scan(self.path, take)
        self.log_size = good
        if size != good:  # torn tail after a power cut: keep the good part, drop the rest
            self._rewrite_good(good)
        if last[0] is not None:
            seq, ev, flags, t, mask = struct.unpack(">IBBIB", last[0])
            self.seq, self.mask, self.tamper = seq, mask, bool(flags & P.F_TAMPER)

    def _rewrite_good(self, good):
        f = open(self.path, "rb")
        try:
            data = f.read(good)
        finally:
            f.close()
        crcfile.replace(self.path, data)

    def _save(self):
        if self.st is not None:
            self.st["seal"] = [self.seq, self.mask, self.tamper, self.log_size]

    @property
    def armed(self):
        return bool(self.mask and self.mask & _ARMED)

    def is_open(self, name):
        return bool(self.mask and self.mask & _BIT[name])

    def flags(self):
        f = 0
        if self.is_open("loop"):
            f |= P.F_LOOP_OPEN
        if self.is_open("lid"):
            f |= P.F_LID_OPEN
        if self.is_open("case"):
            f |= P.F_CASE_OPEN
        if self.tamper:
            f |= P.F_TAMPER
        return f

    # --- events ---------------------------------------------------------------------------------
    def _log(self, event, unix):
        self.seq += 1
        fl = self.flags()
        rec = crcfile.pack(_K_EVENT, struct.pack(">IBBIB", self.seq, event, fl, unix & 0xFFFFFFFF, self.mask or 0))
        if self.log_size + len(rec) > ROTATE_BYTES:
            import os

            crcfile.remove(self.path + ".old")
            os.rename(self.path, self.path + ".old")
            self.log_size = 0
        crcfile.append(self.path, rec)
        self.log_size += len(rec)
        self._save()
        if event:
            self.new_events.append((event, self.seq, fl, unix))

    def _set(self, name, is_open, unix):
        if self.mask is None:
            self.mask = 0
        if is_open == self.is_open(name):
            return
        if is_open:
            self.mask |= _BIT[name]
            if self.armed:
                self.tamper = True
            self._log(_OPEN_EVENT[name], unix)
        else:
            self.mask &= ~_BIT[name]
            self._log(_CLOSE_EVENT.get(name, 0), unix)

    def poll(self, inputs, now_unix, now_ticks):
        """Take latched edges and current levels; log settled changes. -> events accepted now."""
        start = len(self.new_events)
        self.pending.extend(inputs.events())
        if self.mask is None:  # first boot: today's levels are the starting point, not events
            lv = inputs.levels()
            self.mask = 0
            for n in self.names:
                if lv.get(n):
                    self.mask |= _BIT[n]
            self._save()
        keep = []
        for n in self.names:
            edges = [e for e in self.pending if e[0] == n]
            for i, e in enumerate(edges):
                until = edges[i + 1][3] if i + 1 < len(edges) else now_ticks
                if until - e[3] >= DEBOUNCE_MS:
                    self._set(n, e[1], e[2])
                elif i + 1 == len(edges):
                    keep.append(e)  # not settled yet: look again on the next poll
        self.pending = keep
        lv = inputs.levels()
        for n in self.names:  # a change no edge explained (missed while the chip was booting)
            if not any(e[0] == n for e in keep) and bool(lv.get(n)) != self.is_open(n):
                self._set(n, bool(lv.get(n)), now_unix)
        pin_wake = getattr(inputs, "pin_wake", None)
        if pin_wake is not None and pin_wake() and len(self.new_events) == start and not keep:
            if self.armed:
                self.tamper = True
            self._log(P.E_WAKE_UNEXPLAINED, now_unix)
        return self.new_events[start:]

    def settled(self):
        return not self.pending

    def rearm(self, now_unix, levels=None):
        """Technician re-arm (or first arm). -> None if done, else the reason it was refused."""
        if levels is not None:
            for n in self.names:
                if levels.get(n):
                    return "cannot arm: " + n + " is open; close it first"
        if self.mask is None:
            self.mask = 0
        if not self.armed:
            self.mask |= _ARMED
            self.tamper = False
            self._log(P.E_ARMED, now_unix)
            return None
        if not self.tamper:
            return "already armed, no tamper to clear"
        self.tamper = False
        self._log(P.E_REARMED, now_unix)
        return None

    def power_restored(self, now_unix):
        if self.armed:
            self._log(P.E_POWER_RESTORED, now_unix)

    def log(self):
        """-> list of (seq, event, flags, unix) from the flash log (old + current), oldest first."""
        out = []

        def take(kind, payload, off):
            if kind == _K_EVENT and len(payload) == 11:
                seq, ev, fl, t, _ = struct.unpack(">IBBIB", payload)
                out.append((seq, ev, fl, t))

        crcfile.scan(self.path + ".old", take)
        crcfile.scan(self.path, take)
        return out
