"""The durable outbox between the pipeline and InfluxDB.

Lines are enqueued inside the same SQLite transaction as the frame that caused them, and a
drainer (its own thread, its own connection) writes them to InfluxDB in batches, deleting only
the rows InfluxDB accepted. A server outage of any length only delays the data: the drainer
retries with exponential backoff. A batch refused with 400 (a bad line, a field type conflict)
is bisected until the bad line is alone; that line is parked in `outbox_parked` with the
server's reason and logged, and every other line goes through. Each line's timestamp is fixed
when it is enqueued, so a line written twice (crash between the write and the delete)
overwrites the same point: nothing appears twice in InfluxDB.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from segel import store
from segel.influx.writers import WriteError, Writer

log = logging.getLogger("segel.influx.outbox")


def enqueue(conn: sqlite3.Connection, lines: list[str]) -> None:
    """Queue InfluxDB lines (from `schema.point`) inside the caller's transaction."""
    if lines:
        now = time.time()
        conn.executemany("INSERT INTO outbox(line, at) VALUES (?, ?)", [(ln, now) for ln in lines])


def depth(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])


def lag_s(conn: sqlite3.Connection, now: float | None = None) -> float:
    """Age of the oldest line still waiting, 0 when the outbox is empty."""
    row = conn.execute("SELECT MIN(at) FROM outbox").fetchone()
    return max(0.0, (now or time.time()) - row[0]) if row and row[0] is not None else 0.0


def parked(conn: sqlite3.Connection) -> list[tuple[int, str, str, float]]:
    return conn.execute("SELECT id, line, reason, at FROM outbox_parked ORDER BY id").fetchall()


@dataclass
class DrainStats:
    written: int = 0
    parked: int = 0
    batches: int = 0
    errors: int = 0
    last_error: str | None = None
    last_ok_at: float | None = None
    depth: int = 0  # lines waiting, as of the drainer's last look
    lag_s: float = 0.0
    write_s: float = 0.0  # time spent in the writer (InfluxDB), for the outbox stage's metric


class Drainer:
    """Moves outbox rows to a `Writer`. `drain_once()` for tests and tools, `run()` for a thread."""

    def __init__(self, db_path: str | Path, writer: Writer, batch_size: int = 5000,
                 min_backoff_s: float = 0.5, max_backoff_s: float = 30.0, idle_s: float = 0.5) -> None:
        self.conn = store.connect(db_path)
        self.writer = writer
        self.batch_size = batch_size
        self.min_backoff_s = min_backoff_s
        self.max_backoff_s = max_backoff_s
        self.idle_s = idle_s
        self.stats = DrainStats()
        self.wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False

    # ---- one step --------------------------------------------------------------------------

    def drain_once(self) -> int:
        """Write one batch. Returns how many rows left the outbox (written or parked); raises
        WriteError (retryable) when InfluxDB cannot take data now, after keeping what it took."""
        rows = self.conn.execute("SELECT id, line FROM outbox ORDER BY id LIMIT ?", (self.batch_size,)).fetchall()
        if not rows:
            return 0
        done: list[int] = []
        bad: list[tuple[int, str, str]] = []
        try:
            self._write(rows, done, bad)
        finally:
            self._finish(done, bad)
        return len(done) + len(bad)

    def drain_all(self, max_rounds: int = 10_000) -> int:
        n = 0
        for _ in range(max_rounds):
            k = self.drain_once()
            if k == 0:
                break
            n += k
        return n

    def _write(self, rows: list[tuple[int, str]], done: list[int], bad: list[tuple[int, str, str]]) -> None:
        t0 = time.perf_counter()
        try:
            self.writer.write([r[1] for r in rows])
        except WriteError as e:
            self.stats.write_s += time.perf_counter() - t0
            if e.retryable:
                raise
            if len(rows) == 1:
                bad.append((rows[0][0], rows[0][1], str(e)))
                return
            mid = len(rows) // 2
            self._write(rows[:mid], done, bad)
            self._write(rows[mid:], done, bad)
            return
        self.stats.write_s += time.perf_counter() - t0
        done.extend(r[0] for r in rows)

    def _finish(self, done: list[int], bad: list[tuple[int, str, str]]) -> None:
        if not done and not bad:
            return
        now = time.time()
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            self.conn.executemany("DELETE FROM outbox WHERE id=?", [(i,) for i in done])
            if bad:
                self.conn.executemany("INSERT OR REPLACE INTO outbox_parked(id, line, reason, at) VALUES (?,?,?,?)",
                                      [(i, ln, why, now) for i, ln, why in bad])
                self.conn.executemany("DELETE FROM outbox WHERE id=?", [(i,) for i, _, _ in bad])
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")
        self.stats.written += len(done)
        self.stats.batches += 1
        self.stats.last_ok_at = now
        for i, ln, why in bad:
            self.stats.parked += 1
            log.error("outbox line %d parked (InfluxDB will never accept it): %s; line: %s", i, why, ln[:200])

    # ---- the thread ------------------------------------------------------------------------

    def run(self) -> None:
        backoff = self.min_backoff_s
        while not self._stop.is_set():
            try:
                n = self.drain_once()
            except WriteError as e:
                self.stats.errors += 1
                self.stats.last_error = str(e)
                if not self._failing:
                    log.warning("InfluxDB write failed, keeping the data and retrying with backoff: %s", e)
                    self._failing = True
                else:
                    log.debug("InfluxDB still failing (retry in %.1f s): %s", backoff, e)
                self._measure()
                self._stop.wait(backoff)
                backoff = min(self.max_backoff_s, backoff * 2)
                continue
            except Exception:  # never let the drain thread die: the outbox keeps everything
                self.stats.errors += 1
                log.exception("outbox drain failed unexpectedly; retrying in %.1f s", backoff)
                self._stop.wait(backoff)
                backoff = min(self.max_backoff_s, backoff * 2)
                continue
            self._measure()
            if self._failing and n:
                log.warning("InfluxDB writes work again (%s)", self.writer.name)
                self._failing = False
            backoff = self.min_backoff_s
            if n < self.batch_size:
                self.wake.wait(self.idle_s)
                self.wake.clear()

    def _measure(self) -> None:
        try:
            self.stats.depth = depth(self.conn)
            self.stats.lag_s = lag_s(self.conn)
        except sqlite3.Error:
            pass

    def start(self) -> Drainer:
        self._thread = threading.Thread(target=self.run, name="segel-outbox", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 15.0) -> None:
        self._stop.set()
        self.wake.set()
        if self._thread:
            self._thread.join(timeout)
        self.writer.close()
        self.conn.close()
