# hal.Gnss on a UART; power through the PMU's GNSS rail (backup supply kept by the PMU driver).
from machine import UART, Pin


class Gnss:
    def __init__(self, gnss_cfg: dict, pmu) -> None:
        self.cfg = gnss_cfg
        self.pmu = pmu
        # rxbuf well above one second of GGA+GSA+RMC, so a busy cycle never loses a sentence
        self.uart = UART(gnss_cfg["uart"], gnss_cfg["baud"], tx=Pin(gnss_cfg["tx"]), rx=Pin(gnss_cfg["rx"]), rxbuf=2048)
        self.wake = Pin(gnss_cfg["wake"], Pin.OUT) if gnss_cfg.get("wake") is not None else None

    def power(self, on: bool) -> None:
        self.pmu.gnss_power(on)
        if self.wake is not None:
            self.wake.value(1 if on else 0)  # L76K: high = running

    def read(self) -> bytes | None:
        if not self.uart.any():
            return None
        return self.uart.read()

    def write(self, data: bytes) -> None:
        self.uart.write(data)
