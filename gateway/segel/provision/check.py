"""`segel check`: ask a freshly flashed tracker, over its USB serial port, who and how it is.

Talks to MicroPython's raw REPL through mpremote's serial transport (Ctrl-C stops the running
firmware, the probe below runs, the board is then soft-reset by the technician or the next
`segel check`). The probe reads the device's own config.json and board file, the firmware
version, and GNSS, seal, battery and radio self-test results: from `segelfw.selftest.report()`
when the firmware has it, otherwise from the firmware's own drivers (segelfw/hw: PMU battery
reading, seal input levels, the LoRa driver's chip probe, 3 s of NMEA). A part whose hardware
module is missing reads "unavailable"; a part that does not answer reads "failed" and makes
the check fail. It never prints the device key.
"""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass, field
from typing import Any

MARK = "SEGEL-CHECK "

PROBE = r"""
import sys, json
def _segel_err(e):
    # ImportError: this MicroPython has no such hardware module (not a failed part)
    return ("unavailable: " if isinstance(e, ImportError) else "failed: ") + repr(e)
def _segel_hw(board):
    # the firmware's own drivers (segelfw/hw), one part at a time; never the watchdog
    st = {}
    p = None
    try:
        from segelfw.hw import pmu
        p = pmu.make(board["pmu"])
        st["battery_mv"] = p.battery_mv()
        st["battery"] = "%d mV%s" % (st["battery_mv"], ", USB power" if p.external_power() else "")
    except Exception as e:
        st["battery"] = _segel_err(e)
    try:
        from segelfw.hw import seal
        lv = seal.SealInputs(board["seal"]).levels()
        st["seal"] = ", ".join(k + (" open" if lv[k] else " closed") for k in sorted(lv))
    except Exception as e:
        st["seal"] = _segel_err(e)
    try:
        if p is not None:
            p.rail("radio", True)
        from segelfw.hw import radio
        r = radio.make(board["radio"])
        try:
            r.sleep()
        except Exception:
            pass
        st["radio"] = "ok"
    except Exception as e:
        st["radio"] = _segel_err(e)
    try:
        import time
        from segelfw.hw import gnss
        g = gnss.Gnss(board["gnss"], p)
        g.power(True)
        data = b""
        t0 = time.ticks_ms()
        while time.ticks_diff(time.ticks_ms(), t0) < 3000 and len(data) < 8192:
            d = g.read()
            if d:
                data += d
            time.sleep_ms(50)
        fix = None
        for line in data.split(b"\n"):
            f = line.strip().split(b",")
            if len(f) > 7 and f[0][-3:] == b"GGA" and f[6] not in (b"", b"0"):
                fix = f[7].decode()
        if not data:
            st["gnss"] = "failed: no data from the receiver in 3 s"
        else:
            st["gnss"] = "%d NMEA sentences, %s" % (data.count(b"$"), ("fix, " + fix + " satellites") if fix else "no fix yet")
    except Exception as e:
        st["gnss"] = _segel_err(e)
    return st
def _segel_probe(root):
    out = {"errors": []}
    try:
        with open(root + "config.json") as f:
            cfg = json.load(f)
        for k in ("device_id", "board", "key_epoch", "region", "sf", "role"):
            out[k] = cfg.get(k)
    except Exception as e:
        cfg = None
        out["errors"].append("config.json unreadable: " + repr(e))
    if cfg:
        try:
            open(root + "boards/" + str(cfg.get("board")) + ".json").close()
            out["board_file"] = True
        except OSError:
            out["board_file"] = False
            out["errors"].append("board file boards/" + str(cfg.get("board")) + ".json missing")
    try:
        import segelfw
        out["firmware"] = getattr(segelfw, "__version__", None) or getattr(segelfw, "VERSION", None) or "unknown"
    except Exception as e:
        out["firmware"] = None
        out["errors"].append("firmware does not import: " + repr(e))
    v = sys.implementation.version
    out["micropython"] = "%d.%d.%d" % (v[0], v[1], v[2])
    out["mpy"] = getattr(sys.implementation, "_mpy", 0) & 0xFF
    try:
        from segelfw import selftest
    except ImportError:
        selftest = None
    try:
        if selftest is not None:
            out["selftest"] = selftest.report()
        elif cfg:
            with open(root + "boards/" + str(cfg.get("board")) + ".json") as f:
                out["selftest"] = _segel_hw(json.load(f))
    except Exception as e:
        out["selftest"] = None
        out["errors"].append("self-test raised: " + repr(e))
    print("SEGEL-CHECK " + json.dumps(out))
_segel_probe(ROOT)
"""


class CheckError(RuntimeError):
    """The tracker could not be reached or did not answer the probe."""


def probe_source(root: str = "/") -> str:
    return f"ROOT = {root!r}\n" + PROBE


@dataclass
class CheckReport:
    device_id: str | None
    board: str | None
    key_epoch: int | None
    firmware: str | None
    micropython: str | None
    selftest: dict[str, Any] | None
    errors: list[str] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_output(cls, text: str) -> CheckReport:
        line = next((ln for ln in text.splitlines() if ln.startswith(MARK)), None)
        if line is None:
            raise CheckError(f"the tracker did not answer the probe; it printed: {text.strip()[:300]!r}")
        d = json.loads(line[len(MARK):])
        return cls(d.get("device_id"), d.get("board"), d.get("key_epoch"), d.get("firmware"), d.get("micropython"),
                   d.get("selftest"), list(d.get("errors", [])), d)

    def _st(self, key: str) -> str:
        if self.selftest is None:
            return "not reported"
        v = self.selftest.get(key)
        if v is None and key == "battery" and self.selftest.get("battery_mv") is not None:
            return f"{self.selftest['battery_mv']} mV"
        return "not reported" if v is None else str(v)

    def lines(self) -> list[str]:
        return [
            f"device id      {self.device_id or '?'}",
            f"key epoch      {self.key_epoch if self.key_epoch is not None else '?'}",
            f"board          {self.board or '?'}",
            f"firmware       {self.firmware or '?'}  (MicroPython {self.micropython or '?'})",
            f"GNSS           {self._st('gnss')}",
            f"seal           {self._st('seal')}",
            f"battery        {self._st('battery')}",
            f"radio          {self._st('radio')}",
        ] + [f"problem        {e}" for e in self.errors]

    def problems(self, expect_device: str | None = None, expect_epoch: int | None = None) -> list[str]:
        out = list(self.errors)
        if expect_device and self.device_id != expect_device:
            out.append(f"the tracker says it is {self.device_id}, the registry expected {expect_device}")
        if expect_epoch is not None and self.key_epoch != expect_epoch:
            out.append(f"the tracker has key epoch {self.key_epoch}, the registry has {expect_epoch}: re-flash it")
        if self.selftest:
            for part in ("radio", "gnss", "seal", "battery"):
                v = self.selftest.get(part)
                if isinstance(v, str) and v.startswith("failed"):
                    out.append(f"{part} self-test: {v}")
        return out


def run_probe(port: str, timeout: float = 10.0, baud: int = 115200) -> CheckReport:
    """Run the probe on the tracker at `port` (mpremote's serial transport, raw REPL)."""
    import serial
    from mpremote.transport import TransportError
    from mpremote.transport_serial import SerialTransport

    try:
        tr = SerialTransport(port, baudrate=baud, timeout=timeout)
    except (serial.SerialException, OSError) as e:
        raise CheckError(f"cannot open {port}: {e}. Check the cable and the port name "
                         "(`ls /dev/ttyUSB* /dev/ttyACM*`).") from e
    except BaseException as e:  # mpremote raises TransportError for a port it cannot open
        raise CheckError(f"cannot open {port}: {e}") from e
    chatter = io.StringIO()  # mpremote prints raw bytes on some failures; keep them out of our output
    try:
        try:
            with contextlib.redirect_stdout(chatter):
                tr.enter_raw_repl(soft_reset=False, timeout_overall=timeout)
                out, err = tr.exec_raw(probe_source("/"), timeout=timeout)
        except TransportError as e:
            raise CheckError(f"no MicroPython REPL answered on {port} ({e}): is the tracker powered and booted "
                             "(press RST), and no other program holding the port?") from e
        if err:
            raise CheckError(f"the probe failed on the tracker: {err.decode(errors='replace').strip()}")
        return CheckReport.from_output(out.decode(errors="replace"))
    finally:
        try:
            tr.exit_raw_repl()
        except Exception:  # noqa: S110 (best effort on a port that may be gone)
            pass
        tr.close()
