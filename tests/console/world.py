"""A running Kutai Timur world for the console's browser tests: Mosquitto, the real gateway with the
custody rules, the console on a free loopback port, accounts, and one position per box published."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from segel import accounts, store
from segel.bench import kutim
from segel.console import live
from segel.console.server import ConsoleServer
from segel.service.assemble import Assembly, assemble
from segel.service.gateway import Gateway

from tests import servers
from tests.gateway.gwtest import Publisher

PW = "rahasia-negara-2024"
USERS = {"sari": ("admin", (), "Sari Dewi"), "budi": ("operator", (), "Budi Santoso"),
         "vera": ("viewer", (), "Vera (Bawaslu)"), "ops1": ("operator", ("64.08.01",), "Operator Muara Ancalong")}


@dataclass
class World:
    folder: Path
    prepared: kutim.Prepared
    broker: servers.Server
    gateway: Gateway | None = None
    parts: Assembly | None = None
    console: ConsoleServer | None = None
    pub: Publisher | None = None
    cfg: Any = None
    extra: dict = field(default_factory=dict)

    @property
    def url(self) -> str:
        assert self.console is not None
        return self.console.url.rstrip("/")

    def start_gateway(self) -> None:
        self.parts = assemble(self.cfg)
        self.gateway = Gateway(self.cfg, judges=self.parts.judges, on_alerts=self.parts.on_alerts).start()
        assert self.gateway.wait_until(lambda s: s.mqtt_connected, 20), "gateway did not connect"

    def stop_gateway(self) -> None:
        if self.gateway is not None:
            self.gateway.stop()
            self.gateway = None
        if self.parts is not None:
            self.parts.close()

    def publish(self, items: list[tuple[str, bytes]]) -> None:
        assert self.pub is not None
        for topic, frame in items:
            self.pub.publish(topic, frame, wait=False)

    def wait_accepted(self, n: int, timeout: float = 60) -> None:
        assert self.gateway is not None
        assert self.gateway.wait_until(lambda s: s.accepted + sum(s.rejected.values()) >= n, timeout), \
            self.gateway.snapshot()

    def close(self) -> None:
        for f in (lambda: self.pub and self.pub.close(), lambda: self.console and self.console.stop(),
                  self.stop_gateway, self.broker.stop):
            try:
                f()
            except Exception:  # noqa: BLE001 - tear down the rest
                pass


def make(folder: Path, **console: Any) -> World:
    p = kutim.prepare(folder / "kutim")
    broker = servers.mosquitto(folder / "mosquitto").start()
    w = World(folder, p, broker)
    try:
        w.cfg = kutim.config(p, f"mqtt://127.0.0.1:{broker.port}", **{
            "gateway.health_interval_s": 1.0, "gateway.tick_interval_s": 1.0, 
            "mqtt.link": "thread", **console})
        conn = store.connect(p.db)
        for name, (role, districts, full) in USERS.items():
            accounts.add(conn, name, role, PW, full_name=full, districts=districts)
        conn.close()
        w.start_gateway()
        w.console = ConsoleServer(w.cfg, hooks=[live.attach], port=0).start()
        w.pub = Publisher(broker.port, client_id=f"kutim-pub-{time.monotonic_ns()}")
        t = time.time() - 900  # two fixes five minutes apart: the dwell time confirms each box's place
        w.publish(kutim.position_frames(p, t) + kutim.position_frames(p, t + 300))
        w.wait_accepted(2 * len(p.boxes))
        return w
    except BaseException:
        w.close()
        raise
