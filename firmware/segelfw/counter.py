# Frame counters that never repeat under a key: not after deep sleep, reboot, brown-out or
# power cut (docs/firmware.md "Counters").
#
# - The next counter lives in RTC memory (fast, survives deep sleep and resets).
# - Flash holds a reservation: `reserved_end`, the first counter NOT yet reserved. A counter is
#   only handed out when it is below reserved_end, and a new block is written to flash BEFORE any
#   counter in it is used. After RTC memory is lost (power cut), counting resumes at reserved_end:
#   at most one block is skipped, none is reused.
# - RTC memory is updated BEFORE a counter is returned, so a crash after using it cannot rewind.
# - The reservation file names the key epoch; a new epoch (re-provisioned key) starts at 0.
import struct

from segelfw import crcfile

BLOCK = 64
COUNTER_MAX = 0xFFFFFF
_K_RES = 1


class CounterExhausted(Exception):
    pass


class CounterStore:
    def __init__(self, path, rtc_state, key_epoch):
        self.path = path
        self.st = rtc_state
        self.epoch = key_epoch
        self.flash_writes = 0
        self.resumed_from_flash = False
        if self.st.get("ctr_epoch") != key_epoch or "ctr_next" not in self.st or "ctr_end" not in self.st:
            end = self._read_flash()
            self.st["ctr_next"] = end
            self.st["ctr_end"] = end
            self.st["ctr_epoch"] = key_epoch
            self.st.save()
            self.resumed_from_flash = True

    def _read_flash(self):
        best = [0]

        def take(kind, payload, off):
            if kind == _K_RES and len(payload) == 6:
                epoch, end = struct.unpack(">HI", payload)
                if epoch == self.epoch and end > best[0]:
                    best[0] = end

        crcfile.scan(self.path, take)
        return best[0]

    def _reserve(self, end):
        # replace atomically (never a torn file); one record: epoch u16, reserved_end u32
        crcfile.replace(self.path, crcfile.pack(_K_RES, struct.pack(">HI", self.epoch, end)))
        self.flash_writes += 1

    def peek(self):
        return self.st["ctr_next"]

    def next(self):
        n = self.st["ctr_next"]
        if n > COUNTER_MAX:
            raise CounterExhausted("counter exhausted: re-provision the tracker with a new key epoch")
        if n >= self.st["ctr_end"]:
            end = min(n + BLOCK, COUNTER_MAX + 1)
            self._reserve(end)
            self.st["ctr_end"] = end
        self.st["ctr_next"] = n + 1
        self.st.save()  # before the counter is used
        return n
