"""The depot path: the wake cycle over MqttLink through a real Mosquitto broker.

umqtt.simple is MicroPython-only, so `Umqtt` below offers the part of its API MqttLink uses
(set_callback, subscribe, publish, check_msg, disconnect) on top of paho; the broker, the topics
and the bytes on the wire are real, and the "gateway" answers with the gateway's own encoder.
"""

from __future__ import annotations

import queue as pyqueue
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from segel import protocol as gp
from segel.edge import topics
from segelfw import cycle, link
from segelfw.queue import Queue

from tests.firmware.sim import DEV, KEY, cfg, tracker


class Umqtt:
    """umqtt.simple.MQTTClient's calls, as MqttLink makes them, over a paho client."""

    def __init__(self, client_id: str, port: int) -> None:
        self._msgs: pyqueue.Queue = pyqueue.Queue()
        self._c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        self._c.on_message = lambda c, u, m: self._msgs.put((m.topic.encode(), m.payload))
        self._c.connect("127.0.0.1", port)
        self._c.loop_start()
        self._cb = None

    def set_callback(self, f) -> None:
        self._cb = f

    def subscribe(self, topic: bytes, qos: int = 0) -> None:
        done = threading.Event()
        self._c.on_subscribe = lambda *a: done.set()
        self._c.subscribe(topic.decode(), qos)
        assert done.wait(5)

    def publish(self, topic: bytes, msg: bytes, retain: bool = False, qos: int = 0) -> None:
        self._c.publish(topic.decode(), bytes(msg), qos, retain).wait_for_publish(5)

    def check_msg(self) -> None:
        try:
            t, m = self._msgs.get(timeout=0.01)
        except pyqueue.Empty:
            return
        assert self._cb is not None
        self._cb(t, m)

    def disconnect(self) -> None:
        self._c.loop_stop()
        self._c.disconnect()


@pytest.mark.slow
def test_wake_cycles_over_mqtt_with_acks(mosquitto, tmp_path: Path) -> None:
    keys = gp.DeviceKeys.from_device_key(KEY)
    got: list[gp.Frame] = []
    down = [0]
    gw = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="test-gateway")

    def on_up(c, u, m) -> None:  # the gateway: verify, then ack on the tracker's down topic
        f = gp.verify_and_decode(keys, m.payload)
        got.append(f)
        down[0] += 1
        c.publish(topics.tracker_down(f"{DEV:06x}"), gp.encode(keys, DEV, down[0], 0, gp.Ack((f.header.counter,))), 1)

    gw.on_message = on_up
    gw.connect("127.0.0.1", mosquitto.port)
    gw.subscribe(topics.TRACKER_UP_SUB, 1)
    gw.loop_start()
    try:
        t = tracker(tmp_path)
        c = cfg(ack_window_ms=3000)
        # MqttLink waits on the tracker's clock: let simulated time follow real time here
        import time as _time
        t.clock.sleep_ms = lambda ms: (_time.sleep(ms / 1000 / 50), t.clock.advance(ms))
        for _ in range(3):
            lk = link.MqttLink(Umqtt(f"segel-{DEV:06x}", mosquitto.port), f"{DEV:06x}", t.clock)
            cycle.Cycle(t.drivers(), c, lk, t.board).run()
            t.deep_sleep()
        assert [f.type.name for f in got] == ["POSITION", "STATUS", "POSITION", "POSITION"]
        assert len(Queue(t.flash.path("queue.bin"))) == 0
        assert t.radio.sent == []  # nothing went over LoRa
    finally:
        gw.loop_stop()
        gw.disconnect()
