"""Stand-in for micropython-lib's `lora` on CPython: only what tests/firmware/stubs/lora declares.

A test sees what was sent (`_sent`) and queues replies (`_replies`); there is no chip here.
"""

from __future__ import annotations

_sent: list[dict] = []
_replies: list[bytes] = []
_configs: list[dict] = []
_calibrations: list[dict] = []  # {"chip", "freq_khz"} per calibrate_image() call


class RxPacket(bytearray):
    def __init__(self, payload, ticks_ms=None, snr=None, rssi=None, valid_crc=True) -> None:
        super().__init__(payload)
        self.ticks_ms = ticks_ms
        self.snr = snr
        self.rssi = rssi
        self.valid_crc = valid_crc
        self.crc_error = False


class _SyncModem:
    def __init__(self, lora_cfg=None) -> None:
        self.crc_errors = 0
        self.rx_crc_error = False
        self._cfg: dict = {}
        if lora_cfg:
            self.configure(lora_cfg)

    def configure(self, lora_cfg: dict) -> None:
        self._cfg.update(lora_cfg)
        _configs.append(dict(lora_cfg))

    def get_time_on_air_us(self, payload_len: int) -> int:
        from segelfw import airtime

        return airtime.time_on_air_us(self._cfg.get("sf", 7), payload_len, int(self._cfg.get("bw", 125)),
                                      self._cfg.get("preamble_len", 12))

    def send(self, packet, tx_at_ms=None) -> int:
        _sent.append({"packet": bytes(packet), **self._cfg})
        return 0

    def recv(self, timeout_ms=None, rx_length=0xFF, rx_packet=None):
        if _replies:
            return RxPacket(_replies.pop(0), 0, 40, -80)
        return None

    def calibrate(self) -> None:
        self.calibrate_image()

    def calibrate_image(self) -> None:
        _calibrations.append({"chip": self._chip, "freq_khz": self._cfg.get("freq_khz")})

    def standby(self) -> None:
        pass

    def sleep(self) -> None:
        pass


class SX1276(_SyncModem):
    def __init__(self, spi, cs, dio0=None, dio1=None, reset=None, lora_cfg=None, ant_sw=None) -> None:
        super().__init__(lora_cfg)
        self._chip = "sx1276"


class SX1262(_SyncModem):
    def __init__(self, spi, cs, busy, dio1=None, dio2_rf_sw=True, dio3_tcxo_millivolts=None,
                 dio3_tcxo_start_time_us=1000, reset=None, lora_cfg=None, ant_sw=None) -> None:
        super().__init__(lora_cfg)
        self._chip = "sx1262"
