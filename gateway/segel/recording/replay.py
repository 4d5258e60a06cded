"""Replay a recording through the full pipeline offline: no broker, no InfluxDB.

The recording is what the gateway records (`segel.recording.recorder`: one JSON object per line with
receive time, topic, frame hex and receive metadata). Uplinks are processed in recorded order,
through verify, dedupe, decode, sanity and the custody judge, in a SQLite database of its own;
the judges' timers run on the recording's clock every `tick_every` seconds of receive time. Every
alert change is yielded as the JSON dict the gateway would publish.
"""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from segel import store
from segel.custody.judge import build_judge
from segel.ingest.pipeline import Pipeline
from segel.recording import recorder as recording
from segel.registry import KeyRing, Registry

REGISTRY_TABLES = ("devices", "boxes", "pairings")


class ReplayError(ValueError):
    pass


def copy_registry(src: str | Path, conn: sqlite3.Connection) -> int:
    """Copy devices, boxes and pairings from a gateway database (opened read-only)."""
    p = Path(src)
    if not p.exists():
        raise ReplayError(f"registry database {p} not found")
    ro = sqlite3.connect(f"file:{p}?mode=ro", uri=True)
    n = 0
    try:
        conn.execute("BEGIN IMMEDIATE")
        for t in REGISTRY_TABLES:
            cols = [r[1] for r in ro.execute(f"PRAGMA table_info({t})")]
            if not cols:
                continue
            rows = ro.execute(f"SELECT {', '.join(cols)} FROM {t}").fetchall()
            conn.executemany(f"INSERT OR REPLACE INTO {t}({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})", rows)
            n += len(rows) if t == "devices" else 0
        conn.execute("COMMIT")
    finally:
        ro.close()
    return n


def replay(source: str | Path, fleet_secret: bytes, *, places: Iterable[str | Path] | None = None,
           boxes: str | Path | None = None, calendar: str | Path | None = None,
           settings: dict[str, float] | None = None, db: str | Path | None = None,
           registry_db: str | Path | None = None, register: bool = True, assign: bool = False,
           tick_every: float = 60.0) -> Iterator[dict]:
    """Yield every alert dict, in the order the gateway would have published them."""
    tmp = None
    if db is None:
        tmp = tempfile.TemporaryDirectory(prefix="segel-replay-")
        db = Path(tmp.name) / "replay.db"
    elif Path(db).exists():
        raise ReplayError(f"{db} already exists: a replay writes a fresh database (give a new path)")
    conn = store.connect(db)
    try:
        if registry_db is not None:
            copy_registry(registry_db, conn)
        judge = build_judge(conn, places=list(places) if places else None, boxes=boxes, calendar=calendar,
                            settings=settings, register=register, assign=assign)
        pipe = Pipeline(conn, KeyRing(fleet_secret, Registry(conn)), judges=[judge])
        next_tick: float | None = None
        last = None
        for up in recording.read(source):
            if next_tick is None:
                next_tick = up.received_at + tick_every
            while tick_every > 0 and next_tick <= up.received_at:
                yield from pipe.tick(next_tick)
                next_tick += tick_every
            yield from pipe.process(up).alerts
            last = up.received_at
        if last is not None and tick_every > 0:
            yield from pipe.tick(last)
    finally:
        conn.close()
        if tmp is not None:
            tmp.cleanup()
