"""The attacker of the forged-frame incident: someone near a depot with a radio or a WiFi sniffer.

They hold what they could record (a tracker's earlier frames) but not its key, and send:
a captured frame with its position bytes changed (the MAC no longer verifies), and frames they
made up under the tracker's device id with fresh counters and a guessed MAC. None can pass the
gateway's MAC check; each must raise a security alert for that device.
"""

from __future__ import annotations

import random

from segel import protocol


def forged_frames(device_id: int, captured: list[bytes], n: int, seed: int = 0) -> list[bytes]:
    rng = random.Random(seed)
    out: list[bytes] = []
    for i in range(n):
        if captured and i % 2 == 0:
            f = bytearray(captured[(i // 2) % len(captured)])
            f[protocol.HEADER_LEN + rng.randrange(6)] ^= 1 << rng.randrange(8)  # nudge a lat/lon byte
            out.append(bytes(f))
        else:
            counter = rng.randrange(1 << 20, 1 << 23)
            t = int.from_bytes(captured[-1][7:11], "big") if captured else 0
            hdr = bytes(((protocol.VERSION << 4) | protocol.FrameType.POSITION,)) + device_id.to_bytes(3, "big") \
                + counter.to_bytes(3, "big") + t.to_bytes(4, "big")
            out.append(hdr + rng.randbytes(protocol.BODY_LEN[protocol.FrameType.POSITION] + protocol.MAC_LEN))
    return out
