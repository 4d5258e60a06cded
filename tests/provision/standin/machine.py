# Stand-in for MicroPython's `machine` on the WebAssembly port (which has none), for `segel check`
# tests: the chips a T-Beam carries, answering at the register / wire level their datasheets
# describe. The board's state comes from /standin/scenario.json:
#   {"i2c": {"52": {"18": 67, ...}},          PMU registers (decimal address -> byte)
#    "pins": {"13": 0, ...},                    input levels
#    "spi": {"chip": "sx1276", "regs": {...}}   SX1276 registers, or {"chip": "sx1262", "status": n,
#                                               "regs": {"1856": 20, ...}} for the SX1262
#    "gnss": {"power": [52, 18, 3], "wake": 7, "nmea": "..."}}
# GNSS: the receiver sends its NMEA on the UART only while its PMU rail bit is set and, when it has
# a wake pin (L76K), while that pin is driven high.
import json

with open("/standin/scenario.json") as _f:
    _S = json.load(_f)
_I2C = {int(a): {int(r): v for r, v in regs.items()} for a, regs in _S.get("i2c", {}).items()}
_LEVELS = {int(p): v for p, v in _S.get("pins", {}).items()}
_SPI = _S.get("spi", {})
_SPI_REGS = {int(r): v for r, v in _SPI.get("regs", {}).items()}
_GNSS = _S.get("gnss", {})


class Pin:
    IN = 1
    OUT = 3
    PULL_UP = 1
    IRQ_RISING = 1
    IRQ_FALLING = 2

    def __init__(self, id, mode=None, pull=None, value=None):
        self.id = id
        if value is not None:
            _LEVELS[id] = value

    def value(self, v=None):
        if v is None:
            return _LEVELS.get(self.id, 0)
        _LEVELS[self.id] = 1 if v else 0

    def irq(self, handler=None, trigger=0):
        return None


class I2C:
    def __init__(self, id, scl=None, sda=None, freq=400000):
        self.id = id

    def readfrom_mem(self, addr, reg, n):
        regs = _I2C.get(addr)
        if regs is None:
            raise OSError(19)  # ENODEV: nothing acknowledges the address
        return bytes(regs.get(reg + i, 0) for i in range(n))

    def writeto_mem(self, addr, reg, buf):
        regs = _I2C.get(addr)
        if regs is None:
            raise OSError(19)
        for i, b in enumerate(buf):
            regs[reg + i] = b


class SPI:
    def __init__(self, id, baudrate=1000000, sck=None, mosi=None, miso=None):
        self.id = id

    def write_readinto(self, out, buf):
        for i in range(len(buf)):
            buf[i] = 0
        chip = _SPI.get("chip")
        if chip == "sx1276":  # first byte: wnr bit + address; the register comes back on the second
            if out[0] & 0x80:
                _SPI_REGS[out[0] & 0x7F] = out[1]
            else:
                buf[1] = _SPI_REGS.get(out[0] & 0x7F, 0)
        elif chip == "sx1262":  # every byte clocks the status out first; ReadRegister: cmd, addr16, NOP, data...
            st = _SPI.get("status", 0)
            if out[0] == 0xC0:
                buf[1] = st
            elif out[0] == 0x1D:
                addr = (out[1] << 8) | out[2]
                for i in range(4, len(out)):
                    buf[i] = _SPI_REGS.get(addr + i - 4, 0)
                buf[1] = buf[2] = buf[3] = st

    def write(self, out):
        pass


class UART:
    def __init__(self, id, baudrate=9600, tx=None, rx=None, rxbuf=256, **kw):
        self.id = id
        self.sent = False

    def _running(self):
        p = _GNSS.get("power")
        if p and not (_I2C.get(p[0], {}).get(p[1], 0) >> p[2] & 1):
            return False
        w = _GNSS.get("wake")
        return w is None or _LEVELS.get(w, 0) == 1

    def any(self):
        return 1 if self._running() and not self.sent and _GNSS.get("nmea") else 0

    def read(self, n=None):
        if not self.any():
            return None
        self.sent = True
        return _GNSS["nmea"].encode()

    def write(self, data):
        return len(data)


def reset_cause():
    return 1


def wake_reason():
    return 0


DEEPSLEEP_RESET = 4
EXT0_WAKE = 2
EXT1_WAKE = 3
