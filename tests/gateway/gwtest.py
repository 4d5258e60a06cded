"""Helpers for gateway tests: a config on disk, a fleet in its database, a publisher."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from segel import config as cfgmod
from segel import store
from segel.registry import KeyRing, Registry, create_fleet_secret

from tests import servers
from tests.gateway.fleet import Fleet


def setup(tmp: Path, broker_port: int, influx_url: str | None = None, devices: int = 4,
          extra: str = "", metrics_port: int = 0, mqtt_extra: str = "") -> tuple[Path, Fleet]:
    secret = create_fleet_secret(tmp / "fleet.key")
    conn = store.connect(tmp / "segel.db")
    reg = Registry(conn)
    for d in range(0x101, 0x101 + devices):
        reg.add_device(d)
    influx = (f'[influx]\nkind = "v1"\nurl = "{influx_url}"\ndatabase = "segel"\nmax_backoff_s = 1.0\n'
              if influx_url else "")
    cfg = tmp / "segel.toml"
    cfg.write_text(
        f'[gateway]\ndb = "segel.db"\nfleet_secret = "fleet.key"\nrecording_dir = "rec"\n'
        f"tick_interval_s = 0.5\nhealth_interval_s = 0.5\nmetrics_port = {metrics_port}\n{extra}\n"
        f'[mqtt]\nurl = "mqtt://127.0.0.1:{broker_port}"\nclient_id = "gw-test"\nreconnect_max_s = 2\n{mqtt_extra}'
        + influx)
    return cfg, Fleet(conn, reg, KeyRing(secret, reg), tmp / "segel.db")


def load(cfg: Path) -> cfgmod.Config:
    return cfgmod.load(cfg, env={})


class Publisher:
    """A QoS 1 publisher that retries until the broker has each message (survives broker restarts)."""

    def __init__(self, port: int, client_id: str = "pub", mqtt5: bool = True) -> None:
        self.c = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                             protocol=paho.MQTTv5 if mqtt5 else paho.MQTTv311)
        self.c.max_queued_messages_set(0)
        self.c.max_inflight_messages_set(100)
        self.c.reconnect_delay_set(1, 2)
        self.down: list[tuple[str, bytes]] = []
        self.c.on_message = lambda c, u, m: self.down.append((m.topic, m.payload))
        self.c.on_connect = lambda c, u, f, r, p: c.subscribe([("segel/down/+", 1), ("segel/bridge/+/down", 1),
                                                               ("segel/alerts/#", 1)])
        self._subscribed = threading.Event()
        self.c.on_subscribe = lambda *a: self._subscribed.set()
        self.c.connect_async("127.0.0.1", port)
        self.c.loop_start()
        self._subscribed.wait(10)  # downlinks published from now on reach us

    def publish(self, topic: str, payload: bytes, wait: bool = True) -> None:
        """Publish; with wait, retry until the broker acknowledged it (a re-send after a broker
        restart may reach the gateway twice: it must deduplicate)."""
        deadline = time.time() + 60
        while True:
            while not self.c.is_connected() and time.time() < deadline:
                time.sleep(0.05)
            info = self.c.publish(topic, payload, qos=1)
            if not wait:
                return
            try:
                info.wait_for_publish(5)
                if info.is_published():
                    return
            except RuntimeError:
                pass
            if time.time() > deadline:
                raise TimeoutError(f"could not publish to {topic}")

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def wait(pred, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def influx_counts(srv: servers.Server, measurement: str = "position") -> tuple[int, int]:
    """(points, distinct counters per device summed) in InfluxDB."""
    res = servers.influx_query(srv, f'SELECT count("counter") FROM "{measurement}" GROUP BY device', "segel")
    series = res["results"][0].get("series") or []
    return sum(int(s["values"][0][1]) for s in series), len(series)
