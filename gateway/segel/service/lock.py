"""One gateway per database: an exclusive lock file next to the database, naming its holder.

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
import os
import socket
import time
from pathlib import Path


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
