# Minimal simulated drivers for one wake cycle on real MicroPython (the WebAssembly port), where
# simhw (CPython only) cannot run. Virtual time; the radio answers each uplink with a signed ack
# made by the firmware's own encoder. `probe()` samples the live heap at every driver call.
import gc
import os

from segelfw import hal, protocol

PEAK = [0]


def probe():
    gc.collect()
    a = gc.mem_alloc()
    if a > PEAK[0]:
        PEAK[0] = a


class Clock(hal.Clock):
    def __init__(self, start):
        self.ms = start * 1000  # true time; the RTC reads it plus `off`
        self.off = 0
        self.boot = self.ms

    def time(self):
        return (self.ms + self.off) // 1000

    def set_time(self, unix):
        self.off = unix * 1000 - self.ms

    def ticks_ms(self):
        return self.ms - self.boot

    def sleep_ms(self, ms):
        probe()
        self.ms += ms


class Gnss(hal.Gnss):
    def __init__(self, clock, seconds):
        self.clock = clock
        self.seconds = seconds  # list of bytes: what the receiver says in each second after power-on
        self.on_at = None

    def power(self, on):
        self.on_at = self.clock.ms if on else None
        self.last = -1

    def read(self):
        # like a UART: each second's sentences are returned once, then nothing until the next second
        probe()
        if self.on_at is None:
            return None
        i = (self.clock.ms - self.on_at) // 1000
        if i == self.last:
            return None
        self.last = i
        return self.seconds[min(i, len(self.seconds) - 1)]


class Seal(hal.SealInputs):
    names = ("loop", "lid")

    def __init__(self):
        self.lv = {"loop": False, "lid": False}
        self.edges = []

    def levels(self):
        return dict(self.lv)

    def events(self):
        e = self.edges
        self.edges = []
        return e


class Radio(hal.Radio):
    def __init__(self, clock, keys, dev, n_acks=64):
        self.clock = clock
        self.dev = dev
        self.sent = []
        self.inbox = []
        # the gateway's acks, signed in advance so the heap figures count only the tracker's work
        self.acks = [protocol.encode(keys, protocol.T_ACK, dev, c + 1, 0, protocol.ack_body(c, 0)) for c in range(n_acks)]

    def configure(self, cfg):
        self.cfg = cfg

    def send(self, packet, tx_at_ms=None):
        probe()
        self.sent.append(bytes(packet))
        self.clock.ms += 371
        c = (packet[4] << 16) | (packet[5] << 8) | packet[6]
        self.inbox.append(self.acks[c])
        return self.clock.ticks_ms()

    def recv(self, timeout_ms=None, rx_length=0xFF, rx_packet=None):
        probe()
        if self.inbox:
            self.clock.ms += 600
            return hal.RxPacket(self.inbox.pop(0), self.clock.ticks_ms(), 20, -90)
        self.clock.ms += timeout_ms or 0
        return None


class Rtc(hal.RtcMemory):
    def __init__(self):
        self.data = b""

    def read(self):
        return self.data

    def write(self, data):
        self.data = bytes(data)


class Pmu(hal.Pmu):
    def __init__(self, gnss):
        self.gnss = gnss

    def battery_mv(self):
        return 3900

    def rail(self, name, on):
        if name == "gnss":
            self.gnss.power(on)


class Wdt(hal.Watchdog):
    def feed(self):
        probe()


class System(hal.System):
    def __init__(self):
        self.cause = protocol.R_POWER_ON
        self.slept = None
        self.x = 12345

    def reset_cause(self):
        return self.cause

    def deepsleep(self, ms):
        self.slept = ms

    def random_u32(self):
        self.x = (self.x * 1103515245 + 12345) & 0x7FFFFFFF
        return self.x


def mkdir(p):
    try:
        os.mkdir(p)
    except OSError:
        pass


def drivers(start, seconds, keys, dev, aes_block, root="/flash"):
    mkdir(root)
    clock = Clock(start)
    gnss = Gnss(clock, seconds)
    return hal.Drivers(clock, gnss, Seal(), Radio(clock, keys, dev), Rtc(), hal.Flash(root), Pmu(gnss), Wdt(),
                       System(), aes_block=aes_block)
