# The report policy: what a wake cycle does and how long the tracker then sleeps (docs/firmware.md).
# Pure functions of the config, the clock and what happened; no hardware. hardware/power_model.py
# imports these constants and functions, so the battery figures follow the firmware's real policy.
from segelfw import airtime

DUTY_PERCENT = 1  # LoRaWAN AS923 default (36 s per hour); a self-imposed ceiling for Indonesia
MAX_FRAMES_PER_WAKE = 8
CRITICAL_MARGIN_MV = 150  # below low_batt_mv - this, reports slow down
SLOW_FACTOR = 4
MIN_SLEEP_MS = 5000

# Back-off (capped): after n failures in a row, the next n-th try waits min(2^n - 1, cap) wakes.
# A failed fix costs fix_timeout_s with the GNSS and the CPU on; a wake whose frames no gateway
# acknowledges costs an ack window per frame; a WiFi attempt where no depot answers costs the
# WiFi timeout with the radio on.
FIX_BACKOFF_CAP = 11  # at most 11 wakes without a fix attempt: one an hour at 5-minute reports
SEND_BACKOFF_CAP = 5  # unacknowledged: one probe frame every 6th wake at most (30 min at 5 min)
WIFI_BACKOFF_CAP = 23  # a depot WiFi that does not answer: tried again after 2 h at most
DEPOT_RADIUS_M = 300  # a fix within this distance of a known depot makes a WiFi attempt worth it

MODE_TRACKING = 0
MODE_STORAGE = 1


def backoff_wakes(failures, cap):
    """Wakes to skip after `failures` failures in a row: 0, 1, 3, 7, ... capped."""
    if failures <= 0:
        return 0
    if failures >= 16:
        return cap
    w = (1 << failures) - 1
    return w if w < cap else cap


def distance_m(lat1_e7, lon1_e7, lat2_e7, lon2_e7):
    """Equirectangular distance; ample for "within a few hundred metres of a depot"."""
    import math

    la1 = lat1_e7 / 1e7
    la2 = lat2_e7 / 1e7
    dx = (lon2_e7 - lon1_e7) / 1e7 * math.cos(math.radians((la1 + la2) / 2))
    dy = la2 - la1
    return math.sqrt(dx * dx + dy * dy) * 111320.0


class Policy:
    def __init__(self, cfg):
        self.cfg = cfg
        self.interval_s = cfg["report_interval_s"]
        self.fix_timeout_s = cfg["fix_timeout_s"]
        self.sf = cfg["sf"]
        self.mode = MODE_TRACKING

    def apply_remote(self, remote):
        """Overrides from a signed config downlink (already range-checked by the cycle)."""
        if remote:
            self.interval_s = remote.get("report_interval_s", self.interval_s)
            self.fix_timeout_s = remote.get("fix_timeout_s", self.fix_timeout_s)
            self.sf = remote.get("sf", self.sf)
            self.mode = remote.get("mode", self.mode)

    @property
    def storage(self):
        return self.mode == MODE_STORAGE

    def low_battery(self, mv, external):
        return not external and 0 < mv < self.cfg["low_batt_mv"]

    def critical_battery(self, mv, external):
        return not external and 0 < mv < self.cfg["low_batt_mv"] - CRITICAL_MARGIN_MV

    def base_interval_s(self):
        return self.cfg["storage_interval_s"] if self.storage else self.interval_s

    def interval_ms(self, mv, external):
        s = self.base_interval_s() * (SLOW_FACTOR if self.critical_battery(mv, external) else 1)
        return s * 1000

    def want_position(self, last_position_unix, now_unix, seal_wake):
        """A position every timer wake; also right after a seal event (where did it happen?).

        A timer wake soon after a seal wake (less than half an interval) skips it. In storage mode
        only a seal wake takes a position."""
        if seal_wake:
            return True
        if self.storage:
            return False
        if last_position_unix is None or now_unix < 1600000000:
            return True
        return now_unix - last_position_unix >= self.interval_s // 2

    def want_fix(self, fix_wait, seal_wake):
        """Power the GNSS this wake? Not while a failed-fix back-off runs (fix_wait wakes left);
        always after a seal event."""
        return seal_wake or fix_wait <= 0

    def want_status(self, last_status_unix, now_unix, reset_cause, deep_sleep_code, low_batt_changed):
        if reset_cause != deep_sleep_code or low_batt_changed or last_status_unix is None:
            return True  # a boot that was not a deep-sleep wake: say why (reset cause)
        if self.storage:
            return True  # storage mode: the status frame is the report
        return now_unix - last_status_unix >= self.cfg["status_interval_s"] - self.interval_s // 2

    def frames_per_wake(self, frame_len=24):
        """How many frames one wake may send: the duty-cycle share of one interval, 1..MAX."""
        reg = airtime.region(self.cfg["region"])
        toa_ms = airtime.time_on_air_us(self.sf, frame_len, reg["bw_khz"], self.cfg["preamble"]) // 1000
        budget_ms = self.interval_s * 10 * DUTY_PERCENT  # interval_s * 1000 * percent / 100
        n = budget_ms // max(1, toa_ms)
        return max(1, min(MAX_FRAMES_PER_WAKE, n))

    def send_budget(self, noack, send_wait, seal_pending):
        """Frames to send this wake. While no gateway acknowledges (noack wakes in a row), one
        probe frame, and only when the back-off allows; seal frames always go."""
        if noack <= 0:
            return self.frames_per_wake()
        if send_wait > 0:
            return seal_pending
        return seal_pending + 1

    def want_wifi(self, last_fix, depots, external, cold_boot, wifi_wait):
        """Try the depot WiFi this wake? Only where a depot is known (configured or learned at a
        successful connection) or on USB power or the first boot (the provisioning bench), and
        not while a failed-attempt back-off runs."""
        if wifi_wait > 0:
            return False
        if external or cold_boot:
            return True
        if last_fix is None:
            return False
        for d in depots:
            if distance_m(last_fix[0], last_fix[1], d[0], d[1]) <= DEPOT_RADIUS_M:
                return True
        return False

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
