# The wake cycle: one run from wake-up to deep sleep (docs/firmware.md "Wake cycle").
#
#   seal edges -> seal frames, sent at once -> depot WiFi where one is known -> GNSS on (its
#   driver: PMU rail + wake pin) -> fix or timeout -> GNSS off -> position (+ status when due)
#   frames queued on flash -> send in queue order (seal first) with random jitter, each followed
#   by a short receive window for the ack / config downlink -> free acked frames -> radio asleep,
#   seal wake armed, PMU in its sleep setting, RTC state saved -> deep sleep until the next report.
#
# Failed fixes, unacknowledged sends and failed WiFi attempts back off (policy.py). Any error ends
# in fail_safe(): the same safe deep sleep. Handed a hal.Drivers bundle and a validated config;
# knows no pins.
import hashlib
import json

from segelfw import airtime, counter, crcfile, crypto, hal, link, nmea, policy, protocol as P
from segelfw.queue import Queue
from segelfw.seal import DEBOUNCE_MS, Seal
from segelfw.state import RtcState

FW_VERSION = 0x11  # major 1, minor 1 (status frames: major << 4 | minor)
CFG_REARM = P.CFG_REARM  # config downlink flags (kept here for callers of 1.0)
CFG_STATUS_NOW = P.CFG_STATUS_NOW
ACK_TAIL_MS = 400  # after the ack, listen this much longer for a config downlink
MAX_LEARNED_DEPOTS = 4  # where a depot WiFi answered, remembered on flash (remote.json)


def _log(msg):
    print("segel: " + msg)


class Cycle:
    def __init__(self, drivers, cfg, link_=None, board=None, wifi=None):
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
        self.lora = link.LoraLink(drivers.radio, cfg, drivers.system.random_u32, self.board.get("radio"), drivers.clock)
        self.lora.set_sf(self.policy.sf)
        self.link = self.lora if link_ is None else link_
        self.wifi = wifi  # callable() -> a connected MqttLink, raising OSError (hw/wifi.connect)
        self._seal_done = 0  # seal.new_events already turned into frames
        self.sent = []  # (counter, type) transmitted in this wake, in order
        self.acked = 0
        self.downlinks = {"accepted": 0, "replayed": 0, "bad": 0}
        self.batt = (0, False)
        self.fix_ms = 0
        self.applied = False  # a config downlink was applied in this wake

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
        """data/remote.json, each value checked again: a corrupt file must not stop every wake."""
        try:
            f = open(self.remote_path)
            try:
                r = json.loads(f.read())
            finally:
                f.close()
        except (OSError, ValueError):
            return {}
        return _checked_remote(r, self.cfg)

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
        self.d.gnss.power(True)  # the driver: PMU rail, and the wake pin where the module has one (L76K)
        t0 = self.clock.ticks_ms()
        deadline = self.policy.fix_deadline_ms()
        good = None
        last_seal = t0
        try:
            while self.clock.ticks_diff(self.clock.ticks_ms(), t0) < deadline:
                self.d.wdt.feed()
                try:
                    data = self.d.gnss.read()
                except OSError as e:  # UART fault: no fix this wake, never a stuck tracker
                    _log("GNSS read failed: " + str(e))
                    break
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
            self.d.gnss.power(False)
        self.fix_ms = self.clock.ticks_diff(self.clock.ticks_ms(), t0)
        self.nmea_rejects = reader.rejects
        if good is not None and good.unix:
            if abs(self.clock.time() - good.unix) > 2:
                self.clock.set_time(good.unix)
        return good

    # --- radio ----------------------------------------------------------------------------------
    def send_queue(self, seal_only=False):
        if seal_only:
            budget = self.policy.frames_per_wake() - len(self.sent)
        else:
            seals = sum(1 for ft in self.q.types if ft == P.T_SEAL)
            noack = 0 if self.acked else self.st.get("noack", 0)  # a gateway answered in this wake
            budget = self.policy.send_budget(noack, self.st.get("send_wait", 0), seals) - len(self.sent)
            budget = min(budget, self.policy.frames_per_wake() - len(self.sent))
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
            except OSError as e:  # the radio or the broker failed: frames stay queued
                _log("send failed (" + str(e) + ")")
                if self.link is self.lora:
                    return
                _log("depot link lost, using LoRa")
                self._close_link()
                self.link = self.lora
                continue
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
            try:
                down = self.link.recv(left)
            except OSError as e:
                _log("receive failed (" + str(e) + ")")
                return
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
        """Apply a verified config downlink; queue an applied frame saying what is now in force."""
        remote = self._load_remote()
        result = 0
        if c["report_interval_s"]:
            if 30 <= c["report_interval_s"] <= 86400:
                remote["report_interval_s"] = c["report_interval_s"]
            else:
                result |= P.A_INTERVAL_REFUSED
        if c["fix_timeout_s"]:
            if 5 <= c["fix_timeout_s"] <= 600 and c["fix_timeout_s"] < remote.get("report_interval_s", self.cfg["report_interval_s"]):
                remote["fix_timeout_s"] = c["fix_timeout_s"]
            else:
                result |= P.A_FIX_TIMEOUT_REFUSED
        if c["sf"]:
            reg = airtime.region(self.cfg["region"])
            if 7 <= c["sf"] <= 12 and airtime.time_on_air_us(c["sf"], 24, reg["bw_khz"], self.cfg["preamble"]) <= reg["dwell_us"]:
                remote["sf"] = c["sf"]
            else:
                result |= P.A_SF_REFUSED
                _log("config downlink: SF" + str(c["sf"]) + " refused (dwell limit)")
        if c["flags"] & P.CFG_STORAGE:
            remote["mode"] = policy.MODE_STORAGE
        elif c["flags"] & P.CFG_TRACKING:
            remote["mode"] = policy.MODE_TRACKING
        remote["down"] = down_counter
        crcfile.replace(self.remote_path, json.dumps(remote).encode())
        self.policy.apply_remote(remote)
        self.lora.set_sf(self.policy.sf)
        if hasattr(self.link, "set_sf"):
            self.link.set_sf(self.policy.sf)
        if c["flags"] & P.CFG_REARM:
            why = self.seal.rearm(self.now(), self.d.seal.levels())
            _log("re-arm: " + (why or "done"))
            result |= P.A_REARM_REFUSED if why else P.A_REARMED
            self.poll_seal()
        # the confirmation (the gateway shows the command as applied), sent in this wake when the
        # budget allows, and a status frame at the next wake; a newer applied frame supersedes an
        # unsent older one (it names the latest downlink counter and every setting in force)
        old = [c for c, ft in zip(self.q.counters, self.q.types) if ft == P.T_APPLIED and c not in [x[0] for x in self.sent]]
        if old:
            self.q.ack(old)
        self._queue(P.T_APPLIED, self.now(), P.applied_body(down_counter, self.policy.base_interval_s(), self.policy.fix_timeout_s,
                                                             self.policy.mode, self.policy.sf, result))
        self.st["status_at"] = None
        self.applied = True

    # --- the cycle ------------------------------------------------------------------------------
    def run(self):
        """One wake. Returns the deep-sleep duration requested (ms)."""
        d = self.d
        d.wdt.feed()
        cause = d.system.reset_cause()
        self.batt = self._battery()
        booted_cold = not self.st.valid
        if cause != P.R_DEEPSLEEP or booted_cold:
            _log("boot, reset cause " + str(cause) + (", RTC memory lost" if booted_cold else ""))
        for f in getattr(d, "faults", ()):
            _log("hardware fault: " + f)
        if booted_cold:
            self.st["up_s"] = 0
            if cause in (P.R_POWER_ON, P.R_BROWNOUT, P.R_HARD):
                self.seal.power_restored(self.now())
        if self.st.get("fails"):
            _log("the last wake ended in an error (" + str(self.st.get("fails")) + " in a row)")
        self._technician_rearm()
        acked0 = self.acked
        seal_events = self.poll_seal()
        seal_wake = bool(seal_events)
        self._maybe_wifi(cause != P.R_DEEPSLEEP)
        if any(ft == P.T_SEAL for ft in self.q.types):
            self.send_queue(seal_only=True)  # seal frames go out before anything else

        now = self.now()
        fix = None
        self.fix_ms = 0
        if self.policy.want_position(self.st.get("pos_at"), now, seal_wake):
            wait = self.st.get("fix_wait", 0)
            if self.policy.want_fix(wait, seal_wake) and not isinstance(d.gnss, hal.NoGnss):
                fix = self.get_fix()
                fails = 0 if fix is not None else self.st.get("nofix", 0) + 1
                self.st["nofix"] = fails
                self.st["fix_wait"] = policy.backoff_wakes(fails, policy.FIX_BACKOFF_CAP)
                if fails:
                    _log("no fix (" + str(fails) + " in a row): next attempt in " + str(self.st["fix_wait"] + 1) + " wake(s)")
            else:
                self.st["fix_wait"] = wait - 1
            now = self.now()
            if fix is not None:
                self.st["fix"] = [fix.lat_e7, fix.lon_e7, now]
                body = P.position_body(fix.lat_e7, fix.lon_e7, self._flags(True), fix.hdop_x10, fix.speed_kmh)
            else:
                body = P.position_body(0, 0, self._flags(False), 255, 0)  # a heartbeat: alive, no fix
            self._queue(P.T_POSITION, now, body)
            self.st["pos_at"] = now or None

        if self.link is not self.lora and self.cfg["wifi"] is not None and self.st.get("fix"):  # the depot WiFi answered here
            self._learn_depot(self.st["fix"])
        low = self.policy.low_battery(*self.batt)
        low_changed = low != self.st.get("low", False)
        self.st["low"] = low
        if self.policy.want_status(self.st.get("status_at"), now, cause, P.R_DEEPSLEEP, low_changed) or booted_cold:
            self._queue_status(cause, fix is not None, now)

        self.send_queue()
        if self.applied:  # a config came in: its applied frame goes in this wake
            self.applied = False
            self.send_queue()
        self.poll_seal()
        if any(ft == P.T_SEAL and c not in [s[0] for s in self.sent] for c, ft in zip(self.q.counters, self.q.types)):
            self.send_queue(seal_only=True)
        self._send_backoff(acked0)
        return self.finish()

    def _battery(self):
        try:
            return (self.d.pmu.battery_mv(), self.d.pmu.external_power())
        except OSError as e:  # the PMU does not answer on I2C: report 0 mV, carry on
            _log("PMU read failed: " + str(e))
            return (0, False)

    def _queue_status(self, cause, fix, now):
        up_min = (self.st.get("up_s", 0) + self.awake_ms() // 1000) // 60
        body = P.status_body(self.batt[0], FW_VERSION, len(self.q) + 1, cause, self._flags(fix), up_min)
        self._queue(P.T_STATUS, now, body)
        self.st["status_at"] = now or None

    def _send_backoff(self, acked_before):
        """No ack for anything sent this wake: back off (one probe frame, every few wakes)."""
        sent = len(self.sent)
        wait = self.st.get("send_wait", 0)
        if sent and self.acked > acked_before or not sent and not len(self.q):
            self.st["noack"] = 0
            self.st["send_wait"] = 0
        elif sent:
            n = self.st.get("noack", 0) + 1
            self.st["noack"] = n
            self.st["send_wait"] = policy.backoff_wakes(n, policy.SEND_BACKOFF_CAP)
            _log("no gateway acknowledged (" + str(n) + " wakes): next probe in " + str(self.st["send_wait"] + 1) + " wake(s)")
        elif wait > 0:
            self.st["send_wait"] = wait - 1

    # --- depot WiFi -----------------------------------------------------------------------------
    def _depots(self):
        return self.cfg["wifi"]["depots"] + self._load_remote().get("depots", [])

    def _maybe_wifi(self, cold_boot):
        if self.wifi is None or self.cfg["wifi"] is None or self.link is not self.lora:
            return
        fx = self.st.get("fix")
        wait = self.st.get("wifi_wait", 0)
        if not self.policy.want_wifi(fx, self._depots(), self.batt[1], cold_boot, wait):
            if wait > 0:
                self.st["wifi_wait"] = wait - 1
            return
        self.d.wdt.feed()
        try:
            self.link = self.wifi()
        except OSError as e:
            n = self.st.get("wifi_fail", 0) + 1
            self.st["wifi_fail"] = n
            self.st["wifi_wait"] = policy.backoff_wakes(n, policy.WIFI_BACKOFF_CAP)
            _log("depot WiFi/MQTT unavailable (" + str(e) + "), using LoRa; next try in " + str(self.st["wifi_wait"] + 1) + " wake(s)")
            return
        finally:
            self.d.wdt.feed()
        self.st["wifi_fail"] = 0
        self.st["wifi_wait"] = 0

    def _learn_depot(self, fx):
        remote = self._load_remote()
        known = remote.get("depots", [])
        for d in self.cfg["wifi"]["depots"] + known:
            if policy.distance_m(fx[0], fx[1], d[0], d[1]) <= policy.DEPOT_RADIUS_M:
                return
        remote["depots"] = (known + [[fx[0], fx[1]]])[-MAX_LEARNED_DEPOTS:]
        crcfile.replace(self.remote_path, json.dumps(remote).encode())
        _log("depot WiFi learned here")

    def _close_link(self):
        try:
            self.link.sleep()
        except OSError:
            pass

    def _technician_rearm(self):
        path = self.d.flash.path("rearm")
        if crcfile.exists(path):
            why = self.seal.rearm(self.now(), self.d.seal.levels())
            crcfile.remove(path)
            _log("technician re-arm: " + (why or "done"))

    def finish(self):
        d = self.d
        if self.link is not self.lora:
            self._close_link()
        self.lora.sleep()
        d.seal.arm_wake()
        d.pmu.sleep()
        awake = self.awake_ms()
        ms = self.policy.sleep_ms(awake, *self.batt)
        self.st["up_s"] = self.st.get("up_s", 0) + (awake + ms) // 1000
        self.st["wakes"] = self.st.get("wakes", 0) + 1
        self.st["fails"] = 0
        self.st.save()
        self.sleep_request_ms = ms
        d.wdt.feed()
        d.system.deepsleep(ms)
        return ms


def _no_block(b):
    raise RuntimeError("AES block function not bound")


def _checked_remote(r, cfg):
    """Keep only well-formed remote settings (ranges as apply_config enforces them)."""
    if not isinstance(r, dict):
        return {}
    out = {}
    for k, lo, hi in (("report_interval_s", 30, 86400), ("fix_timeout_s", 5, 600), ("sf", 7, 12), ("down", 0, 0xFFFFFF),
                      ("mode", 0, 1)):
        v = r.get(k)
        if isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi:
            out[k] = v
    if out.get("fix_timeout_s", 0) >= out.get("report_interval_s", cfg["report_interval_s"]):
        out.pop("fix_timeout_s", None)
    dep = r.get("depots")
    if isinstance(dep, list):
        out["depots"] = [d for d in dep if isinstance(d, list) and len(d) == 2 and all(isinstance(x, int) for x in d)]
    return out


def run(drivers, cfg, link_=None, board=None, wifi=None):
    """One wake cycle; on the device the final deepsleep() never returns."""
    return Cycle(drivers, cfg, link_, board, wifi).run()


FAILS_BEFORE_RESET = 2  # after this many failed wakes in a row the RTC cache is dropped


def fail_safe(drivers, cfg, cyc=None, why=""):
    """After any error: the safe deep sleep. Every step on its own, so one failing part cannot
    keep the tracker awake: radio asleep, seal wake armed, PMU sleep setting, RTC state saved
    (with a count of failed wakes; after FAILS_BEFORE_RESET in a row the RTC cache, which flash
    can rebuild, is dropped in case it is what breaks every wake), deep sleep one interval."""
    from segelfw.state import RtcState

    d = drivers
    _log("safe sleep after an error" + (": " + why if why else ""))
    for step in ("feed", "radio", "seal", "pmu"):
        try:
            if step == "feed":
                d.wdt.feed()
            elif step == "radio":
                if cyc is not None and cyc.link is not cyc.lora:
                    cyc._close_link()
                d.radio.sleep()
            elif step == "seal":
                d.seal.arm_wake()
            else:
                d.pmu.sleep()
        except Exception as e:  # noqa: BLE001 - the next step must still run
            _log("safe sleep: " + step + " failed (" + repr(e) + ")")
    pol = cyc.policy if cyc is not None else policy.Policy(cfg)
    try:
        st = cyc.st if cyc is not None else RtcState(d.rtc)
        fails = st.get("fails", 0) + 1 if isinstance(st.get("fails", 0), int) else 1
        if fails >= FAILS_BEFORE_RESET:
            st.d = {}
        st["fails"] = fails
        st["wakes"] = st.get("wakes", 0) + 1 if isinstance(st.get("wakes", 0), int) else 1
        st.save()
    except Exception as e:  # noqa: BLE001
        _log("safe sleep: state not saved (" + repr(e) + ")")
    try:
        ms = pol.interval_ms(0, False)
    except Exception:  # noqa: BLE001
        ms = cfg["report_interval_s"] * 1000
    try:
        d.wdt.feed()
    except Exception:  # noqa: BLE001
        pass
    d.system.deepsleep(ms)
    return ms
