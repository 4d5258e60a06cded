"""What keeps a gateway from running where it would do harm: one gateway per database (a lock
file naming its holder), the fleet secret the registry was made with, and a broker session that
another client with the same id keeps taking.

Two gateways on one database (a second `segel gateway` left running, a systemd unit and a
terminal) either kick each other off the broker every second (same MQTT client id) or both
process and acknowledge every frame (different ids), doubling the figures. The lock is an
`flock` on `<db>.lock`: the kernel releases it when its holder dies, however it dies, so a
crashed gateway never blocks the next start; the file holds the holder's host, pid, instance and
start time for the refusal message.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import sqlite3
import time
from pathlib import Path

from segel import store
from segel.config import Config
from segel.registry import check_fleet_secret, check_previous_secret, load_fleet_secret

log = logging.getLogger("segel.service.gateway")


class AlreadyRunning(RuntimeError):
    """Another gateway holds the database; str(e) names it."""


def lock_path(db_path: str | Path) -> Path:
    p = Path(db_path)
    return p.with_name(p.name + ".lock")


def holder(db_path: str | Path) -> dict | None:
    """What the lock file says about its holder (None when there is no readable lock file)."""
    try:
        data = json.loads(lock_path(db_path).read_text(encoding="utf-8") or "null")
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


class InstanceLock:
    """`InstanceLock(db, instance).acquire()` ... `.release()`; raises AlreadyRunning."""

    def __init__(self, db_path: str | Path, instance: str = "gateway") -> None:
        self.db_path = Path(db_path)
        self.path = lock_path(db_path)
        self.instance = instance
        self._fd: int | None = None

    def acquire(self) -> InstanceLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise AlreadyRunning(self._refusal()) from None
        me = {"host": socket.gethostname(), "pid": os.getpid(), "instance": self.instance, "since": time.time()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(me) + "\n").encode(), 0)
        self._fd = fd
        return self

    def _refusal(self) -> str:
        h = holder(self.db_path) or {}
        since = h.get("since")
        when = time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(since)) if isinstance(since, (int, float)) else "?"
        who = (f"host {h.get('host', '?')}, pid {h.get('pid', '?')}, instance {h.get('instance', '?')}, "
               f"running since {when}")
        return (f"another gateway is already running on the database {self.db_path} ({who}; lock {self.path}). "
                "Two gateways on one database acknowledge every frame twice and fight over the broker session: "
                "stop that one first (systemctl stop segel-gateway, or Ctrl-C in its terminal)")

    def release(self) -> None:
        if self._fd is not None:
            try:
                os.ftruncate(self._fd, 0)
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
                os.close(self._fd)
                self._fd = None


def open_checked(cfg: Config, db_path: Path) -> tuple[sqlite3.Connection, bytes, bytes | None]:
    """The gateway database, its fleet secret and (during a rotation to a new secret) the previous
    one, each checked against the registry's fingerprints: the wrong fleet's secret would turn every
    genuine frame into a critical forged_frame. Raises RegistryError naming the files."""
    g = cfg.gateway
    secret_path = cfg.path(g.fleet_secret)
    secret = load_fleet_secret(secret_path)
    conn = store.connect(db_path)
    try:
        if check_fleet_secret(conn, secret, secret_path, db_path):
            log.warning("the registry %s had no fleet fingerprint: recorded the one of %s", db_path, secret_path)
        previous = None
        if g.previous_fleet_secret:  # a rotation to a new secret: trackers not yet re-imaged
            previous = load_fleet_secret(cfg.path(g.previous_fleet_secret))
            check_previous_secret(conn, previous, cfg.path(g.previous_fleet_secret))
    except BaseException:
        conn.close()
        raise
    return conn, secret, previous


class SessionWatch:
    """Another client with our client id takes the broker session (MQTT 5 says "session taken
    over"; 3.1.1 only drops us): a second gateway with the same mqtt.client_id on another
    database, which the lock cannot see. `dropped` returns what to say, at most once a minute."""

    def __init__(self, client_id: str) -> None:
        self.client_id = client_id
        self._drops: list[float] = []
        self._said = -1e9

    def dropped(self, detail: str, now: float | None = None) -> str | None:
        now = time.monotonic() if now is None else now
        self._drops = [t for t in self._drops if now - t < 60] + [now]
        if not ("taken over" in detail.lower() or len(self._drops) >= 5) or now - self._said < 60:
            return None
        self._said = now
        return (f"the broker keeps dropping us ({len(self._drops)} times in a minute; last: {detail}): another "
                f"client is probably using our client id {self.client_id!r}, e.g. a second gateway on another "
                "database with the same mqtt.client_id. Each gateway needs its own client id (docs/mqtt.md)")

