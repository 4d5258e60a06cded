# Depot path: WiFi + MQTT (umqtt.simple, frozen into MicroPython's ESP32 firmware), every network
# call bounded in time. The tracker publishes raw frames to segel/up/<device> and takes downlinks
# from segel/down/<device>. Any failure raises OSError, with WiFi switched off again.
import network
from umqtt import simple

from segelfw import link

MQTT_TIMEOUT_S = 8  # each socket operation (connect, CONNACK, SUBACK, PUBACK) waits this long at most


class _TimedSocket:
    """A socket whose every blocking operation has a timeout. umqtt.simple 1.4.0 (frozen into
    MicroPython 1.24) has no connect(timeout=...); 1.6.0+ (1.25 and later) sets the timeout it is
    given, and every release calls setblocking(True) after a non-blocking check_msg(), which
    would make the socket block forever again. So blocking always means "with our timeout"."""

    def __init__(self, sock, timeout_s):
        self._s = sock
        self._t = timeout_s
        sock.settimeout(timeout_s)

    def settimeout(self, t):
        self._s.settimeout(self._t if t is None else min(t, self._t))

    def setblocking(self, flag):
        if flag:
            self._s.settimeout(self._t)
        else:
            self._s.setblocking(False)

    def connect(self, addr):
        return self._s.connect(addr)

    def read(self, n=-1):
        return self._s.read(n) if n >= 0 else self._s.read()

    def write(self, buf, n=None):
        return self._s.write(buf) if n is None else self._s.write(buf, n)

    def close(self):
        return self._s.close()


class _Sockets:
    """What umqtt.simple sees as its `socket` module: sockets with a timeout."""

    def __init__(self, mod, timeout_s):
        self._m = mod
        self._t = timeout_s

    def socket(self, *a):
        return _TimedSocket(self._m.socket(*a), self._t)

    def getaddrinfo(self, *a):
        return self._m.getaddrinfo(*a)


_CONNACK = {1: "unacceptable protocol version", 2: "client id rejected", 3: "broker unavailable",
            4: "bad user name or password", 5: "not authorised"}


def connect(cfg: dict, clock, feed=None) -> link.MqttLink:
    """Join the depot WiFi and the broker; -> an MqttLink. Raises OSError (WiFi off again) on any
    failure: no network, a broker that refuses (MQTT CONNACK code) or does not answer in time."""
    w = cfg["wifi"]
    timeout_ms = w["timeout_s"] * 1000
    sta = network.WLAN(network.STA_IF)
    sta.active(True)
    client = None
    try:
        if not sta.isconnected():
            sta.connect(w["ssid"], w["password"])
            t0 = clock.ticks_ms()
            while not sta.isconnected():
                if clock.ticks_diff(clock.ticks_ms(), t0) > timeout_ms:
                    raise OSError("WiFi '" + w["ssid"] + "' not reachable in " + str(w["timeout_s"]) + " s")
                if feed is not None:
                    feed()
                clock.sleep_ms(100)
        if feed is not None:
            feed()
        if not isinstance(simple.socket, _Sockets):
            simple.socket = _Sockets(simple.socket, MQTT_TIMEOUT_S)
        client = simple.MQTTClient(
            "segel-" + cfg["device_id"], w["host"], port=w["port"], user=w["user"] or cfg["device_id"],
            password=w["mqtt_password"] or "", keepalive=60,
        )
        try:
            client.connect()
        except simple.MQTTException as e:
            code = e.args[0] if e.args else 0
            raise OSError("MQTT broker " + w["host"] + " refused the tracker: " + _CONNACK.get(code, "code " + str(code)))
        if feed is not None:
            feed()
        lk = link.MqttLink(client, cfg["device_id"], clock)
        return lk
    except Exception as e:  # noqa: BLE001 - everything that can go wrong here becomes OSError, WiFi off
        if client is not None and client.sock is not None:
            try:
                client.sock.close()
            except Exception:  # noqa: BLE001
                pass
        try:
            sta.active(False)
        except Exception:  # noqa: BLE001
            pass
        if isinstance(e, OSError):
            raise
        raise OSError("depot link failed: " + repr(e))


def off() -> None:
    """WiFi off (after the depot link is done, before deep sleep)."""
    try:
        network.WLAN(network.STA_IF).active(False)
    except Exception:  # noqa: BLE001
        pass
