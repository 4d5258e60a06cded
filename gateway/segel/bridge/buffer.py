"""A durable FIFO of messages waiting for the broker (SQLite, WAL, synchronous=FULL).

The serial side acknowledges a record to the base station only after `put_many()` returned, so a
record is always in one of two places: the base station's memory or this file. The publisher
deletes a row only after the broker's PUBACK.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path


class Buffer:
    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("CREATE TABLE IF NOT EXISTS outq (id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, payload BLOB NOT NULL)")
        self._lock = threading.Lock()
        self.added = threading.Event()
        self.listeners: list[Callable[[], None]] = []  # told after every put

    def put_many(self, items: list[tuple[str, bytes]]) -> None:
        if not items:
            return
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany("INSERT INTO outq (topic, payload) VALUES (?, ?)", items)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        self.added.set()
        for f in self.listeners:
            f()

    def peek(self, after_id: int = 0, limit: int = 100) -> list[tuple[int, str, bytes]]:
        with self._lock:
            rows = self._db.execute("SELECT id, topic, payload FROM outq WHERE id > ? ORDER BY id LIMIT ?", (after_id, limit)).fetchall()
        return [(int(r[0]), str(r[1]), bytes(r[2])) for r in rows]

    def delete(self, ids: list[int]) -> None:
        if not ids:
            return
        # A delete need not reach the disk at once: lost in a power cut, it costs a second publish
        # (at-least-once), never a lost record; the next put's full sync carries it anyway.
        with self._lock:
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("DELETE FROM outq WHERE id = ?", [(i,) for i in ids])
            self._db.execute("COMMIT")
            self._db.execute("PRAGMA synchronous=FULL")

    def depth(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM outq").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
