"""The Mosquitto fixture really persists: a persistent session's queued message survives a restart."""

from __future__ import annotations

import time

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tests import servers


def _client(cid: str) -> mqtt.Client:
    return mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cid, protocol=mqtt.MQTTv5)


def test_queued_qos1_message_survives_broker_restart(mosquitto: servers.Server) -> None:
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    sub = _client("persist-sub")
    sub.connect("127.0.0.1", mosquitto.port, clean_start=False, properties=props)
    sub.loop_start()
    sub.subscribe("t/#", qos=1)
    time.sleep(0.3)
    sub.loop_stop()
    sub.disconnect()

    pub = _client("persist-pub")
    pub.connect("127.0.0.1", mosquitto.port)
    pub.loop_start()
    pub.publish("t/x", b"kept", qos=1).wait_for_publish(5)
    pub.loop_stop()
    pub.disconnect()

    time.sleep(1.5)  # autosave_interval 1
    mosquitto.stop()
    mosquitto.start()

    got: list[bytes] = []
    sub = _client("persist-sub")
    sub.on_message = lambda c, u, m: got.append(m.payload)
    sub.connect("127.0.0.1", mosquitto.port, clean_start=False, properties=props)
    sub.loop_start()
    deadline = time.monotonic() + 10
    while not got and time.monotonic() < deadline:
        time.sleep(0.05)
    sub.loop_stop()
    sub.disconnect()
    assert got == [b"kept"], (mosquitto.log.read_text()[-1500:])
