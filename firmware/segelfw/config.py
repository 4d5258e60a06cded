# The one validator of a tracker's config.json (docs/firmware.md "Config").
# validate(cfg) returns a new dict with every default filled in, or raises ConfigError naming the
# field, so a tracker never boots half-configured. Pure logic: CPython and MicroPython.
from segelfw import airtime

ROLES = ("tracker", "base")
FRAME_LEN = 24  # the longest uplink (position, seal, status): docs/protocol.md


class ConfigError(ValueError):
    """A bad config field. str(e) is a sentence a technician can act on."""

    def __init__(self, field, reason):
        self.field = field
        self.reason = reason
        super().__init__("config field '" + field + "': " + reason)


# key: (default, description). None default = required.
DEFAULTS = {
    "device_id": None,
    "key": None,
    "key_epoch": 0,
    "board": None,
    "role": "tracker",
    "region": "AS923-2",
    "sf": 10,
    "channel": "random",
    "tx_power_dbm": 14,
    "report_interval_s": 300,
    "fix_timeout_s": 60,
    "ack_window_ms": 2500,
    "jitter_ms": 3000,
    "status_interval_s": 3600,
    "storage_interval_s": 14400,
    "low_batt_mv": 3450,
    "queue_bytes": 16384,
    "syncword": 0x12,
    "preamble": 8,
    "antenna_gain_dbi": None,
    "wifi": None,
}
WIFI_DEFAULTS = {"ssid": None, "password": "", "host": None, "port": 1883, "user": None, "mqtt_password": None,
                 "depots": [], "timeout_s": 15}

_HEX = "0123456789abcdef"


def _is_hex(s, n):
    if not isinstance(s, str) or len(s) != n:
        return False
    for c in s:
        if c not in _HEX:
            return False
    return True


def _int(cfg, field, lo, hi, unit="", prefix=""):
    v = cfg[field]
    field = prefix + field
    if isinstance(v, bool) or not isinstance(v, int):
        raise ConfigError(field, "must be a whole number" + (" of " + unit if unit else "") + ", got " + repr(v))
    if v < lo or v > hi:
        raise ConfigError(field, "must be between " + str(lo) + " and " + str(hi) + (" " + unit if unit else "") + ", got " + str(v))
    return v


def _known(cfg, allowed, prefix):
    for k in cfg:
        if k not in allowed:
            raise ConfigError(prefix + str(k), "unknown key (a typo?); known keys: " + ", ".join(sorted(allowed)))


def validate(cfg):
    """-> a complete config dict. Raises ConfigError(field, reason) on the first bad field."""
    if not isinstance(cfg, dict):
        raise ConfigError("(file)", "the config must be a JSON object {...}")
    _known(cfg, DEFAULTS, "")
    out = {}
    for k in DEFAULTS:
        if k in cfg:
            out[k] = cfg[k]
        elif DEFAULTS[k] is None and k not in ("wifi", "antenna_gain_dbi"):
            raise ConfigError(k, "is missing; provisioning writes it (segel provision)")
        else:
            out[k] = DEFAULTS[k]

    d = out["device_id"]
    if isinstance(d, str):
        d = d.lower()
    if not _is_hex(d, 6):
        raise ConfigError("device_id", "must be 6 hex digits like '000101', got " + repr(out["device_id"]))
    out["device_id"] = d
    k = out["key"]
    if isinstance(k, str):
        k = k.lower()
    if not _is_hex(k, 64):
        raise ConfigError("key", "must be 64 hex digits (the 32-byte device key from provisioning)")
    out["key"] = k
    _int(out, "key_epoch", 0, 0xFFFF)
    b = out["board"]
    if not isinstance(b, str) or not b or "/" in b or "." == b[:1]:
        raise ConfigError("board", "must name a file in hardware/boards/ without .json, like 'tbeam-v1.1'")
    if out["role"] not in ROLES:
        raise ConfigError("role", "must be one of " + ", ".join(ROLES) + ", got " + repr(out["role"]))
    if out["region"] not in airtime.REGIONS:
        why = airtime.REMOVED.get(out["region"])
        raise ConfigError("region", "must be one of " + ", ".join(sorted(airtime.REGIONS)) + ", got " + repr(out["region"])
                          + ("" if why is None else " (removed: " + why + ")"))
    reg = airtime.REGIONS[out["region"]]
    pre = _int(out, "preamble", 6, 65535, "symbols")
    sf = _int(out, "sf", 7, 12)
    toa = airtime.time_on_air_us(sf, FRAME_LEN, reg["bw_khz"], pre)
    if toa > reg["dwell_us"]:
        raise ConfigError(
            "sf",
            "SF" + str(sf) + " puts a " + str(FRAME_LEN) + "-byte frame on air for " + str(toa // 1000)
            + " ms (preamble " + str(pre) + "), over the " + str(reg["dwell_us"] // 1000) + " ms dwell limit of "
            + out["region"] + "; use a lower SF (SF7 to SF10 with the default preamble of 8)",
        )
    ch = out["channel"]
    if ch != "random":
        chans = reg["channels_khz"]
        if isinstance(ch, bool) or not isinstance(ch, int):
            raise ConfigError("channel", "must be \"random\" or a frequency in kHz like " + str(chans[0]) + ", got " + repr(ch))
        lo, hi = chans[0] - 62, chans[-1] + 62
        if ch < lo or ch > hi:
            raise ConfigError(
                "channel",
                str(ch) + " kHz is outside " + out["region"] + " (" + str(chans[0]) + " to " + str(chans[-1]) + " kHz)",
            )
    _int(out, "tx_power_dbm", -9, reg["max_eirp_dbm"], "dBm (the region's EIRP limit)")
    g = out["antenna_gain_dbi"]
    if g is not None:
        if isinstance(g, bool) or not isinstance(g, (int, float)) or g < -10 or g > 15:
            raise ConfigError("antenna_gain_dbi", "must be a number of dBi between -10 and 15 (the fitted antenna's datasheet), got " + repr(g))
    _int(out, "report_interval_s", 30, 86400, "s")
    _int(out, "fix_timeout_s", 5, 600, "s")
    if out["fix_timeout_s"] >= out["report_interval_s"]:
        raise ConfigError("fix_timeout_s", "must be shorter than report_interval_s (" + str(out["report_interval_s"]) + " s)")
    _int(out, "ack_window_ms", 100, 10000, "ms")
    _int(out, "jitter_ms", 0, 60000, "ms")
    _int(out, "status_interval_s", 60, 7 * 86400, "s")
    _int(out, "storage_interval_s", 600, 7 * 86400, "s")
    _int(out, "low_batt_mv", 2800, 4200, "mV")
    _int(out, "queue_bytes", 4096, 1 << 20, "bytes")
    _int(out, "syncword", 0, 0xFF)
    w = out["wifi"]
    if w is not None:
        out["wifi"] = _wifi(w)
    return out


def _wifi(w):
    if not isinstance(w, dict):
        raise ConfigError("wifi", "must be an object {\"ssid\": ..., \"host\": ...} or absent")
    _known(w, WIFI_DEFAULTS, "wifi.")
    o = {}
    for k in WIFI_DEFAULTS:
        o[k] = w.get(k, WIFI_DEFAULTS[k])
    for k in ("ssid", "host"):
        if not isinstance(o[k], str) or not o[k]:
            raise ConfigError("wifi." + k, "is missing or empty")
    if not isinstance(o["password"], str):
        raise ConfigError("wifi.password", "must be text")
    for k in ("user", "mqtt_password"):
        if o[k] is not None and not isinstance(o[k], str):
            raise ConfigError("wifi." + k, "must be text or absent")
    _int(o, "port", 1, 65535, "", "wifi.")
    _int(o, "timeout_s", 3, 25, "s", "wifi.")
    dep = o["depots"]
    if not isinstance(dep, list) or len(dep) > 8:
        raise ConfigError("wifi.depots", "must be a list of at most 8 [latitude, longitude] pairs in degrees")
    out = []
    for i, d in enumerate(dep):
        if (not isinstance(d, list) or len(d) != 2 or any(isinstance(x, bool) or not isinstance(x, (int, float)) for x in d)
                or not -90 <= d[0] <= 90 or not -180 <= d[1] <= 180):
            raise ConfigError("wifi.depots[" + str(i) + "]", "must be [latitude, longitude] in degrees, got " + repr(d))
        out.append([int(round(d[0] * 1e7)), int(round(d[1] * 1e7))])
    o["depots"] = out  # 1e-7 degrees, as fixes are kept
    return o


def device_int(cfg):
    return int(cfg["device_id"], 16)


def key_bytes(cfg):
    k = cfg["key"]
    return bytes(int(k[i : i + 2], 16) for i in range(0, 64, 2))


def check_board(board, cfg):
    """Cross-check a loaded board file against the config; raises ConfigError."""
    for k in ("id", "mcu", "radio", "gnss", "pmu", "seal"):
        if k not in board:
            raise ConfigError("board", "board file '" + str(cfg["board"]) + "' lacks '" + k + "'")
    if board["id"] != cfg["board"]:
        raise ConfigError("board", "board file says id '" + str(board["id"]) + "', config says '" + cfg["board"] + "'")
    chip = board["radio"].get("chip")
    if chip not in ("sx1276", "sx1262"):
        raise ConfigError("board", "radio chip " + repr(chip) + " is not supported (sx1276, sx1262)")
    mx = board["radio"].get("max_output_dbm", 17)
    if cfg["tx_power_dbm"] > mx:
        raise ConfigError("tx_power_dbm", str(cfg["tx_power_dbm"]) + " dBm is more than this board's radio gives (" + str(mx) + ")")
    mn = board["radio"].get("min_output_dbm", -9)
    if cfg["tx_power_dbm"] < mn:
        raise ConfigError("tx_power_dbm", str(cfg["tx_power_dbm"]) + " dBm is less than this board's radio can send (" + str(mn) + ")")
    eirp = cfg["tx_power_dbm"] + antenna_gain_dbi(cfg, board)
    lim = airtime.region(cfg["region"])["max_eirp_dbm"]
    if eirp > lim:
        raise ConfigError(
            "tx_power_dbm",
            str(cfg["tx_power_dbm"]) + " dBm conducted + " + str(antenna_gain_dbi(cfg, board)) + " dBi antenna = " + str(eirp)
            + " dBm EIRP, over the " + str(lim) + " dBm EIRP limit of " + cfg["region"] + "; lower tx_power_dbm to "
            + str(int(lim - antenna_gain_dbi(cfg, board))) + " or less",
        )
    return board


def antenna_gain_dbi(cfg, board):
    """The fitted antenna's gain: the config's (a crew fitted another antenna) or the board file's."""
    g = cfg.get("antenna_gain_dbi")
    if g is None:
        g = board["radio"].get("antenna_gain_dbi")
    if g is None:
        raise ConfigError("board", "board file '" + str(board.get("id")) + "' lacks radio.antenna_gain_dbi (needed for the EIRP limit)")
    return g
