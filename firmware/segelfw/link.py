# Links that carry frames: LoRa through a micropython-lib `lora` modem (hal.Radio), or MQTT
# through a umqtt.simple-like client at a depot. Both offer send(frame) and recv(timeout_ms).
# The LoRa link enforces the region: it refuses any frame whose time on air is over the dwell
# limit, and picks a random channel of the region for each uplink unless one channel is fixed.
from segelfw import airtime


TX_GRACE_MS = 1000  # beyond the frame's time on air: a TX that has not finished by then never will


class DwellError(ValueError):
    pass


class LoraLink:
    """cfg: a validated config (region, sf, channel, tx_power_dbm, syncword, preamble)."""

    def __init__(self, radio, cfg, rand_u32, board_radio=None, clock=None):
        self.radio = radio
        self.clock = clock  # hal.Clock: with a lora driver's low-level API, TX gets a deadline
        self.cfg = cfg
        self.rand = rand_u32
        self.region = airtime.region(cfg["region"])
        self.sf = cfg["sf"]
        self.freq_khz = None
        self.sent = 0
        self.refused = 0
        self.airtime_us = 0
        self._base = {
            "sf": self.sf,
            "bw": str(self.region["bw_khz"]),
            "coding_rate": 5,
            "preamble_len": cfg["preamble"],
            "syncword": cfg["syncword"],
            "output_power": cfg["tx_power_dbm"],
            "crc_en": True,
            "implicit_header": False,
        }
        if board_radio is not None and board_radio.get("tx_ant"):
            self._base["tx_ant"] = board_radio["tx_ant"]
        self._configured = None

    def set_sf(self, sf):
        self.sf = sf
        self._base["sf"] = sf

    def time_on_air_us(self, n):
        return airtime.time_on_air_us(self.sf, n, self.region["bw_khz"], self.cfg["preamble"])

    def pick_channel(self):
        ch = self.cfg["channel"]
        if ch != "random":
            return ch
        chans = self.region["channels_khz"]
        return chans[self.rand() % len(chans)]

    def _tune(self, freq_khz):
        # lora's configure() touches only the keys it is given: after the first full set, a channel
        # hop sends only the frequency (less heap per frame)
        if self._configured is None or self._configured[1] != self.sf:
            c = dict(self._base)
            c["freq_khz"] = freq_khz
            self.radio.configure(c)
        elif self._configured[0] != freq_khz:
            self.radio.configure({"freq_khz": freq_khz})
        self._configured = (freq_khz, self.sf)
        self.freq_khz = freq_khz

    def send(self, frame):
        """Transmit one frame on a (random) channel; DwellError if it would exceed the dwell limit."""
        toa = self.time_on_air_us(len(frame))
        if toa > self.region["dwell_us"]:
            self.refused += 1
            raise DwellError(
                "refusing a " + str(len(frame)) + "-byte frame: " + str(toa // 1000) + " ms on air at SF"
                + str(self.sf) + " is over the " + str(self.region["dwell_us"] // 1000) + " ms dwell limit"
            )
        self._tune(self.pick_channel())
        if self.clock is not None and hasattr(self.radio, "poll_send"):
            self._send_with_deadline(frame, toa)
        else:
            self.radio.send(frame)
        self.sent += 1
        self.airtime_us += toa
        return toa

    def _send_with_deadline(self, frame, toa_us):
        # micropython-lib's sync send() polls for "TX done" without a deadline: a radio whose
        # interrupt never comes (a dead DIO line, a wedged chip) would hang the wake until the
        # watchdog resets the board. The same low-level calls, with a deadline.
        c = self.clock
        self.radio.prepare_send(frame)
        self.radio.start_send()
        t0 = c.ticks_ms()
        c.sleep_ms(toa_us // 1000)
        while self.radio.poll_send() is True:
            if c.ticks_diff(c.ticks_ms(), t0) > toa_us // 1000 + TX_GRACE_MS:
                try:
                    self.radio.standby()
                except Exception:  # noqa: BLE001
                    pass
                raise OSError("radio: transmission did not finish")
            c.sleep_ms(1)

    def recv(self, timeout_ms):
        """One downlink on the channel just used (RX1-style), or None. CRC errors are dropped."""
        if self.freq_khz is None:
            self._tune(self.pick_channel())
        pkt = self.radio.recv(timeout_ms=timeout_ms)
        if pkt is None or getattr(pkt, "crc_error", False):
            return None
        return bytes(pkt)

    def sleep(self):
        self.radio.sleep()


class MqttLink:
    """A depot WiFi link: publish to segel/up/<device>, downlinks from segel/down/<device>.

    client: a umqtt.simple.MQTTClient (connected); clock: hal.Clock for the receive window.
    """

    def __init__(self, client, device_hex, clock):
        self.client = client
        self.up = ("segel/up/" + device_hex).encode()
        self.down = ("segel/down/" + device_hex).encode()
        self.clock = clock
        self.inbox = []
        self.sent = 0
        client.set_callback(self._on_msg)
        client.subscribe(self.down, 1)

    def _on_msg(self, topic, msg):
        if topic == self.down:
            self.inbox.append(bytes(msg))

    def send(self, frame):
        self.client.publish(self.up, frame, False, 1)
        self.sent += 1
        return 0

    def recv(self, timeout_ms):
        t0 = self.clock.ticks_ms()
        while not self.inbox and self.clock.ticks_diff(self.clock.ticks_ms(), t0) < timeout_ms:
            self.client.check_msg()
            if not self.inbox:
                self.clock.sleep_ms(20)
        return self.inbox.pop(0) if self.inbox else None

    def sleep(self):
        try:
            self.client.disconnect()
        except OSError:
            pass
