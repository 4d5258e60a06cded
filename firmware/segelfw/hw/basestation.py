# The base-station role on the board: USB serial as the bridge's line, the radio, the watchdog.
# firmware/main.py calls main() when config role == "base"; the role's logic is segelfw.basestation.
from segelfw import airtime
from segelfw.basestation import BaseStation, lora_cfg


class UsbSerial:
    """The USB serial console as the bridge's line: records out on stdout, bytes in from stdin."""

    def __init__(self):
        import select
        import sys

        self.out = sys.stdout.buffer
        self.inp = sys.stdin.buffer
        self.p = select.poll()
        self.p.register(sys.stdin, select.POLLIN)

    def write(self, b):
        return self.out.write(b)

    def read(self):
        buf = bytearray()
        while len(buf) < 512 and self.p.poll(0):
            c = self.inp.read(1)
            if not c:
                break
            buf.extend(c)
        return bytes(buf) if buf else None


def _temperature():
    try:
        import esp32

        f = getattr(esp32, "mcu_temperature", None)  # ESP32-S3; the classic ESP32 has no usable sensor
        return f() if f is not None else None
    except ImportError:
        return None


POLL_MS = 5  # between polls of the modem's IRQ flags; reception itself never stops


def main(cfg, board):
    """Run the base station forever on the board (never returns): the radio in continuous
    receive, polled every POLL_MS; the serial line and the watchdog in between."""
    import time

    import micropython

    from segelfw.hw import pmu, radio, system

    wdt = system.Watchdog(30000)
    p = pmu.make(board["pmu"])
    p.rail("radio", True)
    ch = cfg["channel"]
    freq = airtime.region(cfg["region"])["channels_khz"][0] if ch == "random" else ch
    r = radio.make(board["radio"], lora_cfg(cfg, freq, board["radio"]), calibrate_khz=freq)
    print("segel: base station " + cfg["device_id"] + " on " + str(freq) + " kHz SF" + str(cfg["sf"]) + "; serial records follow")
    micropython.kbd_intr(-1)  # a record may hold 0x03: the bridge's bytes must not raise KeyboardInterrupt
    bs = BaseStation(r, UsbSerial(), cfg, temperature=_temperature)
    while True:
        bs.poll()
        wdt.feed()
        time.sleep_ms(POLL_MS)
