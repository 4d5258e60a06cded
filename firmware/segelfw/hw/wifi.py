# Depot path: WiFi + MQTT (umqtt.simple, frozen into MicroPython's ESP32 firmware). The tracker
# publishes raw frames to segel/up/<device> and takes downlinks from segel/down/<device>.
import network
from umqtt.simple import MQTTClient

from segelfw import link


def connect(cfg: dict, clock, timeout_ms: int = 15000) -> link.MqttLink:
    w = cfg["wifi"]
    sta = network.WLAN(network.STA_IF)
    sta.active(True)
    if not sta.isconnected():
        sta.connect(w["ssid"], w["password"])
        t0 = clock.ticks_ms()
        while not sta.isconnected():
            if clock.ticks_diff(clock.ticks_ms(), t0) > timeout_ms:
                sta.active(False)
                raise OSError("WiFi '" + w["ssid"] + "' not reachable")
            clock.sleep_ms(100)
    client = MQTTClient(
        "segel-" + cfg["device_id"], w["host"], port=w["port"], user=w["user"] or cfg["device_id"],
        password=w["mqtt_password"] or "", keepalive=60,
    )
    client.connect()
    return link.MqttLink(client, cfg["device_id"], clock)
