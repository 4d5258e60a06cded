"""`segel bridge --broker mqtts://… --ca-file`: the bridge verifies the broker's certificate."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from segel.bridge import Bridge
from segel.edge import topics

from tests import servers
from tests.deploy.tlsutil import make_ca, make_server_cert

pytestmark = pytest.mark.slow


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # paho leaves a failed TLS socket to the GC
def test_bridge_over_tls_verifies_the_broker(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    ca, ca_key, ca_cert = make_ca(tmp_path / "pki", "segel-test-ca")
    crt, key = make_server_cert(tmp_path / "pki", ca_key, ca_cert)
    broker = servers.mosquitto(tmp_path / "mq", conf_extra=(
        f"listener {{port}} 127.0.0.1\ncafile {ca}\ncertfile {crt}\nkeyfile {key}\nallow_anonymous true\n")).start()
    url = f"mqtts://127.0.0.1:{broker.port}"
    try:
        caplog.set_level(logging.WARNING, "segel.bridge")
        # without the CA the certificate does not verify: no connection, said once, no crash
        b = Bridge("tls-1", url, tmp_path / "a.sqlite", udp="127.0.0.1:0", status_interval_s=0.5).start()
        try:
            b.publisher.reconnect_s = 0.2
            assert not b.publisher.connected.wait(2)
        finally:
            b.stop()
        assert "CERTIFICATE_VERIFY_FAILED" in caplog.text
        assert caplog.text.count("not reachable") == 1
        # with it, the bridge connects and its retained status reaches a TLS subscriber
        b = Bridge("tls-1", url, tmp_path / "b.sqlite", udp="127.0.0.1:0", status_interval_s=0.5,
                   ca_file=str(ca)).start()
        got: list[dict] = []
        seen = threading.Event()
        sub = paho.Client(CallbackAPIVersion.VERSION2, client_id="tls-sub")
        sub.tls_set(ca_certs=str(ca))

        def on_message(c: paho.Client, u: object, m: paho.MQTTMessage) -> None:
            got.append(json.loads(m.payload))
            if got[-1].get("online"):
                seen.set()
        sub.on_message = on_message
        sub.on_connect = lambda c, *a: c.subscribe(topics.bridge_status("tls-1"), qos=1)
        try:
            assert b.publisher.connected.wait(10)
            sub.connect("127.0.0.1", broker.port)
            sub.loop_start()
            assert seen.wait(10), got
            assert got[-1]["bridge_id"] == "tls-1"
        finally:
            sub.disconnect()
            sub.loop_stop()
            b.stop()
    finally:
        broker.stop()
