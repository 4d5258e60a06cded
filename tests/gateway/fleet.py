"""A small registered fleet for gateway tests: database, key ring and a frame maker."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from segel import protocol, store
from segel.registry import KeyRing, Registry

SECRET = bytes(range(32))


@dataclass
class Fleet:
    conn: sqlite3.Connection
    registry: Registry
    keyring: KeyRing
    db_path: Path
    counters: dict[int, int] = field(default_factory=dict)

    def keys(self, dev: int) -> protocol.DeviceKeys:
        k = self.keyring.keys_for(dev)
        assert k is not None
        return k

    def frame(self, dev: int, body: protocol.Body | None = None, counter: int | None = None,
              dev_time: int | None = None) -> bytes:
        if counter is None:
            counter = self.counters.get(dev, 0) + 1
        self.counters[dev] = max(counter, self.counters.get(dev, 0))
        if body is None:
            body = protocol.Position(0.5 + counter * 1e-5, 117.5, protocol.Flag.FIX, 0.9, 0)
        return protocol.encode(self.keys(dev), dev, counter, int(time.time()) if dev_time is None else dev_time, body)


def make_fleet(tmp: Path, devices: range | list[int] = range(0x101, 0x105)) -> Fleet:
    path = tmp / "gateway.db"
    conn = store.connect(path)
    reg = Registry(conn)
    for d in devices:
        reg.add_device(d)
    return Fleet(conn, reg, KeyRing(SECRET, reg), path)
