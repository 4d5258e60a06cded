"""Print the time-on-air table of docs/protocol.md from the firmware's own airtime code.

    python tools/airtime_table.py        (a test checks that the doc holds exactly this table)
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "firmware"))

from segelfw import airtime, protocol  # noqa: E402

FRAMES = [("position", protocol.T_POSITION), ("seal", protocol.T_SEAL), ("status", protocol.T_STATUS),
          ("ack (down)", protocol.T_ACK), ("config (down)", protocol.T_CONFIG)]


def table() -> str:
    rows = ["| frame | bytes | " + " | ".join(f"SF{sf}" for sf in range(7, 13)) + " |",
            "|---|---|" + "---|" * 6]
    for name, t in FRAMES:
        n = protocol.HEADER_LEN + protocol.BODY_LEN[t] + protocol.MAC_LEN
        cells = []
        for sf in range(7, 13):
            us = airtime.time_on_air_us(sf, n)
            mark = "" if us <= airtime.DWELL_LIMIT_US else " ✗"
            cells.append(f"{us / 1000:.1f} ms{mark}")
        rows.append(f"| {name} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(table())
