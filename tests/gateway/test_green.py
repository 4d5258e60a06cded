"""The fleet's one-thread WiFi path (segel.sim.green) against a real Mosquitto: wakes wait for their
downlinks in greenlets, a missing downlink times out, a failing wake's error reaches its caller."""

from __future__ import annotations

import threading

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from segel.sim.green import GreenHub


def test_wakes_wait_for_their_downlinks_on_one_thread(mosquitto) -> None:
    ready = threading.Event()
    echo = paho.Client(CallbackAPIVersion.VERSION2, client_id="echo")

    def on_message(c, u, m):  # the "gateway": answers every tracker but 000002
        dev = m.topic.rsplit("/", 1)[1]
        if dev != "000002":
            c.publish(f"segel/down/{dev}", b"ack-" + m.payload)

    echo.on_message = on_message
    echo.on_connect = lambda c, *a: c.subscribe("segel/up/+")
    echo.on_subscribe = lambda *a: ready.set()
    echo.connect("127.0.0.1", mosquitto.port)
    echo.loop_start()
    assert ready.wait(10)
    hub = GreenHub("127.0.0.1", mosquitto.port, client_id="green-test")
    threads_before = threading.active_count()
    try:
        def wake(dev: str) -> list:
            got = []
            for i in range(3):  # three frames, each waiting for its answer
                hub.publish(dev, bytes([i]))
                got.append(hub.wait_down(dev, 0.5))
            return got

        def broken(dev: str) -> None:
            raise ValueError("a wake that fails")

        with hub.pool() as pool:
            futs = [pool.submit(wake, f"{d:06x}") for d in (1, 2, 3)]
            bad = pool.submit(broken, "000004")
            assert futs[0].result() == [b"ack-\x00", b"ack-\x01", b"ack-\x02"]
            assert futs[1].result() == [None, None, None]  # timed out, the wake went on
            assert futs[2].result() == [b"ack-\x00", b"ack-\x01", b"ack-\x02"]
            with pytest.raises(ValueError, match="a wake that fails"):
                bad.result()
        assert threading.active_count() == threads_before  # no thread per wake
        assert hub.published == 9 and hub.downlinks == 6
    finally:
        hub.close()
        echo.loop_stop()
        echo.disconnect()
