# Driver interfaces between the pure logic (nmea, queue, counter, seal, policy, cycle) and hardware.
#
# The logic never touches a pin or a register: it is handed a `Drivers` bundle. Two
# implementations exist behind the same duck types:
#   segelfw/hw/*   thin drivers over machine / esp32 / micropython-lib lora (the board)
#   simhw/*        simulated hardware for CPython tests, the fleet simulator and base-station tests
# The classes below document each interface and are usable base classes (MicroPython has no
# typing.Protocol); methods raising NotImplementedError must be provided by an implementation.
#
# Units everywhere: unix seconds (int) for wall time, ticks_ms for intervals, mV, dBm, kHz.

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


RTC_MEMORY_MAX = const(2048)  # ESP32 RTC().memory() limit (machine.RTC docs)


class Clock:
    """Wall clock (survives deep sleep on the ESP32 RTC; 0-based until set) and a ms tick counter.

    time() -> int              unix seconds; values below TIME_VALID mean "not yet set"
    set_time(unix) -> None     from a GNSS fix (RMC date + time)
    ticks_ms() -> int          monotonic ms since boot (restarts after deep sleep, as on the ESP32)
    ticks_diff(a, b) -> int    a - b, wrap-safe
    sleep_ms(ms) -> None       busy/idle wait (the simulator advances virtual time instead)
    """

    TIME_VALID = 1600000000  # before 2020-09: the RTC has not been set

    def time(self):
        raise NotImplementedError

    def set_time(self, unix):
        raise NotImplementedError

    def ticks_ms(self):
        raise NotImplementedError

    def ticks_diff(self, a, b):
        return a - b

    def sleep_ms(self, ms):
        raise NotImplementedError

    def valid(self):
        return self.time() >= self.TIME_VALID


class Gnss:
    """The GNSS receiver on a UART, powered through the PMU.

    power(on) -> None     on: PMU rail on, and the module's wake/enable pin high where it has one
                          (the L76K on the T-Beam Supreme stays in standby while it is low); hot
                          start if backup power kept it warm. off: pin low, rail off, backup
                          supply (VBACKUP) kept so the next start is hot. The cycle powers the
                          receiver only through this method, never the PMU rail directly.
    read() -> bytes|None  whatever bytes the UART holds now (non-blocking), None if nothing
    write(data) -> None   commands to the receiver (UBX / PCAS), optional
    """

    def power(self, on):
        raise NotImplementedError

    def read(self):
        raise NotImplementedError

    def write(self, data):
        pass


# names of the seal inputs, in the order of board["seal"]
SEAL_INPUTS = ("loop", "lid", "case")


class SealInputs:
    """The seal wire loop, the lid switch and (optionally) a case switch, on RTC-capable GPIOs.

    names -> tuple             the inputs this board has, a subset of SEAL_INPUTS
    levels() -> dict           {name: True if open now}
    events() -> list           latched edges since the last call, oldest first, each a tuple
                               (name, is_open, unix_time, ticks_ms); an IRQ records them even
                               while the cycle is busy, and the edge that woke the chip from deep
                               sleep is reported here too. Bounce is NOT filtered here (seal.py does).
    arm_wake() -> None         before deep sleep: wake on any change away from the current levels
    pin_wake() -> bool         True (once) when a seal pin woke the chip from deep sleep and the
                               port cannot say which pin or edge (MicroPython before 1.29 has no
                               machine.wake_pins()): seal.py then records an unexplained wake
    """

    names = ()

    def levels(self):
        raise NotImplementedError

    def events(self):
        raise NotImplementedError

    def arm_wake(self):
        pass

    def pin_wake(self):
        return False


class RxPacket(bytearray):
    """What Radio.recv() returns: micropython-lib lora's RxPacket (bytearray + metadata).

    Test `crc_error`, never `valid_crc` (lora's RxPacket.__init__ sets valid_crc=True always).
    """

    def __init__(self, payload, ticks_ms=None, snr=None, rssi=None, valid_crc=True):
        super().__init__(payload)
        self.ticks_ms = ticks_ms
        self.snr = snr  # dB x 4, as lora reports it
        self.rssi = rssi  # dBm
        self.valid_crc = valid_crc
        self.crc_error = not valid_crc


class Radio:
    """A LoRa modem with micropython-lib lora's synchronous API (SX1276 / SX1262 drivers).

    configure(lora_cfg: dict) -> None      keys freq_khz, sf, bw, coding_rate, output_power,
                                            preamble_len, syncword, crc_en, ... (lora README)
    send(packet, tx_at_ms=None) -> int      blocks until sent; ticks_ms when it went out
    recv(timeout_ms=None, rx_length=0xFF, rx_packet=None) -> RxPacket | None
    standby() / sleep() -> None
    get_time_on_air_us(payload_len) -> int
    """

    def configure(self, lora_cfg):
        raise NotImplementedError

    def send(self, packet, tx_at_ms=None):
        raise NotImplementedError

    def recv(self, timeout_ms=None, rx_length=0xFF, rx_packet=None):
        raise NotImplementedError

    def standby(self):
        pass

    def sleep(self):
        pass


class RtcMemory:
    """Up to 2048 bytes that survive deep sleep and soft reset, lost on power loss (machine.RTC).

    read() -> bytes            b"" after a power cut
    write(data: bytes) -> None raises ValueError over RTC_MEMORY_MAX
    """

    def read(self):
        raise NotImplementedError

    def write(self, data):
        raise NotImplementedError


class Flash:
    """The LittleFS file system: `root` is a directory; the logic uses open()/os under it."""

    def __init__(self, root):
        self.root = root.rstrip("/") if len(root) > 1 else root

    def path(self, name):
        return self.root + "/" + name


class Pmu:
    """The board's power management unit (AXP192 / AXP2101 over I2C).

    battery_mv() -> int        battery voltage (0 if no battery)
    external_power() -> bool   USB / VBUS present
    rail(name, on) -> None     name from board["pmu"]["rails"]: "radio", "gnss", "oled";
                               never the MCU rail
    gnss_power(on) -> None     the GNSS rail; the backup supply stays on for hot starts
    sleep() -> None            before deep sleep: rails the sleeping tracker does not need off,
                               PMU interrupts masked and cleared, PMU ADCs off
    """

    def battery_mv(self):
        raise NotImplementedError

    def external_power(self):
        return False

    def rail(self, name, on):
        raise NotImplementedError

    def gnss_power(self, on):
        self.rail("gnss", on)

    def sleep(self):
        pass


class Watchdog:
    """machine.WDT: once started it cannot be stopped; feed() at least every timeout."""

    def feed(self):
        pass


class System:
    """Reset cause, deep sleep, randomness.

    reset_cause() -> int       a protocol.R_* code (power-on, watchdog, deep-sleep wake, ...)
    deepsleep(ms) -> None      never returns on the device (the chip restarts into main.py);
                               simulations record the request and return
    random_u32() -> int        from the hardware RNG (os.urandom)
    """

    def reset_cause(self):
        raise NotImplementedError

    def deepsleep(self, ms):
        raise NotImplementedError

    def random_u32(self):
        import os

        b = os.urandom(4)
        return (b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]


# Stand-ins for a part whose driver could not be built (segelfw/hw/board.py): the tracker still
# wakes, logs seal events, queues frames and sleeps safely without it.
class NoGnss(Gnss):
    def __init__(self, why=""):
        self.why = why

    def power(self, on):
        pass

    def read(self):
        return None


class NoRadio(Radio):
    def __init__(self, why=""):
        self.why = why

    def configure(self, lora_cfg):
        pass

    def send(self, packet, tx_at_ms=None):
        raise OSError("no radio: " + self.why)

    def recv(self, timeout_ms=None, rx_length=0xFF, rx_packet=None):
        return None


class NoPmu(Pmu):
    def __init__(self, why=""):
        self.why = why

    def battery_mv(self):
        return 0

    def rail(self, name, on):
        pass


class NoSeal(SealInputs):
    def __init__(self, why=""):
        self.why = why

    def levels(self):
        return {}

    def events(self):
        return []


class Drivers:
    """Everything the wake cycle is handed. aes_block(key16) -> f(block16) -> bytes (ECB).
    faults: one line per part whose driver failed to start (a No* stand-in is in its place)."""

    def __init__(self, clock, gnss, seal, radio, rtc, flash, pmu, wdt, system, aes_block=None, faults=()):
        self.clock = clock
        self.gnss = gnss
        self.seal = seal
        self.radio = radio
        self.rtc = rtc
        self.flash = flash
        self.pmu = pmu
        self.wdt = wdt
        self.system = system
        self.aes_block = aes_block
        self.faults = list(faults)
