# Base-station role: the board listens on one channel and spreading factor, hands every good
# packet to `segel bridge` over USB serial (serialframe records), transmits the downlinks the
# bridge sends into the tracker's receive window, and reports its health.
# Pure logic: the radio (micropython-lib lora API: recv/send), the serial port (read/write) and the
# clock are handed in. CPython and MicroPython. docs/bridge.md explains the whole path.
import struct

from segelfw import airtime, serialframe as sf

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


try:
    from time import ticks_add, ticks_diff, ticks_ms
except ImportError:  # CPython: the same wrap-around arithmetic as MicroPython's ticks
    import time as _time

    _PERIOD = 1 << 30

    def ticks_ms():
        return int(_time.monotonic() * 1000) & (_PERIOD - 1)

    def ticks_add(t, d):
        return (t + d) & (_PERIOD - 1)

    def ticks_diff(a, b):
        return ((a - b + (_PERIOD >> 1)) & (_PERIOD - 1)) - (_PERIOD >> 1)


FW_VERSION = const(0x10)  # 1.0, as in status frames
RESEND_MS = const(800)  # an uplink record not acknowledged by the bridge is written again
MAX_PENDING = const(256)  # uplink records kept until acknowledged (about 13 KB)
MAX_DEVICES = const(512)  # devices whose last uplink time is remembered for downlink timing
TX_MARGIN_MS = const(20)  # radio turn-around before a downlink


class BaseStation:
    """One base station. Call poll() in a loop (run() does), or step it from a simulator."""

    def __init__(self, radio, port, cfg, boot_id=None, clock=None, temperature=None, health_interval_ms=60000,
                 continuous=None):
        reg = airtime.region(cfg["region"])
        ch = cfg.get("channel", "random")
        self.freq_khz = reg["channels_khz"][0] if ch == "random" else ch
        self.sf = cfg["sf"]
        self.base_id = cfg["device_id"]
        self.region = cfg["region"]
        self.window_ms = cfg.get("ack_window_ms", 2500)
        self.preamble = cfg.get("preamble", 8)
        self.dwell_us = reg["dwell_us"]
        self.radio = radio
        self.port = port
        self.ticks = clock.ticks_ms if clock is not None else ticks_ms  # a hal.Clock, or the board's ticks
        self.temperature = temperature  # callable -> deg C or None
        self.health_ms = health_interval_ms
        if boot_id is None:
            import os

            boot_id = struct.unpack(">H", os.urandom(2))[0]
        self.boot = boot_id & 0xFFFF
        self.dec = sf.Decoder()
        self.seq = 0
        self.pending = {}  # seq -> [record args..., rx ticks, last written ticks]
        self.order = []  # pending seqs, oldest first
        self.heard = {}  # device bytes -> ticks of its last uplink (end of reception)
        self.started = self.ticks()
        self.last_health = None
        self.rx_packets = 0
        self.crc_errors = 0
        self.tx_packets = 0
        self.tx_late = 0
        self.dropped = 0  # uplink records dropped unacknowledged because the queue was full
        self.foreign_downlinks = 0  # other base stations' downlinks heard (not forwarded)
        # Continuous receive (micropython-lib lora start_recv(continuous=True) + poll_recv()): the
        # modem never leaves RX between packets, and resumes RX by itself after a downlink. A
        # radio without that low-level API (a simulator's) is read with recv(timeout) windows.
        self.continuous = hasattr(radio, "poll_recv") if continuous is None else continuous
        self._listening = False
        self._crc_seen = 0
        self.hello()

    # --- serial out ---
    def _write(self, payload):
        try:
            self.port.write(sf.encode(payload))
        except OSError:
            pass  # cable out: records stay pending and are written again

    def hello(self):
        region = self.region.encode()
        self._write(struct.pack(sf.HELLO_FMT, sf.R_HELLO, self.boot, FW_VERSION, self.freq_khz, self.sf, self.base_id.encode()) + region)

    def health(self):
        t = sf.TEMP_NONE
        if self.temperature is not None:
            try:
                v = self.temperature()
                if v is not None:
                    t = int(v * 10)
            except Exception:  # noqa: BLE001 - a sensor fault must not stop reception
                pass
        up = ticks_diff(self.ticks(), self.started) // 1000
        self._write(struct.pack(sf.HEALTH_FMT, sf.R_HEALTH, self.boot, up, self.rx_packets, self.crc_errors, self.tx_packets,
                                self.tx_late, self.dropped, len(self.order), t, self.freq_khz, self.sf, self.base_id.encode()))

    def _write_uplink(self, seq, now):
        p = self.pending[seq]
        age = ticks_diff(now, p[4])
        self._write(sf.uplink(self.boot, seq, age if age > 0 else 0, p[1], p[2], self.freq_khz, self.sf, p[0]))
        p[5] = now

    # --- radio in ---
    def receive(self, pkt, now=None):
        """Handle one RxPacket (bytearray with ticks_ms, rssi, snr, crc_error)."""
        now = self.ticks() if now is None else now
        self.rx_packets += 1
        if getattr(pkt, "crc_error", False):
            self.crc_errors += 1
            return
        rx_t = getattr(pkt, "ticks_ms", None)
        if rx_t is None:
            rx_t = now
        frame = bytes(pkt)
        if frame and frame[0] & 0x0F >= 8:
            # a downlink (ACK, CONFIG) that a neighbouring base station sent on our channel:
            # not a tracker's frame, so it is neither forwarded nor taken as "heard"
            self.foreign_downlinks += 1
            return
        if len(frame) >= 4:
            dev = frame[1:4]
            if dev not in self.heard and len(self.heard) >= MAX_DEVICES:
                self.heard.pop(next(iter(self.heard)))
            self.heard[dev] = rx_t
        if len(self.order) >= MAX_PENDING:
            self.pending.pop(self.order.pop(0))
            self.dropped += 1
        seq = self.seq
        self.seq = (seq + 1) & 0xFFFFFFFF
        self.pending[seq] = [frame, int(pkt.rssi), int(pkt.snr), 0, rx_t, now]
        self.order.append(seq)
        self._write_uplink(seq, now)

    # --- serial in ---
    def handle(self, payload, now=None):
        now = self.ticks() if now is None else now
        kind = payload[0]
        if kind == sf.R_ACK and len(payload) >= 7:
            _, boot, seq = struct.unpack(sf.ACK_FMT, payload[:7])
            if boot == self.boot and seq in self.pending:
                del self.pending[seq]
                self.order.remove(seq)
        elif kind == sf.R_DOWN:
            try:
                seq, dev, delay, frame = sf.parse_down(payload)
            except ValueError:
                return
            self._write(struct.pack(sf.TXDONE_FMT, sf.R_TXDONE, self.boot, seq, self.downlink(dev, delay, frame, now)))
        elif kind == sf.R_HELLO_REQ:
            self.hello()
            self.health()
            # a (re)connected bridge gets everything still unacknowledged at once
            for s in self.order:
                self._write_uplink(s, now)

    def downlink(self, dev, delay_ms, frame, now):
        """Transmit one downlink; -> TXDONE status."""
        toa_us = airtime.time_on_air_us(self.sf, len(frame), 125, self.preamble)
        if toa_us > self.dwell_us:
            return sf.TX_TOO_LONG
        if delay_ms < 0:
            heard = self.heard.get(dev)
            if heard is None:
                return sf.TX_NO_WINDOW
            # the tracker listens for window_ms after its uplink ends; the whole downlink must fit
            left = self.window_ms - ticks_diff(now, heard) - TX_MARGIN_MS - toa_us // 1000
            if left < 0:
                self.tx_late += 1
                return sf.TX_LATE
            at = None
        else:
            at = ticks_add(now, delay_ms) if delay_ms > TX_MARGIN_MS else None
        try:
            self.radio.send(frame, tx_at_ms=at) if at is not None else self.radio.send(frame)
        except Exception:  # noqa: BLE001 - report, keep listening
            return sf.TX_RADIO_ERROR
        self.tx_packets += 1
        return sf.TX_SENT

    # --- the loop ---
    def _listen(self):
        """Continuous mode: -> the packet received since the last call, or None."""
        if not self._listening:
            self.radio.start_recv(timeout_ms=None, continuous=True)
            self._listening = True
            self._crc_seen = getattr(self.radio, "crc_errors", 0)
        got = self.radio.poll_recv()
        crc = getattr(self.radio, "crc_errors", 0)
        if crc != self._crc_seen:  # the driver drops CRC-error packets in continuous mode and counts them
            n = (crc - self._crc_seen) & 0xFFFFFFFF
            self.rx_packets += n
            self.crc_errors += n
            self._crc_seen = crc
        if got is False:  # not receiving (aborted): start again on the next poll
            self._listening = False
        return None if got is True or got is False else got

    def poll(self, rx_timeout_ms=20):
        pkt = self._listen() if self.continuous else self.radio.recv(timeout_ms=rx_timeout_ms)
        now = self.ticks()
        if pkt is not None:
            self.receive(pkt, now)
        try:
            data = self.port.read()
        except OSError:
            data = None
        if data:
            for p in self.dec.feed(data):
                self.handle(p, now)
        for s in self.order[:8]:
            if ticks_diff(now, self.pending[s][5]) >= RESEND_MS:
                self._write_uplink(s, now)
        if self.last_health is None or ticks_diff(now, self.last_health) >= self.health_ms:
            self.last_health = now
            self.health()

    def run(self, stop=None):
        while stop is None or not stop():
            self.poll()


def lora_cfg(cfg, freq_khz, board_radio=None):
    reg = airtime.region(cfg["region"])
    c = {"freq_khz": freq_khz, "sf": cfg["sf"], "bw": str(reg["bw_khz"]), "coding_rate": 5, "preamble_len": cfg["preamble"],
         "syncword": cfg["syncword"], "output_power": cfg["tx_power_dbm"], "crc_en": True, "implicit_header": False}
    if board_radio and board_radio.get("tx_ant"):
        c["tx_ant"] = board_radio["tx_ant"]
    return c
