"""What the gateway database holds per frame, and pruning what judging no longer needs.

`stats(conn)`: bytes per table (SQLite's dbstat when compiled in, else the whole file), frames
accepted (lifetime counter), bytes per frame in all and per table.

`prune(conn, keep_days, now)`: removes the custody judge's copies of frames received more than
`keep_days` ago (`judge_frames`: what a late frame would be judged against). Per device the cut
falls on a stored rule state (a checkpoint), which is kept, so a late frame newer than the cut is
still judged exactly; one older than it is recorded (ledger, InfluxDB) but no longer judged (its
`judge_devices.floor`). Kept whole, by design: the custody ledger (every box's hash chain stays
verifiable; nothing of it is removed), alerts and their history, findings, the `seen` table (it
is what refuses a re-sent frame twice; the pipeline already bounds it by the replay window),
device state and the registry. The outbox empties itself as InfluxDB takes the lines.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from segel.custody.judge import ensure_schema

DAY = 86400.0


@dataclass
class Stats:
    path: str
    file_bytes: int
    frames: int  # frames accepted over the database's life
    tables: dict[str, int] = field(default_factory=dict)  # table (with its indexes) -> bytes
    exact: bool = True  # per-table figures from dbstat

    @property
    def used_bytes(self) -> int:
        return sum(self.tables.values()) if self.tables else self.file_bytes

    def per_frame(self, nbytes: int) -> float:
        return nbytes / self.frames if self.frames else 0.0

    def report(self) -> str:
        out = [f"{self.path}: {self.file_bytes / 2**20:,.1f} MB on disk, {self.used_bytes / 2**20:,.1f} MB in use, "
               f"{self.frames:,} frames accepted: {self.per_frame(self.used_bytes):,.0f} bytes per frame"]
        if self.tables:
            out.append(f"  {'table (with its indexes)':<28} {'MB':>9} {'bytes/frame':>12}")
            for t, b in sorted(self.tables.items(), key=lambda kv: -kv[1])[:14]:  # the largest
                out.append(f"  {t:<28} {b / 2**20:9.1f} {self.per_frame(b):12,.0f}")
        elif not self.exact:
            out.append("  (this SQLite has no dbstat table: no figures per table)")
        return "\n".join(out)


def _table_of(conn: sqlite3.Connection) -> dict[str, str]:
    """index name -> its table (autoindexes included)."""
    return {name: tbl for name, tbl in conn.execute("SELECT name, tbl_name FROM sqlite_schema WHERE type IN ('table', 'index')")}


def stats(conn: sqlite3.Connection, path: str | Path = "") -> Stats:
    row = conn.execute("SELECT value FROM stats WHERE name = 'accepted'").fetchone()
    frames = int(row[0]) if row else 0
    pages, size = conn.execute("PRAGMA page_count").fetchone()[0], conn.execute("PRAGMA page_size").fetchone()[0]
    file_bytes = Path(path).stat().st_size if path and Path(path).exists() else pages * size
    st = Stats(str(path), file_bytes, frames)
    try:
        owner = _table_of(conn)
        for name, nbytes in conn.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name"):
            t = owner.get(name, name)
            st.tables[t] = st.tables.get(t, 0) + int(nbytes)
    except sqlite3.OperationalError:
        st.exact = False
    return st


@dataclass
class Pruned:
    frames_removed: int
    devices: int
    cutoff: float


def prune(conn: sqlite3.Connection, keep_days: float, now: float | None = None, vacuum: bool = False) -> Pruned:
    """Remove the judge's frames received more than keep_days ago (see the module docstring), in
    one transaction; `vacuum` then gives the space back to the file system."""
    ensure_schema(conn)
    cutoff = (time.time() if now is None else now) - keep_days * DAY
    removed = devices = 0
    conn.execute("BEGIN IMMEDIATE")
    try:
        # per device: the newest stored state of a frame received before the cutoff
        cuts = conn.execute(
            "SELECT device, MAX(counter) FROM judge_frames WHERE state IS NOT NULL "
            "AND json_extract(body, '$.rx') < ? GROUP BY device", (cutoff,)).fetchall()
        for dev, cut in cuts:
            n = conn.execute("DELETE FROM judge_frames WHERE device = ? AND counter < ?", (dev, cut)).rowcount
            if n:
                removed += n
                devices += 1
                conn.execute("UPDATE judge_devices SET floor = MAX(floor, ?) WHERE device = ?", (cut, dev))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    if vacuum:
        conn.execute("VACUUM")
    return Pruned(removed, devices, cutoff)
