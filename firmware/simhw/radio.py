"""A simulated LoRa modem with micropython-lib lora's synchronous API, and the air between modems."""

from __future__ import annotations

import random

from segelfw import airtime, hal


class SimRadio(hal.Radio):
    """Records every packet sent; receives what the air or a test delivers.

    `responder(packet, info) -> [(delay_ms, downlink_bytes), ...] | None` answers uplinks the way
    a base station and gateway would (info: freq_khz, sf, t_ms). `deliver()` puts one downlink in
    the receive queue directly.
    """

    MAX_PACKET = 255

    def __init__(self, clock, air: SimAir | None = None, name: str = "radio") -> None:
        self.clock = clock
        self.name = name
        self.cfg: dict = {"freq_khz": 921400, "sf": 7, "bw": "125", "coding_rate": 5, "preamble_len": 12,
                          "output_power": 14, "crc_en": True, "syncword": 0x12, "implicit_header": False}
        self.sent: list[dict] = []
        self.inbox: list[tuple[int, bytes, float, float, bool, int | None]] = []
        self.responder = None
        self.air = air
        self.tx_ms_total = 0
        self.rx_ms_total = 0
        self.state = "standby"
        if air is not None:
            air.join(self)

    def configure(self, lora_cfg: dict) -> None:
        unknown = set(lora_cfg) - set(self.cfg) - {"tx_ant", "pa_ramp_us", "invert_iq_tx", "invert_iq_rx",
                                                    "rx_boost", "lna_gain", "auto_image_cal"}
        if unknown:
            raise ValueError(f"unknown lora_cfg keys {sorted(unknown)}")
        self.cfg.update(lora_cfg)

    def get_time_on_air_us(self, payload_len: int) -> int:
        return airtime.time_on_air_us(int(self.cfg["sf"]), payload_len, int(self.cfg["bw"]),
                                      int(self.cfg["preamble_len"]), int(self.cfg["coding_rate"]),
                                      bool(self.cfg["crc_en"]), bool(self.cfg["implicit_header"]))

    def send(self, packet, tx_at_ms: int | None = None) -> int:
        if len(packet) > self.MAX_PACKET:
            raise ValueError("LoRa packets are at most 255 bytes")
        if tx_at_ms is not None:
            wait = self.clock.ticks_diff(tx_at_ms, self.clock.ticks_ms())
            if wait > 0:
                self.clock.advance(wait)
        t_ms = self.clock.now_ms
        toa_us = self.get_time_on_air_us(len(packet))
        rec = {"t_ms": t_ms, "device_time": self.clock.time(), "packet": bytes(packet),
               "freq_khz": self.cfg["freq_khz"], "sf": self.cfg["sf"], "power": self.cfg["output_power"],
               "toa_us": toa_us, "preamble": self.cfg["preamble_len"]}
        self.sent.append(rec)
        self.tx_ms_total += toa_us // 1000
        self.clock.advance(toa_us // 1000)
        if self.air is not None:
            self.air.transmit(self, rec)
        if self.responder is not None:
            for delay_ms, down in self.responder(bytes(packet), rec) or ():
                self.deliver(down, at_ms=self.clock.now_ms + delay_ms)
        return self.clock.ticks_ms()

    def deliver(self, packet: bytes, at_ms: int | None = None, rssi: float = -92.0, snr: float = 28.0,
                crc_error: bool = False, freq_khz: int | None = None) -> None:
        """Queue a packet for recv(); at_ms is true unix ms (default now)."""
        self.inbox.append((self.clock.now_ms if at_ms is None else at_ms, bytes(packet), rssi, snr, crc_error, freq_khz))
        self.inbox.sort(key=lambda x: x[0])

    def recv(self, timeout_ms: int | None = None, rx_length: int = 0xFF, rx_packet=None):
        now = self.clock.now_ms
        self.inbox = [p for p in self.inbox if p[0] >= now - 5000]  # missed while not listening
        for i, (at, pkt, rssi, snr, crc_err, freq) in enumerate(self.inbox):
            if freq is not None and freq != self.cfg["freq_khz"]:
                continue
            if timeout_ms is not None and at > now + timeout_ms:
                break
            del self.inbox[i]
            end = max(at, now) + self.get_time_on_air_us(len(pkt)) // 1000
            self.rx_ms_total += end - now
            self.clock.advance_to(end)
            return hal.RxPacket(pkt[:rx_length], ticks_ms=self.clock.ticks_ms(), snr=int(snr * 4), rssi=rssi,
                                valid_crc=not crc_err)
        if timeout_ms is not None:
            self.rx_ms_total += timeout_ms
            self.clock.advance(timeout_ms)
        return None

    def standby(self) -> None:
        self.state = "standby"

    def sleep(self) -> None:
        self.state = "sleep"


class SimAir:
    """Radios on one `SimAir` hear each other when frequency and SF match (and the dice allow)."""

    def __init__(self, loss: float = 0.0, seed: int = 7) -> None:
        self.radios: list[SimRadio] = []
        self.loss = loss
        self.rng = random.Random(seed)
        self.log: list[dict] = []

    def join(self, radio: SimRadio) -> None:
        self.radios.append(radio)

    def transmit(self, sender: SimRadio, rec: dict) -> None:
        self.log.append(dict(rec, sender=sender.name))
        for r in self.radios:
            if r is sender or r.cfg["freq_khz"] != rec["freq_khz"] or r.cfg["sf"] != rec["sf"]:
                continue
            if self.loss and self.rng.random() < self.loss:
                continue
            r.inbox.append((rec["t_ms"], rec["packet"], -100.0 + self.rng.uniform(-15, 15), 7.5, False, None))
            r.inbox.sort(key=lambda x: x[0])
