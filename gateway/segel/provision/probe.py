"""The MicroPython code `segel check` runs on a tracker over its raw REPL: identity, firmware, and measurements.

It prints one line, "SEGEL-CHECK " + JSON. Parts are measured at the lowest layer the chips
offer (machine.I2C registers of the PMU, machine.Pin levels, machine.SPI registers of the radio),
so a driver bug does not hide a hardware fault, except the GNSS, which is powered through the
firmware's own driver (`segelfw.hw.gnss.Gnss.power`): the check then shows whether the firmware
wakes the receiver. Register addresses: AXP192 and AXP2101 from XPowersLib's constants
(XPowersAXP192 / XPowersAXP2101), SX1276 from its datasheet (RegVersion 0x42 = 0x12, RegFrf
0x06..0x08), SX1262 from its datasheet (GetStatus 0xC0, ReadRegister 0x1D, LoRa sync word at
0x0740). Nothing is written but the PMU's GNSS rail and the GNSS wake pin, which the check
leaves on; the key is never printed; the watchdog is never started.
"""

from __future__ import annotations

MARK = "SEGEL-CHECK "

PROBE = r"""
import sys, json, time
def _segel_err(e):
    # ImportError: this MicroPython has no such hardware module (not a failed part)
    return ("unavailable: " if isinstance(e, ImportError) else "failed: ") + repr(e)
_RAILS = {
    # name: (voltage register, value mask, base mV, step mV, enable register, enable bit)
    "axp192": {"dcdc1": (0x26, 0x7F, 700, 25, 0x12, 0), "dcdc2": (0x23, 0x3F, 700, 25, 0x12, 4),
               "dcdc3": (0x27, 0x7F, 700, 25, 0x12, 1), "ldo2": (0x28, 0xF0, 1800, 100, 0x12, 2),
               "ldo3": (0x28, 0x0F, 1800, 100, 0x12, 3)},
    "axp2101": {"dcdc1": (0x82, 0x1F, 1500, 100, 0x80, 0), "aldo1": (0x92, 0x1F, 500, 100, 0x90, 0),
                "aldo2": (0x93, 0x1F, 500, 100, 0x90, 1), "aldo3": (0x94, 0x1F, 500, 100, 0x90, 2),
                "aldo4": (0x95, 0x1F, 500, 100, 0x90, 3), "bldo1": (0x96, 0x1F, 500, 100, 0x90, 4),
                "bldo2": (0x97, 0x1F, 500, 100, 0x90, 5)},
}
def _segel_pmu(cfg):
    from machine import I2C, Pin
    c = cfg["i2c"]
    i2c = I2C(c["id"], scl=Pin(c["scl"]), sda=Pin(c["sda"]), freq=c.get("freq", 400000))
    a = cfg.get("addr", 0x34)
    r = lambda reg: i2c.readfrom_mem(a, reg, 1)[0]
    out = {"type": cfg["type"], "rails": {}}
    for name, (vr, mask, base, step, er, bit) in _RAILS[cfg["type"]].items():
        v = r(vr) & mask
        while mask & 1 == 0:
            mask >>= 1
            v >>= 1
        out["rails"][name] = [base + v * step, bool(r(er) >> bit & 1)]
    if cfg["type"] == "axp192":
        b = i2c.readfrom_mem(a, 0x78, 2)
        out["battery_mv"] = ((b[0] << 4) | (b[1] & 0x0F)) * 11 // 10
        out["usb"] = bool(r(0x00) & 0xA0)
    else:
        b = i2c.readfrom_mem(a, 0x34, 2)
        out["battery_mv"] = ((b[0] & 0x3F) << 8) | b[1]
        out["usb"] = bool(r(0x00) & 0x20)
    return out
def _segel_seal(cfg):
    from machine import Pin
    return {n: Pin(cfg[n], Pin.IN).value() for n in ("loop", "lid", "case") if cfg.get(n) is not None}
def _segel_radio(board):
    try:  # the firmware's PMU driver switches the radio rail on, as the firmware does before using it
        from segelfw.hw import pmu
        pmu.make(board["pmu"]).rail("radio", True)
    except Exception:
        pass  # a missing rail shows as a radio that does not answer
    from machine import SPI, Pin
    cfg = board["radio"]
    s = cfg["spi"]
    spi = SPI(s["id"], baudrate=1000000, sck=Pin(s["sck"]), mosi=Pin(s["mosi"]), miso=Pin(s["miso"]))
    cs = Pin(cfg["cs"], Pin.OUT, value=1)
    def xfer(out):
        buf = bytearray(len(out))
        cs.value(0)
        spi.write_readinto(bytes(out), buf)
        cs.value(1)
        return buf
    if cfg["chip"] == "sx1276":
        frf = (xfer([0x06, 0])[1] << 16) | (xfer([0x07, 0])[1] << 8) | xfer([0x08, 0])[1]
        return {"chip": "sx1276", "version": xfer([0x42, 0])[1], "frf_hz": frf * 32000000 // 524288}
    busy = Pin(cfg["busy"], Pin.IN)
    t0 = time.ticks_ms()
    while busy.value() and time.ticks_diff(time.ticks_ms(), t0) < 100:
        time.sleep_ms(1)
    if busy.value():
        return {"chip": "sx1262", "busy": True}
    st = xfer([0xC0, 0])[1]
    sw = xfer([0x1D, 0x07, 0x40, 0, 0, 0])
    return {"chip": "sx1262", "status": st, "syncword": (sw[4] << 8) | sw[5]}
def _segel_gnss(cfg, seconds):
    from segelfw.hw import gnss, pmu
    g = gnss.Gnss(cfg["gnss"], pmu.make(cfg["pmu"]))
    g.power(True)
    out = {"wake": None}
    if cfg["gnss"].get("wake") is not None:
        from machine import Pin
        out["wake"] = Pin(cfg["gnss"]["wake"]).value()
    data = b""
    t0 = time.ticks_ms()
    while time.ticks_diff(time.ticks_ms(), t0) < seconds * 1000 and len(data) < 16384:
        d = g.read()
        if d:
            data += d
        time.sleep_ms(50)
    out["bytes"] = len(data)
    out["sentences"] = data.count(b"$")
    out["fix"] = None
    for line in data.split(b"\n"):
        f = line.strip().split(b",")
        if len(f) > 7 and f[0][-3:] == b"GGA" and f[6] not in (b"", b"0"):
            out["fix"] = f[7].decode()
    return out
def _segel_files(root):
    # the firmware modules on the device, to compare with what its role needs
    import os
    out = []
    def walk(d):
        for n in os.listdir(d):
            p = d + "/" + n
            if os.stat(p)[0] & 0x4000:
                walk(p)
            else:
                out.append(p[len(root):])
    try:
        walk(root + "segelfw")
    except OSError:
        pass
    return sorted(out)
def _segel_measure(board, seconds):
    hw = {}
    # radio and GNSS first: they switch their rails on through the firmware's drivers, and the PMU
    # reading after them shows whether that worked
    for part, fn in (("radio", lambda: _segel_radio(board)), ("gnss", lambda: _segel_gnss(board, seconds)),
                     ("pmu", lambda: _segel_pmu(board["pmu"])), ("seal", lambda: _segel_seal(board["seal"]))):
        try:
            hw[part] = fn()
        except Exception as e:
            hw[part] = {"error": _segel_err(e)}
    return hw
def _segel_probe(root, seconds):
    out = {"errors": []}
    board = None
    try:
        with open(root + "config.json") as f:
            cfg = json.load(f)
        for k in ("device_id", "board", "key_epoch", "region", "sf", "role", "channel", "tx_power_dbm",
                  "antenna_gain_dbi", "low_batt_mv"):
            out[k] = cfg.get(k)
    except Exception as e:
        cfg = None
        out["errors"].append("config.json unreadable: " + repr(e))
    if cfg:
        try:
            with open(root + "boards/" + str(cfg.get("board")) + ".json") as f:
                board = json.load(f)
            out["board_file"] = True
        except (OSError, ValueError):
            out["board_file"] = False
            out["errors"].append("board file boards/" + str(cfg.get("board")) + ".json missing")
    if cfg and board is not None:
        try:  # the firmware's own validator, as main.py runs it at boot
            from segelfw import config as C
            C.check_board(board, C.validate(cfg))
        except ImportError:
            pass
        except Exception as e:
            out["errors"].append("CONFIG ERROR: " + str(e))
    try:
        import segelfw
        out["firmware"] = getattr(segelfw, "__version__", None) or getattr(segelfw, "VERSION", None) or "unknown"
    except Exception as e:
        out["firmware"] = None
        out["errors"].append("firmware does not import: " + repr(e))
    out["files"] = _segel_files(root)
    v = sys.implementation.version
    out["micropython"] = "%d.%d.%d" % (v[0], v[1], v[2])
    out["mpy"] = getattr(sys.implementation, "_mpy", 0) & 0xFF
    try:
        from segelfw import selftest
    except ImportError:
        selftest = None
    if selftest is not None:
        try:
            out["selftest"] = selftest.report()
        except Exception as e:
            out["errors"].append("segelfw.selftest.report() raised: " + repr(e))
    if board is not None:
        out["hw"] = _segel_measure(board, seconds)
    print("SEGEL-CHECK " + json.dumps(out))
_segel_probe(ROOT, GNSS_SECONDS)
"""


def probe_source(root: str = "/", gnss_seconds: int = 3) -> str:
    return f"ROOT = {root!r}\nGNSS_SECONDS = {int(gnss_seconds)}\n" + PROBE
