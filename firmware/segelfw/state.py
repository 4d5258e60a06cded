# What the tracker remembers across deep sleep: one JSON object in RTC memory, CRC-protected.
# RTC memory survives deep sleep, soft and watchdog resets, and is lost on power loss; a blob
# whose CRC does not match is treated as lost. Everything here can be rebuilt from flash
# (counter reservation, seal log) or is a cache (last fix, timers).
import json
import struct

from segelfw import crcfile

_MAGIC = b"SG1"


class RtcState:
    def __init__(self, rtc):
        self.rtc = rtc
        self.d = {}
        self.valid = False
        raw = rtc.read()
        if raw and len(raw) > 7 and bytes(raw[:3]) == _MAGIC:
            (c,) = struct.unpack(">I", raw[3:7])
            body = bytes(raw[7:])
            if crcfile.crc(body) == c:
                try:
                    self.d = json.loads(body)
                    self.valid = isinstance(self.d, dict)
                except ValueError:
                    self.d = {}
        if not self.valid:
            self.d = {}

    def get(self, k, default=None):
        return self.d.get(k, default)

    def __getitem__(self, k):
        return self.d[k]

    def __setitem__(self, k, v):
        self.d[k] = v

    def __contains__(self, k):
        return k in self.d

    def save(self):
        body = json.dumps(self.d).encode()
        self.rtc.write(_MAGIC + struct.pack(">I", crcfile.crc(body)) + body)
