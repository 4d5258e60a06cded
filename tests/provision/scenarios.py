"""Boards for `segel check` tests: the register and pin state the stand-in `machine` (standin/machine.py)
serves, written from the parts' datasheets and XPowersLib's register map."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent
AXP = 0x34  # both PMUs answer at 0x34
NMEA_FIX = ("$GPGGA,120000.00,0030.000,S,11730.000,E,1,07,1.0,10.0,M,0.0,M,,*47\r\n"
            "$GPRMC,120000.00,A,0030.000,S,11730.000,E,0.0,0.0,061226,,,A*6A\r\n")


def frf(hz: float) -> dict[str, int]:
    """SX1276 RegFrfMsb/Mid/Lsb (0x06-0x08) for a carrier: Frf = f * 2^19 / 32 MHz."""
    v = round(hz * 2**19 / 32e6)
    return {"6": v >> 16, "7": (v >> 8) & 0xFF, "8": v & 0xFF}


def tbeam_v11(dcdc1_mv: int = 3300, loop: int = 0, lid: int = 0, battery_mv: int = 3900, usb: bool = True,
              radio_version: int = 0x12, freq_hz: float = 921.4e6, nmea: str = NMEA_FIX) -> dict:
    """AXP192 (DCDC1 0x26 and DCDC3 0x27: 0.7 V + 25 mV steps; LDO2/3 0x28: 1.8 V + 100 mV; outputs
    0x12; battery 0x78/0x79, 1.1 mV), SX1276, seal loop GPIO13 / lid GPIO14 (open = 1), NEO-6M on LDO3."""
    raw = round(battery_mv / 1.1)
    regs = {"0": 0x20 if usb else 0, "18": 0b0100_0011, "38": (dcdc1_mv - 700) // 25, "39": (3300 - 700) // 25,
            "40": 0xFF, "120": raw >> 4, "121": raw & 0x0F}
    return {"i2c": {str(AXP): regs}, "pins": {"13": loop, "14": lid},
            "spi": {"chip": "sx1276", "regs": {"66": radio_version, **frf(freq_hz)}},
            "gnss": {"power": [AXP, 0x12, 3], "nmea": nmea}}


def tbeam_supreme(dcdc1_mv: int = 3300, loop: int = 0, lid: int = 0, battery_mv: int = 3950,
                  status: int = 0x22, sync: int = 0x1424, nmea: str = NMEA_FIX) -> dict:
    """AXP2101 (DCDC1 0x82: 1.5 V + 100 mV; ALDO1-4 0x92-0x95: 0.5 V + 100 mV; enables 0x80, 0x90;
    battery 0x34/0x35 in mV), SX1262 (status: chip mode in bits 6:4; LoRa sync word at 0x0740),
    seal GPIO2/3, L76K on ALDO4 that runs only while its wake pin GPIO7 is high."""
    regs = {"0": 0x20, "128": 0x01, "130": (dcdc1_mv - 1500) // 100, "144": 0b0000_0100, "148": 28, "149": 28,
            "52": battery_mv >> 8, "53": battery_mv & 0xFF}
    return {"i2c": {str(AXP): regs}, "pins": {"2": loop, "3": lid, "4": 0},
            "spi": {"chip": "sx1262", "status": status, "regs": {"1856": sync >> 8, "1857": sync & 0xFF}},
            "gnss": {"power": [AXP, 0x90, 3], "wake": 7, "nmea": nmea}}


def standin(tmp: Path, scenario: dict) -> Path:
    d = tmp / "standin"
    if d.exists():
        shutil.rmtree(d)
    shutil.copytree(HERE / "standin", d)
    (d / "scenario.json").write_text(json.dumps(scenario))
    return d
