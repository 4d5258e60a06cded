"""The first-board checklist `segel check` can run over USB: each item measured, expected, PASS/FAIL and what to do.

Input: the probe's report (probe.py) plus the tracker's board file and the region rules of the
firmware (segelfw.airtime.REGIONS). Items that need a person (a sky view for a fix, a meter on
the 3V3 header, a real transmission on a spectrum analyser) are in docs/provisioning.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PASS, FAIL, WARN, SKIP = "PASS", "FAIL", "WARN", "SKIP"
RAIL_MV = (3200, 3400)  # every rail the trackers use is set to 3.3 V (docs/hardware.md)
BATTERY_MV = (3000, 4300)  # an 18650 between empty-under-load and full
SX1276_VERSION = 0x12  # RegVersion (0x42) of an SX1276/77/78/79
SX1276_RESET_FRF_HZ = 434_000_000  # RegFrf after reset (0x6C8000)
LORA_SYNC_PRIVATE = 0x1424  # SX126x LoRa sync word register for sync word 0x12 (the trackers')


@dataclass(frozen=True)
class Item:
    name: str
    measured: str
    expected: str
    result: str
    fix: str = ""


def _rail_key(pmu_type: Any, rail: str) -> str:
    """The probe's name for a rail: board files may call the AXP2101's DC-DCs dc1.. or dcdc1.."""
    if pmu_type == "axp2101" and len(rail) == 3 and rail.startswith("dc") and rail[2].isdigit():
        return "dcdc" + rail[2]
    return rail


def _rail_items(pmu: dict[str, Any], board: dict[str, Any]) -> list[Item]:
    rails = pmu.get("rails", {})
    roles = dict(board.get("pmu", {}).get("rails", {}))
    # every rail must read 3.3 V and on: the probe switched the radio and GNSS rails on through the
    # firmware's PMU driver before reading; DCDC1 of an AXP192 feeds the 3V3 header (seal pull-ups, OLED)
    names = {"mcu": "ESP32", "radio": "LoRa radio", "gnss": "GNSS"}
    wanted = [(_rail_key(pmu.get("type"), str(rail)), names.get(role, role)) for role, rail in roles.items()
              if role != "oled"]
    if pmu.get("type") == "axp192":
        wanted = [(r, w) for r, w in wanted if r != "dcdc1"]
        wanted.append(("dcdc1", "3V3 header: seal pull-ups"))
    out = []
    for rail, feeds in wanted:
        got = rails.get(rail)
        name = f"PMU {rail.upper()} ({feeds})"
        if got is None:
            out.append(Item(name, "not read", "3.3 V", FAIL, "the probe could not read this rail: check the board file"))
            continue
        mv, on = got
        measured = f"{mv / 1000:.2f} V, {'on' if on else 'off'}"
        ok = RAIL_MV[0] <= mv <= RAIL_MV[1] and on
        fix = ""
        if not ok:
            fix = (f"{rail.upper()} is {mv / 1000:.2f} V{'' if on else ' and off'}: the firmware must set it to 3.3 V "
                   "and switch it on (AXP192 DCDC1 has been seen at 1.8 V on a v1.0; the radio and GNSS rails are "
                   "switched on by the firmware's PMU driver); update the firmware, re-flash, and measure the rail "
                   "with a meter")
        out.append(Item(name, measured, "3.3 V, on", PASS if ok else FAIL, fix))
    return out


def _battery(pmu: dict[str, Any], low_mv: int | None) -> Item:
    mv = pmu.get("battery_mv")
    usb = ", USB power" if pmu.get("usb") else ""
    if not isinstance(mv, int):
        return Item("battery", "not read", "3.0-4.3 V", FAIL, "the PMU did not report the battery voltage")
    measured = f"{mv / 1000:.2f} V{usb}"
    low = low_mv or 3400
    if mv < BATTERY_MV[0] or mv > BATTERY_MV[1]:
        return Item("battery", measured, f"{low / 1000:.1f}-4.3 V", FAIL,
                    "no battery or a reading out of range: fit a charged 18650 (check its polarity) and check again")
    if mv < low:
        return Item("battery", measured, f"at least {low / 1000:.1f} V", FAIL,
                    "charge the battery before the tracker goes on a box (low_batt_mv in the config)")
    return Item("battery", measured, f"{low / 1000:.1f}-4.3 V", PASS)


def _seal(levels: dict[str, int], board: dict[str, Any]) -> list[Item]:
    seal = board.get("seal", {})
    open_level = seal.get("open_level", 1)
    out = []
    for name, level in sorted(levels.items()):
        state = "open" if level == open_level else "closed"
        out.append(Item(f"seal {name} (GPIO{seal.get(name)})", f"{state} (reads {level})", "closed",
                        PASS if state == "closed" else FAIL,
                        "" if state == "closed" else
                        f"close the lid and connect the seal {name}; if it still reads open, measure 3.3 V on the "
                        f"pull-up ({seal.get('pull', 'external pull-up')}) and the wire's continuity"))
    return out


def _radio(r: dict[str, Any], cfg: dict[str, Any], region: dict[str, Any] | None) -> list[Item]:
    chip = r.get("chip")
    if chip == "sx1276":
        v = r.get("version")
        here = v == SX1276_VERSION
        items = [Item("radio SX1276 answers", f"RegVersion {v:#04x}" if isinstance(v, int) else "no answer",
                      f"RegVersion {SX1276_VERSION:#04x}", PASS if here else FAIL,
                      "" if here else "no SX1276 on the SPI bus: check the radio rail is 3.3 V and on, the board file's "
                                      "SPI pins, and that the radio module is seated")]
        hz = r.get("frf_hz")
        if not here or not isinstance(hz, int):
            return items
        chans = [k * 1000 for k in region["channels_khz"]] if region else []
        if cfg.get("channel") not in (None, "random"):
            chans = [int(cfg["channel"]) * 1000]
        if len(chans) == 1:
            want = f"{chans[0] / 1e6:.3f} MHz"
        elif chans:
            want = f"one of {cfg.get('region')}'s channels, {min(chans) / 1e6:.1f}-{max(chans) / 1e6:.1f} MHz"
        else:
            want = "the region's channels"
        step = 32_000_000 / 524_288  # one FRF step, 61 Hz
        if abs(hz - SX1276_RESET_FRF_HZ) < step:
            items.append(Item("radio frequency", "434.0 MHz (reset value)", want, WARN,
                              "the radio has not been tuned since it was reset: let the tracker run one wake "
                              "(press RST, wait for its first send), then check again"))
        else:
            ok = any(abs(hz - c) <= step for c in chans)
            items.append(Item("radio frequency", f"{hz / 1e6:.3f} MHz", want, PASS if ok else FAIL,
                              "" if ok else f"the radio is tuned off the {cfg.get('region')} channels: re-provision with "
                                            "the right region and channel, re-flash"))
        return items
    if chip == "sx1262":
        if r.get("busy"):
            return [Item("radio SX1262 answers", "BUSY stays high", "BUSY low", FAIL,
                         "the SX1262 is stuck busy: check its reset pin and TCXO supply in the board file, power-cycle")]
        st = r.get("status", 0)
        mode = (st >> 4) & 7
        here = st not in (0x00, 0xFF) and mode in (2, 3, 4, 5, 6)
        sw = r.get("syncword")
        items = [Item("radio SX1262 answers", f"status {st:#04x} (chip mode {mode})", "a valid chip mode",
                      PASS if here else FAIL,
                      "" if here else "no SX1262 on the SPI bus: check the radio rail, the board file's SPI and BUSY "
                                      "pins, and that the radio module is seated")]
        if here:
            items.append(Item("radio frequency", "not readable on the SX1262", "set at each send", SKIP,
                              "confirm on a spectrum analyser or a receiver that it sends on the region's channels"))
            items.append(Item("radio sync word", f"{sw:#06x}" if isinstance(sw, int) else "not read",
                              f"{LORA_SYNC_PRIVATE:#06x} once tuned", PASS if sw == LORA_SYNC_PRIVATE else WARN,
                              "" if sw == LORA_SYNC_PRIVATE else
                              "not yet the trackers' sync word (0x12): let the tracker run one wake, then check again"))
        return items
    return [Item("radio", str(r.get("error", "not measured")), "chip answers", FAIL,
                 "the probe could not reach the radio: see the message")]


def _gnss(g: dict[str, Any], board: dict[str, Any], seconds: int) -> list[Item]:
    items = []
    wake_pin = board.get("gnss", {}).get("wake")
    if wake_pin is not None:
        high = g.get("wake") == 1
        items.append(Item(f"GNSS wake pin (GPIO{wake_pin})", "high" if high else "low", "high while powered",
                          PASS if high else FAIL,
                          "" if high else "the firmware powers the receiver without driving its wake pin high, so "
                                          "the L76K never runs: update the firmware and re-flash"))
    n = g.get("sentences", 0)
    items.append(Item("GNSS data", f"{n} NMEA sentences in {seconds} s", "NMEA sentences", PASS if n else FAIL,
                      "" if n else "no NMEA from the receiver: check the GNSS rail is 3.3 V and on, and the board "
                                   "file's UART pins and baud rate"))
    if n:
        fix = g.get("fix")
        items.append(Item("GNSS fix", f"fix, {fix} satellites" if fix else f"none in {seconds} s", "a fix outdoors",
                          PASS if fix else WARN,
                          "" if fix else "take the board outside with open sky and run segel check --gnss-seconds 120 "
                                         "(a cold start can take a minute or more)"))
    return items


def _eirp(cfg: dict[str, Any], board: dict[str, Any], region: dict[str, Any] | None) -> Item:
    tx = cfg.get("tx_power_dbm")
    gain = cfg.get("antenna_gain_dbi")
    if gain is None:
        gain = board.get("radio", {}).get("antenna_gain_dbi")
    limit = region.get("max_eirp_dbm") if region else None
    if not isinstance(tx, int) or limit is None:
        return Item("radio EIRP", "not known", "region limit", FAIL, "the config names no known region or power")
    if gain is None:
        return Item("radio EIRP", f"{tx} dBm + ? dBi", f"at most {limit} dBm EIRP", WARN,
                    "the board file has no radio.antenna_gain_dbi: add the fitted antenna's gain from its datasheet, "
                    "so the conducted power can be held to the EIRP limit")
    eirp = tx + gain
    ok = eirp <= limit
    return Item("radio EIRP", f"{tx} dBm + {gain} dBi = {eirp} dBm", f"at most {limit} dBm ({cfg.get('region')})",
                PASS if ok else FAIL,
                "" if ok else f"lower tx_power_dbm to {int(limit - gain)} or less in fleet.toml, re-provision, re-flash")


def _image_files(files: list[str], role: str, wanted: set[str]) -> Item:
    """The firmware modules on the device (.mpy paths) against those its role needs."""
    have = {f for f in files if f.endswith(".mpy")}
    extra, missing = sorted(have - wanted), sorted(wanted - have)
    ok = not extra and not missing
    said = "; ".join(x for x in (f"extra {', '.join(extra)}" if extra else "",
                                 f"missing {', '.join(missing)}" if missing else "") if x)
    return Item(f"image files ({role})", f"{len(have)} modules" + (f": {said}" if said else ""),
                f"the {len(wanted)} modules a {role} imports", PASS if ok else FAIL,
                "" if ok else f"the image was built for another role or firmware: rebuild it for a {role} "
                              "(segel image ID) and re-flash")


def evaluate(report: dict[str, Any], board: dict[str, Any] | None, regions: dict[str, Any],
             expect_device: str | None = None, expect_epoch: int | None = None, gnss_seconds: int = 3,
             role_files: set[str] | None = None) -> list[Item]:
    """Every item of the checklist the report allows, in the order a technician works.
    `role_files`: the .mpy files (segelfw/...) the device's role needs (roles.role_modules)."""
    items: list[Item] = []
    dev, epoch = report.get("device_id"), report.get("key_epoch")
    want = f"{expect_device or 'as registered'}, epoch {expect_epoch if expect_epoch is not None else '-'}"
    ok = (expect_device is None or dev == expect_device) and (expect_epoch is None or epoch == expect_epoch)
    items.append(Item("identity", f"{dev}, epoch {epoch}", want, PASS if ok and dev else FAIL,
                      "" if ok and dev else "this is not the tracker the registry expects, or its key epoch is stale: "
                                            "re-flash it (segel flash --reimage ID)"))
    fw = report.get("firmware")
    items.append(Item("firmware", f"{fw or 'does not import'} on MicroPython {report.get('micropython')}",
                      "imports, .mpy v6", PASS if fw and report.get("mpy") == 6 else FAIL,
                      "" if fw else "the image is incomplete or for another MicroPython: rebuild and re-flash"))
    if role_files is not None and "files" in report:
        items.append(_image_files(report["files"], str(report.get("role")), role_files))
    for e in report.get("errors", []):
        items.append(Item("tracker files", e, "config, board file", FAIL, "re-flash the image (segel flash --reimage ID)"))
    for name, value in sorted((report.get("selftest") or {}).items()):
        text = str(value)
        items.append(Item(f"self-test {name}", text, "ok", FAIL if text.startswith("failed") else PASS,
                          "see docs/hardware.md for this part" if text.startswith("failed") else ""))
    hw = report.get("hw") or {}
    if board is None or not hw:
        return items
    region = regions.get(str(report.get("region")))
    pmu = hw.get("pmu", {})
    if "error" in pmu:
        items.append(Item("PMU", pmu["error"], "answers on I2C", FAIL, "check the board file's PMU I2C pins"))
    else:
        items += _rail_items(pmu, board)
        items.append(_battery(pmu, report.get("low_batt_mv")))
    seal = hw.get("seal", {})
    items += ([Item("seal", seal["error"], "levels", FAIL, "see the message")] if "error" in seal
              else _seal(seal, board))
    gnss = hw.get("gnss", {})
    items += ([Item("GNSS", gnss["error"], "NMEA", FAIL, "see the message")] if "error" in gnss
              else _gnss(gnss, board, gnss_seconds))
    items += _radio(hw.get("radio", {}), report, region)
    items.append(_eirp(report, board, region))
    return items


def table(items: list[Item]) -> list[str]:
    """The pass/fail table, then what to do for each item that did not pass."""
    w = max([len(i.name) for i in items] + [4])
    m = max([len(i.measured) for i in items] + [8])
    e = max([len(i.expected) for i in items] + [8])
    lines = [f"{'item':<{w}}  {'measured':<{m}}  {'expected':<{e}}  result"]
    lines += [f"{i.name:<{w}}  {i.measured:<{m}}  {i.expected:<{e}}  {i.result}" for i in items]
    todo = [i for i in items if i.result != PASS and i.fix]
    if todo:
        lines += ["", "what to do"]
        lines += [f"  {i.result} {i.name}: {i.fix}" for i in todo]
    n = {r: sum(1 for i in items if i.result == r) for r in (PASS, FAIL, WARN, SKIP)}
    lines += ["", f"checklist: {n[PASS]} pass, {n[FAIL]} fail, {n[WARN]} to look at, {n[SKIP]} not checkable over USB"]
    return lines
