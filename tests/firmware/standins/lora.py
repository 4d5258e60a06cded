"""Stand-in for micropython-lib's `lora` (CPython and MicroPython): only what tests/firmware/stubs/lora
declares.

A test sees what was sent (`_sent`) and queues replies (`_replies`); there is no chip here. Faults
a real board can show: `_fail_init` (the constructor's silicon-version check fails, as with a chip
that does not answer on SPI), `_tx_hang` (TX done never comes: the sync send() loops on
poll_send() like micropython-lib's, so only a caller's own deadline or the watchdog ends it).
"""

from __future__ import annotations

_sent: list[dict] = []
_replies: list[bytes] = []
_configs: list[dict] = []
_calibrations: list[dict] = []  # {"chip", "freq_khz"} per calibrate_image() call
_fail_init = False
_tx_hang = False
_responder = None  # f(packet) -> [reply, ...]: what a gateway sends back after each packet


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
        if _fail_init:
            raise RuntimeError("Unexpected silicon version 0")  # what sx127x.py raises
        self.crc_errors = 0
        self.rx_crc_error = False
        self._cfg: dict = {}
        self._tx: bytes | None = None
        self._rx_continuous = False
        if lora_cfg:
            self.configure(lora_cfg)

    def configure(self, lora_cfg: dict) -> None:
        self._cfg.update(lora_cfg)
        _configs.append(dict(lora_cfg))

    def get_time_on_air_us(self, payload_len: int) -> int:
        from segelfw import airtime

        return airtime.time_on_air_us(self._cfg.get("sf", 7), payload_len, int(self._cfg.get("bw", 125)),
                                      self._cfg.get("preamble_len", 12))

    def prepare_send(self, packet) -> None:
        self._tx = bytes(packet)

    def start_send(self) -> bool:
        return False

    def poll_send(self):
        if _tx_hang:
            return True  # still sending, for ever
        if self._tx is not None:
            rec = dict(self._cfg)
            rec["packet"] = self._tx
            _sent.append(rec)
            if _responder is not None:
                _replies.extend(_responder(self._tx))
            self._tx = None
        return 0  # ticks_ms when it finished

    def send(self, packet, tx_at_ms=None) -> int:
        import time

        self.prepare_send(packet)
        self.start_send()
        tx = True
        while tx is True:  # micropython-lib's sync send(): no deadline of its own
            time.sleep_ms(1)
            tx = self.poll_send()
        return tx

    def start_recv(self, timeout_ms=None, continuous=False, rx_length=0xFF) -> bool:
        self._rx_continuous = continuous
        return False

    def poll_recv(self, rx_packet=None):
        if _replies:
            return RxPacket(_replies.pop(0), 0, 40, -80)
        return True if self._rx_continuous else False

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
