# The flash queue: every frame stays on flash until the gateway acknowledges its counter.
#
# One append-only file of CRC records (segelfw.crcfile): FRAME records hold an encoded frame,
# DROP records name counters that were acknowledged or dropped. A power cut at any byte of an
# append loses at most that record (the scan stops at the torn tail, and the next write compacts
# instead of appending after garbage). Compaction writes the live frames to a new file and
# renames it over the old one (atomic on LittleFS).
#
# Order: seal frames leave before everything else, oldest first; then positions and status
# frames, oldest first. When full, the oldest routine frame (position or status) is dropped;
# a seal frame is only dropped when the queue holds nothing but seal frames.
import struct

from segelfw import crcfile

K_FRAME = 1
K_DROP = 2
_T_SEAL = 2
RECORD = crcfile.OVERHEAD + 24  # a 24-byte uplink frame on flash


class Queue:
    def __init__(self, path, capacity_bytes=16384):
        self.path = path
        self.capacity = max(4, capacity_bytes // RECORD)  # frames held at most
        # one entry per live FRAME record, in append order (small ints: no heap per entry on MicroPython)
        self.offsets = []  # file offset
        self.counters = []
        self.types = []
        self.dropped = 0  # frames dropped because the queue was full (since boot)
        self.torn = False
        self._load()

    # --- loading ------------------------------------------------------------------------------
    def _load(self):
        if crcfile.exists(self.path + ".new"):  # a compaction that never reached its rename
            crcfile.remove(self.path + ".new")
        self.offsets = []
        self.counters = []
        self.types = []

        def take(kind, payload, off):
            if kind == K_FRAME and len(payload) >= 15:
                self.offsets.append(off)
                self.counters.append((payload[4] << 16) | (payload[5] << 8) | payload[6])
                self.types.append(payload[0] & 0x0F)
            elif kind == K_DROP:
                for i in range(0, len(payload) - 2, 3):
                    self._forget((payload[i] << 16) | (payload[i + 1] << 8) | payload[i + 2])

        good, size = crcfile.scan(self.path, take)
        self.file_size = good
        self.torn = size != good
        if self.torn:
            self.compact()  # never append after a torn tail

    def _forget(self, counter):
        for i in range(len(self.counters)):
            if self.counters[i] == counter:
                self.offsets.pop(i)
                self.counters.pop(i)
                self.types.pop(i)
                return True
        return False

    # --- reading ------------------------------------------------------------------------------
    def __len__(self):
        return len(self.counters)

    def depth(self):
        return len(self.counters)

    def frame_at(self, i):
        f = open(self.path, "rb")
        try:
            f.seek(self.offsets[i])
            head = f.read(3)
            return f.read(head[2])
        finally:
            f.close()

    def order(self):
        """Indexes in sending order: seal frames first, then the rest, each oldest first."""
        seal = [i for i in range(len(self.types)) if self.types[i] == _T_SEAL]
        rest = [i for i in range(len(self.types)) if self.types[i] != _T_SEAL]
        return seal + rest

    def pending(self, limit=None):
        """-> list of (counter, frame bytes) in sending order."""
        out = []
        for i in self.order():
            if limit is not None and len(out) >= limit:
                break
            out.append((self.counters[i], self.frame_at(i)))
        return out

    def frames(self):
        return self.pending()

    # --- writing ------------------------------------------------------------------------------
    def put(self, frame):
        """Store one encoded frame; returns the counters dropped to make room (oldest routine first)."""
        victims = []
        while len(self.counters) - len(victims) >= self.capacity:
            v = self._victim(victims)
            if v is None:
                break
            victims.append(v)
        if victims:
            self._drop_record(victims)
            self.dropped += len(victims)
        off = self.file_size
        rec = crcfile.pack(K_FRAME, frame)
        crcfile.append(self.path, rec)
        self.file_size += len(rec)
        self.offsets.append(off)
        self.counters.append((frame[4] << 16) | (frame[5] << 8) | frame[6])
        self.types.append(frame[0] & 0x0F)
        self._maybe_compact()
        return victims

    def _victim(self, exclude):
        for i in range(len(self.types)):  # oldest routine frame
            if self.types[i] != _T_SEAL and self.counters[i] not in exclude:
                return self.counters[i]
        for i in range(len(self.types)):  # only seal frames left: the oldest of them
            if self.counters[i] not in exclude:
                return self.counters[i]
        return None

    def ack(self, counters):
        """Forget acknowledged counters; returns how many frames were freed."""
        gone = [c for c in counters if c in self.counters]
        if gone:
            self._drop_record(gone)
            self._maybe_compact()
        return len(gone)

    def _drop_record(self, counters):
        for c in counters:
            self._forget(c)
        payload = b"".join(struct.pack(">I", c)[1:] for c in counters[:85])
        rec = crcfile.pack(K_DROP, payload)
        crcfile.append(self.path, rec)
        self.file_size += len(rec)
        if len(counters) > 85:
            self._drop_record(counters[85:])

    def _maybe_compact(self):
        # keep the file (and the scan at every boot) small: empty it once everything is
        # acknowledged, and rewrite it when dead records outweigh the live ones
        live = len(self.counters) * RECORD
        if (not self.counters and self.file_size) or self.file_size > 2 * live + 4096:
            self.compact()

    def compact(self):
        # stream the live frames into path.new, then rename over the old file (atomic on LittleFS)
        import os

        tmp = self.path + ".new"
        out = open(tmp, "wb")
        try:
            for i in range(len(self.counters)):
                out.write(crcfile.pack(K_FRAME, self.frame_at(i)))
        finally:
            out.close()
        os.rename(tmp, self.path)
        self.torn = False
        self._load()
