# The wake cycle: one run from wake-up to deep sleep (docs/firmware.md "Wake cycle").
#
#   seal edges -> seal frames, sent at once -> GNSS on (PMU) -> fix or timeout -> GNSS off
#   -> position (+ status when due) frames queued on flash -> send in queue order (seal first)
#   with random jitter, each followed by a short receive window for the ack / config downlink
#   -> free acked frames -> arm seal wake -> deep sleep until the next report.
#
# Handed a hal.Drivers bundle and a validated config; knows no pins.
import hashlib
import json

from segelfw import airtime, counter, crypto, hal, link, nmea, policy, protocol as P, records
from segelfw.queue import Queue
from segelfw.seal import DEBOUNCE_MS, Seal
from segelfw.state import RtcState

FW_VERSION = 0x10  # major 1, minor 0 (status frames: major << 4 | minor)
CFG_REARM = 0x01  # config downlink flags
CFG_STATUS_NOW = 0x02
ACK_TAIL_MS = 400  # after the ack, listen this much longer for a config downlink


def _log(msg):
    print("segel: " + msg)


class Cycle:
    def __init__(self, drivers, cfg, link_=None, board=None):
        self.d = drivers
        self.cfg = cfg
        self.board = board or {}
        self.dev = int(cfg["device_id"], 16)
        self.clock = drivers.clock
        self.t_start = drivers.clock.ticks_ms()
        self.st = RtcState(drivers.rtc)
        fl = drivers.flash
        self.ctr = counter.CounterStore(fl.path("ctr.bin"), self.st, cfg["key_epoch"])
        self.q = Queue(fl.path("queue.bin"), cfg["queue_bytes"])
        self.seal = Seal(fl.path("seal.log"), drivers.seal.names, self.st)
        self.policy = policy.Policy(cfg)
        self.remote_path = fl.path("remote.json")
        self.policy.apply_remote(self._load_remote())
        self.keys = self._keys(cfg)
        self.keys.block = (drivers.aes_block or crypto.ecb_block)(self.keys.enc_key)
        if link_ is None:
            link_ = link.LoraLink(drivers.radio, cfg, drivers.system.random_u32, self.board.get("radio"))
        self.link = link_
        if hasattr(self.link, "set_sf"):
            self.link.set_sf(self.policy.sf)
        self._seal_done = 0  # seal.new_events already turned into frames
        self.sent = []  # (counter, type) transmitted in this wake, in order
        self.acked = 0
        self.downlinks = {"accepted": 0, "replayed": 0, "bad": 0}

    # --- small helpers --------------------------------------------------------------------------
    def now(self):
        t = self.clock.time()
        return t if t >= hal.Clock.TIME_VALID else 0

    def _keys(self, cfg):
        # HKDF costs ~6 KB of heap churn per wake on MicroPython: keep the sub-keys in RTC memory,
        # bound to a fingerprint of the device key so a re-provisioned key is never mixed up
        dk = bytes(int(cfg["key"][i : i + 2], 16) for i in range(0, 64, 2))
        fp = hashlib.sha256(dk).digest()[:4].hex()
        c = self.st.get("keys")
        if c and c[0] == fp:
            return P.Keys(dk, block=_no_block, subkeys=(bytes.fromhex(c[1]), bytes.fromhex(c[2])))
        k = P.Keys(dk, block=_no_block)
        self.st["keys"] = [fp, k.enc_key.hex(), k.mac_key.hex()]
        return k

    def wait_ms(self, ms):
        # in steps, feeding the watchdog (30 s) on the way: jitter may be up to 60 s
        while ms > 0:
            step = ms if ms < 1000 else 1000
            self.clock.sleep_ms(step)
            self.d.wdt.feed()
            ms -= step

    def awake_ms(self):
        return self.clock.ticks_diff(self.clock.ticks_ms(), self.t_start)

    def _load_remote(self):
        try:
            f = open(self.remote_path)
            try:
                return json.loads(f.read())
            finally:
                f.close()
        except (OSError, ValueError):
            return {}

    def _flags(self, fix):
        f = self.seal.flags()
        if fix:
            f |= P.F_FIX
        mv, ext = self.batt
        if self.policy.low_battery(mv, ext):
            f |= P.F_LOW_BATT
        if ext:
            f |= P.F_EXT_POWER
        return f

    def _queue(self, ftype, t, body):
        c = self.ctr.next()
        frame = P.encode(self.keys, ftype, self.dev, c, t, body)
        dropped = self.q.put(frame)
        if dropped:
            _log("queue full: dropped " + str(len(dropped)) + " oldest frame(s)")
        return c

    def _seal_frames(self, events):
        fx = self.st.get("fix")
        lat, lon = (fx[0], fx[1]) if fx else (0, 0)
        for ev, seq, flags, t in events:
            f = flags | (P.F_FIX if fx else 0)
            self._queue(P.T_SEAL, t, P.seal_body(ev, seq, f, lat, lon))
            _log("seal event " + str(ev) + " seq " + str(seq) + " at " + str(t))

    def poll_seal(self):
        """Debounced seal changes (and re-arms, power-restored) become queued seal frames."""
        self.seal.poll(self.d.seal, self.now(), self.clock.ticks_ms())
        if not self.seal.settled():
            self.clock.sleep_ms(DEBOUNCE_MS + 5)
            self.seal.poll(self.d.seal, self.now(), self.clock.ticks_ms())
        ev = self.seal.new_events[self._seal_done :]
        self._seal_done = len(self.seal.new_events)
        if ev:
            self._seal_frames(ev)
        return ev

    # --- GNSS -----------------------------------------------------------------------------------
    def get_fix(self):
        """Power the GNSS, wait for a good fix or the timeout, power it off. -> nmea.Fix or None."""
        reader = nmea.Reader()
        self.d.pmu.gnss_power(True)
        t0 = self.clock.ticks_ms()
        deadline = self.policy.fix_deadline_ms()
        good = None
        last_seal = t0
        try:
            while self.clock.ticks_diff(self.clock.ticks_ms(), t0) < deadline:
                self.d.wdt.feed()
                data = self.d.gnss.read()
                if data:
                    fx = reader.feed(data)
                    if fx.valid() and self.policy.fix_good_enough(fx.hdop_x10, fx.sats):
                        good = fx
                        break
                if self.clock.ticks_diff(self.clock.ticks_ms(), last_seal) >= 1000:
                    last_seal = self.clock.ticks_ms()
                    if self.poll_seal():
                        self.send_queue(seal_only=True)  # a seal event never waits for the fix
                self.clock.sleep_ms(200)
        finally:
            self.d.pmu.gnss_power(False)
        self.fix_ms = self.clock.ticks_diff(self.clock.ticks_ms(), t0)
        self.nmea_rejects = reader.rejects
        if good is not None and good.unix:
            if abs(self.clock.time() - good.unix) > 2:
                self.clock.set_time(good.unix)
        return good

    # --- radio ----------------------------------------------------------------------------------
    def send_queue(self, seal_only=False):
        budget = self.policy.frames_per_wake() - len(self.sent)
        if budget <= 0:
            return
        done = [c for c, _ in self.sent]
        for c, frame in self.q.pending():
            if budget <= 0:
                break
            if c in done:
                continue
            if seal_only and frame[0] & 0x0F != P.T_SEAL:
                break  # seal frames come first in queue order
            jit = self.cfg["jitter_ms"]
            if jit:
                self.wait_ms(self.d.system.random_u32() % (jit + 1))
            self.d.wdt.feed()
            try:
                self.link.send(frame)
            except link.DwellError as e:
                _log(str(e))
                return
            self.sent.append((c, frame[0] & 0x0F))
            budget -= 1
            self.receive_window(c)

    def receive_window(self, counter):
        """Listen up to ack_window_ms; once the ack for `counter` is in, only ACK_TAIL_MS more
        (a config downlink may follow the ack)."""
        t0 = self.clock.ticks_ms()
        end = self.cfg["ack_window_ms"]
        while True:
            left = end - self.clock.ticks_diff(self.clock.ticks_ms(), t0)
            if left <= 0:
                return
            down = self.link.recv(left)
            if down is None:
                return
            got = self.handle_downlink(down)
            if isinstance(got, list) and counter in got:
                end = min(end, self.clock.ticks_diff(self.clock.ticks_ms(), t0) + ACK_TAIL_MS)

    def handle_downlink(self, frame):
        try:
            ftype, dev, c, t, body = P.decode(self.keys, frame)
        except P.ProtocolError as e:
            self.downlinks["bad"] += 1
            _log("downlink dropped: " + str(e))
            return False
        if dev != self.dev or ftype < 8:
            self.downlinks["bad"] += 1
            return False
        last = self.st.get("down", -1)
        if self.st.get("down_epoch") != self.cfg["key_epoch"]:
            last = self._load_remote().get("down", -1)
        if c <= last:
            self.downlinks["replayed"] += 1
            _log("downlink dropped: replayed counter " + str(c))
            return False
        self.st["down"] = c
        self.st["down_epoch"] = self.cfg["key_epoch"]
        self.downlinks["accepted"] += 1
        if ftype == P.T_ACK:
            names = P.parse_ack(body)
            self.acked += self.q.ack(names)
            return names
        if ftype == P.T_CONFIG:
            self.apply_config(P.parse_config(body), c)
        return True

    def apply_config(self, c, down_counter):
        remote = self._load_remote()
        if 30 <= c["report_interval_s"] <= 86400:
            remote["report_interval_s"] = c["report_interval_s"]
        if 5 <= c["fix_timeout_s"] <= 600:
            remote["fix_timeout_s"] = c["fix_timeout_s"]
        if c["sf"]:
            reg = airtime.region(self.cfg["region"])
            if 7 <= c["sf"] <= 12 and airtime.time_on_air_us(c["sf"], 24, reg["bw_khz"], self.cfg["preamble"]) <= reg["dwell_us"]:
                remote["sf"] = c["sf"]
            else:
                _log("config downlink: SF" + str(c["sf"]) + " refused (dwell limit)")
        remote["down"] = down_counter
        records.replace(self.remote_path, json.dumps(remote).encode())
        self.policy.apply_remote(remote)
        if hasattr(self.link, "set_sf"):
            self.link.set_sf(self.policy.sf)
        if c["flags"] & CFG_REARM:
            why = self.seal.rearm(self.now(), self.d.seal.levels())
            _log("re-arm: " + (why or "done"))
            self.poll_seal()
        if c["flags"] & CFG_STATUS_NOW:
            self.st["status_at"] = None

    # --- the cycle ------------------------------------------------------------------------------
    def run(self):
        """One wake. Returns the deep-sleep duration requested (ms)."""
        d = self.d
        d.wdt.feed()
        cause = d.system.reset_cause()
        self.batt = (d.pmu.battery_mv(), d.pmu.external_power())
        booted_cold = not self.st.valid
        if cause != P.R_DEEPSLEEP or booted_cold:
            _log("boot, reset cause " + str(cause) + (", RTC memory lost" if booted_cold else ""))
        if booted_cold:
            self.st["up_s"] = 0
            if cause in (P.R_POWER_ON, P.R_BROWNOUT, P.R_HARD):
                self.seal.power_restored(self.now())
        self._technician_rearm()
        seal_events = self.poll_seal()
        seal_wake = bool(seal_events)
        if any(ft == P.T_SEAL for ft in self.q.types):
            self.send_queue(seal_only=True)  # seal frames go out before anything else

        now = self.now()
        fix = None
        self.fix_ms = 0
        if self.policy.want_position(self.st.get("pos_at"), now, seal_wake):
            fix = self.get_fix()
            now = self.now()
            if fix is not None:
                self.st["fix"] = [fix.lat_e7, fix.lon_e7, now]
                body = P.position_body(fix.lat_e7, fix.lon_e7, self._flags(True), fix.hdop_x10, fix.speed_kmh)
            else:
                body = P.position_body(0, 0, self._flags(False), 255, 0)
            self._queue(P.T_POSITION, now, body)
            self.st["pos_at"] = now or None

        low = self.policy.low_battery(*self.batt)
        low_changed = low != self.st.get("low", False)
        self.st["low"] = low
        if self.policy.want_status(self.st.get("status_at"), now, cause, P.R_DEEPSLEEP, low_changed) or booted_cold:
            up_min = (self.st.get("up_s", 0) + self.awake_ms() // 1000) // 60
            body = P.status_body(self.batt[0], FW_VERSION, len(self.q) + 1, cause, self._flags(fix is not None), up_min)
            self._queue(P.T_STATUS, now, body)
            self.st["status_at"] = now or None

        self.send_queue()
        self.poll_seal()
        if any(ft == P.T_SEAL and c not in [s[0] for s in self.sent] for c, ft in zip(self.q.counters, self.q.types)):
            self.send_queue(seal_only=True)
        return self.finish()

    def _technician_rearm(self):
        path = self.d.flash.path("rearm")
        if records.exists(path):
            why = self.seal.rearm(self.now(), self.d.seal.levels())
            records.remove(path)
            _log("technician re-arm: " + (why or "done"))

    def finish(self):
        d = self.d
        self.link.sleep()
        d.seal.arm_wake()
        awake = self.awake_ms()
        ms = self.policy.sleep_ms(awake, *self.batt)
        self.st["up_s"] = self.st.get("up_s", 0) + (awake + ms) // 1000
        self.st["wakes"] = self.st.get("wakes", 0) + 1
        self.st.save()
        self.sleep_request_ms = ms
        d.wdt.feed()
        d.system.deepsleep(ms)
        return ms


def _no_block(b):
    raise RuntimeError("AES block function not bound")


def run(drivers, cfg, link_=None, board=None):
    """One wake cycle; on the device the final deepsleep() never returns."""
    return Cycle(drivers, cfg, link_, board).run()
