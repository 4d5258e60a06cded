"""mqtts:// with certificate verification on by default, and a CA file option."""

from __future__ import annotations

import time
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from segel import config as cfgmod
from segel.edge import topics
from segel.service.gateway import Gateway

from tests import servers
from tests.deploy.tlsutil import make_ca, make_server_cert
from tests.gateway.gwtest import setup

pytestmark = pytest.mark.slow


# paho-mqtt leaves the socket of a failed TLS handshake to the garbage collector (ResourceWarning)
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_gateway_verifies_the_broker_certificate(tmp_path: Path, caplog) -> None:
    ca, ca_key, ca_cert = make_ca(tmp_path / "pki", "segel-test-ca")
    crt, key = make_server_cert(tmp_path / "pki", ca_key, ca_cert)
    broker = servers.mosquitto(tmp_path / "mq", conf_extra=(
        f"listener {{port}} 127.0.0.1\ncafile {ca}\ncertfile {crt}\nkeyfile {key}\nallow_anonymous true\n")).start()
    try:
        cfgfile, fleet = setup(tmp_path, broker.port)
        base = {"mqtt.url": f"mqtts://127.0.0.1:{broker.port}", "mqtt.reconnect_max_s": 1.0}
        # without our CA the certificate does not verify: no connection, and no crash
        gw = Gateway(cfgmod.load(cfgfile, env={}, overrides={**base, "mqtt.client_id": "gw-noca"})).start()
        try:
            assert not gw.wait_until(lambda s: s.mqtt_connected, 3)
            assert "cannot connect to the broker" in caplog.text and "CERTIFICATE_VERIFY_FAILED" in caplog.text
            assert caplog.text.count("cannot connect to the broker") == 1  # once per reason, not per retry
        finally:
            gw.stop()
        gw = Gateway(cfgmod.load(cfgfile, env={}, overrides={**base, "mqtt.ca_file": str(ca)})).start()
        try:
            assert gw.wait_until(lambda s: s.mqtt_connected, 10)
            time.sleep(0.2)
            pub = paho.Client(CallbackAPIVersion.VERSION2, client_id="tls-pub", protocol=paho.MQTTv5)
            pub.tls_set(ca_certs=str(ca))
            pub.connect("127.0.0.1", broker.port)
            pub.loop_start()
            pub.publish(topics.tracker_up("000101"), fleet.frame(0x101), qos=1).wait_for_publish(10)
            assert gw.wait_until(lambda s: s.accepted == 1, 10)
            pub.disconnect()
            pub.loop_stop()
        finally:
            gw.stop()
    finally:
        broker.stop()
