"""The gateway against the embedded amqtt broker (the demo's default) on a simulation clock."""

from __future__ import annotations

import time
from pathlib import Path

from segel import config as cfgmod
from segel.edge import topics
from segel.service.gateway import Gateway

from tests.gateway.gwtest import Publisher, setup


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class TickJudge:
    def __init__(self) -> None:
        self.ticks: list[float] = []

    def on_accepted(self, rec, db) -> list[dict]:
        return []

    def on_rejected(self, rec, db) -> list[dict]:
        return []

    def on_tick(self, now: float, db) -> list[dict]:
        self.ticks.append(now)
        return [{"kind": "silent", "now": now}]


def test_gateway_on_amqtt_with_a_simulation_clock(tmp_path: Path) -> None:
    from segel.sim.broker import EmbeddedBroker

    with EmbeddedBroker() as broker:
        cfgfile, fleet = setup(tmp_path, broker.port)
        cfg = cfgmod.load(cfgfile, env={}, overrides={"mqtt.protocol": "3.1.1", "gateway.tick_interval_s": 60.0})
        clock = Clock(1_900_000_000.0)
        judge = TickJudge()
        got = []
        gw = Gateway(cfg, [judge], clock=clock, on_commit=lambda rs, at: got.extend(rs)).start()
        pub = Publisher(broker.port, mqtt5=False)
        try:
            assert gw.wait_until(lambda s: s.mqtt_connected, 10)
            time.sleep(0.3)
            for _ in range(3):
                fr = fleet.frame(0x101)
                pub.publish(topics.tracker_up("000101"), fr)
            assert gw.wait_until(lambda s: s.accepted == 3, 10)
            assert {r.uplink.received_at for r in got} == {1_900_000_000.0}  # receive time from the clock
            clock.t += 61  # the simulation moves on: the judges' timers run on its time
            deadline = time.time() + 5
            while not judge.ticks and time.time() < deadline:
                time.sleep(0.05)
            assert judge.ticks and judge.ticks[0] >= 1_900_000_061.0
            deadline = time.time() + 5
            while not any(t == "segel/alerts/silent" for t, _ in pub.down) and time.time() < deadline:
                time.sleep(0.05)
            assert any(t == "segel/alerts/silent" for t, _ in pub.down)
            assert any(t == "segel/down/000101" for t, _ in pub.down)
        finally:
            pub.close()
            gw.stop()
