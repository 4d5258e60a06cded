# The report policy: what a wake cycle does and how long the tracker then sleeps.
# Pure functions of the config, the clock and what happened; no hardware.
from segelfw import airtime

DUTY_PERCENT = 1  # LoRaWAN AS923 default (36 s per hour); a self-imposed ceiling for Indonesia
MAX_FRAMES_PER_WAKE = 8
CRITICAL_MARGIN_MV = 150  # below low_batt_mv - this, reports slow down
SLOW_FACTOR = 4
MIN_SLEEP_MS = 5000


class Policy:
    def __init__(self, cfg):
        self.cfg = cfg
        self.interval_s = cfg["report_interval_s"]
        self.fix_timeout_s = cfg["fix_timeout_s"]
        self.sf = cfg["sf"]

    def apply_remote(self, remote):
        """Overrides from a signed config downlink (already range-checked by the cycle)."""
        if remote:
            self.interval_s = remote.get("report_interval_s", self.interval_s)
            self.fix_timeout_s = remote.get("fix_timeout_s", self.fix_timeout_s)
            self.sf = remote.get("sf", self.sf)

    def low_battery(self, mv, external):
        return not external and 0 < mv < self.cfg["low_batt_mv"]

    def critical_battery(self, mv, external):
        return not external and 0 < mv < self.cfg["low_batt_mv"] - CRITICAL_MARGIN_MV

    def interval_ms(self, mv, external):
        s = self.interval_s * (SLOW_FACTOR if self.critical_battery(mv, external) else 1)
        return s * 1000

    def want_position(self, last_position_unix, now_unix, seal_wake):
        """A position every timer wake; also right after a seal event (where did it happen?).

        A timer wake soon after a seal wake (less than half an interval) skips the fix."""
        if seal_wake or last_position_unix is None or now_unix < 1600000000:
            return True
        return now_unix - last_position_unix >= self.interval_s // 2

    def want_status(self, last_status_unix, now_unix, reset_cause, deep_sleep_code, low_batt_changed):
        if reset_cause != deep_sleep_code or low_batt_changed or last_status_unix is None:
            return True  # a boot that was not a deep-sleep wake: say why (reset cause)
        return now_unix - last_status_unix >= self.cfg["status_interval_s"] - self.interval_s // 2

    def frames_per_wake(self, frame_len=24):
        """How many frames one wake may send: the duty-cycle share of one interval, 1..MAX."""
        reg = airtime.region(self.cfg["region"])
        toa_ms = airtime.time_on_air_us(self.sf, frame_len, reg["bw_khz"], self.cfg["preamble"]) // 1000
        budget_ms = self.interval_s * 10 * DUTY_PERCENT  # interval_s * 1000 * percent / 100
        n = budget_ms // max(1, toa_ms)
        return max(1, min(MAX_FRAMES_PER_WAKE, n))

    def sleep_ms(self, awake_ms, mv, external, next_due_ms=None):
        """Sleep so that wakes stay on the interval grid, never less than MIN_SLEEP_MS."""
        ms = self.interval_ms(mv, external) - awake_ms
        if next_due_ms is not None:
            ms = min(ms, next_due_ms)
        return max(MIN_SLEEP_MS, ms)

    def fix_good_enough(self, hdop_x10, sats):
        return hdop_x10 <= 50 and sats >= 4

    def fix_deadline_ms(self):
        return self.fix_timeout_s * 1000
