# Type stub for micropython-lib's `lora` package (lora 0.2 + lora-sync + lora-sx127x + lora-sx126x),
# written from its README and sources (micropython/lora/*) because micropython-esp32-stubs has none.
from typing import Any

from machine import SPI, Pin

class RxPacket(bytearray):
    ticks_ms: int | None
    snr: int | None
    rssi: int | None
    valid_crc: bool
    crc_error: bool
    def __init__(self, payload: Any, ticks_ms: int | None = None, snr: int | None = None,
                 rssi: int | None = None, valid_crc: bool = True) -> None: ...

class _SyncModem:
    crc_errors: int
    rx_crc_error: bool
    def configure(self, lora_cfg: dict[str, Any]) -> None: ...
    def send(self, packet: bytes | bytearray, tx_at_ms: int | None = None) -> int: ...
    def recv(self, timeout_ms: int | None = None, rx_length: int = 0xFF,
             rx_packet: RxPacket | None = None) -> RxPacket | None: ...
    def standby(self) -> None: ...
    def sleep(self) -> None: ...
    def get_time_on_air_us(self, payload_len: int) -> int: ...

class SX1276(_SyncModem):
    def __init__(self, spi: SPI, cs: Pin, dio0: Pin | None = None, dio1: Pin | None = None,
                 reset: Pin | None = None, lora_cfg: dict[str, Any] | None = None, ant_sw: Any = None) -> None: ...

class SX1262(_SyncModem):
    def __init__(self, spi: SPI, cs: Pin, busy: Pin, dio1: Pin | None = None, dio2_rf_sw: bool = True,
                 dio3_tcxo_millivolts: int | None = None, dio3_tcxo_start_time_us: int = 1000,
                 reset: Pin | None = None, lora_cfg: dict[str, Any] | None = None, ant_sw: Any = None) -> None: ...
