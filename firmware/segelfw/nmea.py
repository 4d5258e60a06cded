# NMEA 0183 parser for GGA, RMC and GSA (any talker: GP, GN, GL, GA, BD, GB).
# Checksum: XOR of the characters between '$' and '*', two hex digits. Coordinates come out as
# integers in 1e-7 degrees, computed in integers so every Python gives the same answer.
# Garbage is rejected with a reason (NmeaError.reason) and counted, never raised out of feed().

MAX_LINE = 96  # NMEA says 82 characters; some receivers run a little longer


class NmeaError(ValueError):
    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


def checksum(body):
    c = 0
    for ch in body:
        c ^= ch
    return c


def _hexval(b):
    v = 0
    for ch in b:
        if 48 <= ch <= 57:
            d = ch - 48
        elif 65 <= ch <= 70:
            d = ch - 55
        elif 97 <= ch <= 102:
            d = ch - 87
        else:
            raise NmeaError("checksum is not hex")
        v = v * 16 + d
    return v


def split(line):
    """Check framing and checksum of one sentence (bytes, with or without CR LF) -> list of str fields."""
    line = line.strip()
    if not line:
        raise NmeaError("empty line")
    if line[0] != 36:  # '$'
        raise NmeaError("does not start with $")
    if len(line) > MAX_LINE:
        raise NmeaError("line too long")
    star = line.find(b"*")
    if star < 0:
        raise NmeaError("no checksum")
    if len(line) != star + 3:
        raise NmeaError("checksum must be 2 hex digits at the end")
    body = line[1:star]
    for ch in body:
        if ch < 32 or ch > 126:
            raise NmeaError("non-printable character")
    if _hexval(line[star + 1 :]) != checksum(body):
        raise NmeaError("bad checksum")
    return body.decode().split(",")


def _digits(s, what):
    if not s:
        raise NmeaError("empty " + what)
    if not s.isdigit():
        raise NmeaError("bad " + what)
    return int(s)


def _decimal(s, what):
    """'12.345' -> (12345, 3): an integer and its number of decimals."""
    if "." in s:
        a, b = s.split(".", 1)
    else:
        a, b = s, ""
    if not a:
        a = "0"
    v = _digits(a + b, what) if b else _digits(a, what)
    return v, len(b)


def _coord(value, hemi, deg_digits, pos, neg, limit, what):
    # ddmm.mmmm / dddmm.mmmm -> 1e-7 degrees, rounded half up in integers
    if len(value) < deg_digits + 2 or (len(value) > deg_digits + 2 and value[deg_digits + 2] != "."):
        raise NmeaError("bad " + what)
    deg = _digits(value[:deg_digits], what)
    m, k = _decimal(value[deg_digits:], what)
    scale = 10**k
    if m > 60 * scale:  # exactly 60 is a rounding artefact some encoders write (pynmeagps does)
        raise NmeaError(what + " minutes over 60")
    e7 = deg * 10000000 + (m * 10000000 + 30 * scale) // (60 * scale)
    if e7 > limit:
        raise NmeaError(what + " out of range")
    if hemi == neg:
        return -e7
    if hemi != pos:
        raise NmeaError("bad " + what + " hemisphere")
    return e7


def _hms(s):
    if len(s) < 6:
        raise NmeaError("bad time")
    h, m, sec = _digits(s[0:2], "time"), _digits(s[2:4], "time"), _digits(s[4:6], "time")
    if h > 23 or m > 59 or sec > 60:
        raise NmeaError("bad time")
    return h * 3600 + m * 60 + sec


def days_from_civil(y, m, d):
    # days since 1970-01-01 (Howard Hinnant's algorithm), integer only
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _x10(s, what):
    if not s:
        return None
    v, k = _decimal(s, what)
    if k == 0:
        return v * 10
    return (v + (5 * 10 ** (k - 1))) // 10 ** (k - 1) if k > 1 else v


def parse(line):
    """One sentence -> dict with "type" in ("GGA", "RMC", "GSA"). Raises NmeaError(reason)."""
    f = split(line)
    tag = f[0]
    if len(tag) != 5:
        raise NmeaError("bad address field")
    kind = tag[2:]
    if kind == "GGA":
        if len(f) < 15:
            raise NmeaError("GGA has too few fields")
        q = _digits(f[6], "fix quality") if f[6] else 0
        out = {"type": "GGA", "tod": _hms(f[1]) if f[1] else None, "quality": q,
               "sats": _digits(f[7], "satellites") if f[7] else 0, "hdop_x10": _x10(f[8], "HDOP")}
        if q > 0:
            out["lat_e7"] = _coord(f[2], f[3], 2, "N", "S", 900000000, "latitude")
            out["lon_e7"] = _coord(f[4], f[5], 3, "E", "W", 1800000000, "longitude")
        return out
    if kind == "RMC":
        if len(f) < 12:
            raise NmeaError("RMC has too few fields")
        if f[2] not in ("A", "V"):
            raise NmeaError("bad RMC status")
        out = {"type": "RMC", "valid": f[2] == "A", "tod": _hms(f[1]) if f[1] else None, "unix": None}
        if f[9]:
            if len(f[9]) != 6:
                raise NmeaError("bad date")
            d, mo, y = _digits(f[9][0:2], "date"), _digits(f[9][2:4], "date"), _digits(f[9][4:6], "date")
            if not (1 <= d <= 31 and 1 <= mo <= 12):
                raise NmeaError("bad date")
            if out["tod"] is not None:
                out["unix"] = days_from_civil(2000 + y, mo, d) * 86400 + out["tod"]
        if out["valid"]:
            out["lat_e7"] = _coord(f[3], f[4], 2, "N", "S", 900000000, "latitude")
            out["lon_e7"] = _coord(f[5], f[6], 3, "E", "W", 1800000000, "longitude")
            kn_x100 = 0
            if f[7]:
                v, k = _decimal(f[7], "speed")
                kn_x100 = v * 100 // 10**k
            out["speed_kmh"] = (kn_x100 * 1852 + 50000) // 100000  # knots -> km/h, rounded
        return out
    if kind == "GSA":
        if len(f) < 18:
            raise NmeaError("GSA has too few fields")
        return {"type": "GSA", "fix": _digits(f[2], "fix type") if f[2] else 1,
                "pdop_x10": _x10(f[15], "PDOP"), "hdop_x10": _x10(f[16], "HDOP"), "vdop_x10": _x10(f[17][:5], "VDOP")}
    raise NmeaError("unsupported sentence " + kind)


class Fix:
    """What the receiver says now, merged from GGA + RMC + GSA."""

    def __init__(self):
        self.lat_e7 = 0
        self.lon_e7 = 0
        self.hdop_x10 = 255
        self.speed_kmh = 0
        self.sats = 0
        self.unix = None  # from RMC date + time
        self.gga_fix = False
        self.rmc_valid = False
        self.mode = 1  # GSA 1 none, 2 = 2D, 3 = 3D

    def valid(self):
        return self.gga_fix and self.rmc_valid


class Reader:
    """Feed raw UART bytes; complete lines are parsed into `fix`. Rejects are counted by reason."""

    def __init__(self):
        self.fix = Fix()
        self._buf = bytearray(MAX_LINE + 1)  # one line buffer for the whole fix: no heap churn
        self._n = 0
        self._over = False
        self.good = 0
        self.rejects = {}
        self.fixes = 0  # GGA sentences that carried a fix

    def feed(self, data):
        buf = self._buf
        for b in data:
            if b == 10:  # LF ends a line
                if self._n or self._over:
                    self._line_done()
            elif b == 36 and self._n:  # '$' mid-line: a new sentence began, the old one is broken
                self._reject("truncated sentence")
                buf[0] = 36
                self._n = 1
                self._over = False
            elif self._n <= MAX_LINE:
                buf[self._n] = b
                self._n += 1
            else:
                self._over = True
        return self.fix

    def _line_done(self):
        if self._over:
            self._reject("line too long")
        else:
            self._take(bytes(self._buf[: self._n]))
        self._n = 0
        self._over = False

    def _reject(self, reason):
        self.rejects[reason] = self.rejects.get(reason, 0) + 1

    def _take(self, line):
        if len(line) > 6 and not self.fix.gga_fix and line[3:6] in (b"GSA", b"RMC"):
            self.fix.rmc_valid = False
            self.good += 1  # without a GGA fix neither adds anything the fix needs: skip (heap)
            return
        if len(line) > 6 and line[3:6] == b"GSA":
            self.good += 1  # GSA adds nothing once GGA has a fix
            return
        try:
            s = parse(line)
        except NmeaError as e:
            self._reject(e.reason)
            return
        self.good += 1
        fx = self.fix
        t = s["type"]
        if t == "GGA":
            fx.gga_fix = s["quality"] > 0
            fx.sats = s["sats"]
            if fx.gga_fix:
                fx.lat_e7, fx.lon_e7 = s["lat_e7"], s["lon_e7"]
                fx.hdop_x10 = 255 if s["hdop_x10"] is None else min(255, s["hdop_x10"])
                self.fixes += 1
        elif t == "RMC":
            fx.rmc_valid = s["valid"]
            if s["unix"] is not None:
                fx.unix = s["unix"]
            if s["valid"]:
                fx.speed_kmh = s["speed_kmh"]
                if not fx.gga_fix:
                    fx.lat_e7, fx.lon_e7 = s["lat_e7"], s["lon_e7"]
        else:
            fx.mode = s["fix"]
