"""The benchmark's load generator (segel.bench.loadgen) speaks MQTT a real Mosquitto and a real paho
subscriber understand: every message arrives once, with its topic and payload, at QoS 1."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from segel.bench import loadgen

from tests import servers


@pytest.mark.parametrize("n, encoded", [(0, b"\x00"), (127, b"\x7f"), (128, b"\x80\x01"), (16383, b"\xff\x7f"),
                                        (16384, b"\x80\x80\x01"), (2097151, b"\xff\xff\x7f"),
                                        (2097152, b"\x80\x80\x80\x01")])
def test_remaining_length_is_the_spec_encoding(n: int, encoded: bytes) -> None:
    """MQTT 3.1.1, 2.2.3: the examples of the variable-length encoding."""
    assert loadgen._remaining_length(n) == encoded


def _subscriber(port: int, expect: int, qos: int = 1) -> tuple[paho.Client, list[tuple[str, bytes, int]], threading.Event]:
    got: list[tuple[str, bytes, int]] = []
    done = threading.Event()
    ready = threading.Event()

    def on_message(c: paho.Client, u: object, m: paho.MQTTMessage) -> None:
        got.append((m.topic, bytes(m.payload), m.qos))
        if len(got) >= expect:
            done.set()

    c = paho.Client(CallbackAPIVersion.VERSION2, client_id="loadgen-sub", protocol=paho.MQTTv5)
    c.on_message = on_message
    c.on_subscribe = lambda *a: ready.set()
    c.on_connect = lambda cl, *a: cl.subscribe("lg/#", qos=qos)
    c.connect("127.0.0.1", port)
    c.loop_start()
    assert ready.wait(10)
    return c, got, done


def test_every_message_arrives_once_with_its_topic_and_payload(mosquitto: servers.Server) -> None:
    # 3,000 messages (more than the window, so the publisher must wait for PUBACKs), a few
    # payloads long enough for a two-byte remaining length, ids wrapping is not reached here
    items = [(f"lg/{i % 7}", i.to_bytes(4, "big") * (40 if i % 500 == 0 else 1)) for i in range(3000)]
    c, got, done = _subscriber(mosquitto.port, len(items))
    try:
        times = loadgen.Publisher("127.0.0.1", mosquitto.port, "lg-pub", window=500).run(items)
        assert done.wait(30), f"received {len(got)} of {len(items)}"
        time.sleep(0.2)
    finally:
        c.disconnect()
        c.loop_stop()
    assert Counter((t, p) for t, p, _ in got) == Counter(items)
    assert {q for _, _, q in got} == {1}
    assert len(times) == len(items) and times == sorted(times)


def test_packet_ids_wrap_past_65535(mosquitto: servers.Server) -> None:
    """Packet id 0 is a protocol error (the broker would disconnect): ids go 1..65535, 1, ..."""
    items = [("lg/wrap", i.to_bytes(3, "big")) for i in range(66_000)]
    c, got, done = _subscriber(mosquitto.port, len(items), qos=0)  # QoS 0: the cheapest check of arrival
    try:
        loadgen.Publisher("127.0.0.1", mosquitto.port, "lg-wrap").run(items)
        assert done.wait(60), f"received {len(got)} of {len(items)}"
    finally:
        c.disconnect()
        c.loop_stop()
    assert sorted(p for _, p, _ in got) == [p for _, p in items]


def test_paced_publishing_keeps_the_rate(mosquitto: servers.Server) -> None:
    items = [("lg/paced", bytes([i % 256])) for i in range(300)]
    times = loadgen.Publisher("127.0.0.1", mosquitto.port, "lg-paced").run(items, rate=1000)
    assert times[-1] - times[0] >= 0.29  # 300 messages at 1,000/s: never faster than asked


def test_no_broker_is_an_error_not_a_hang(tmp_path: Path) -> None:
    port = servers.free_port()
    with pytest.raises(OSError):
        loadgen.Publisher("127.0.0.1", port, "lg-none", timeout_s=2).run([("lg/x", b"1")])
