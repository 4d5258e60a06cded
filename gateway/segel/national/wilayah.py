"""Indonesia's 38 provinces and 514 regencies (kabupaten/kota): codes and names, from wilayah.csv.

The codes and names are Kepmendagri No 300.2.2-2138 Tahun 2025 as compiled in the MIT-licensed
cahyadsn/wilayah (db/wilayah.sql @b7ad440), first two levels only (docs/national.md, Sources).
"""

from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path

CSV = Path(__file__).with_name("wilayah.csv")


@lru_cache(maxsize=1)
def _rows() -> tuple[tuple[str, str], ...]:
    with CSV.open(encoding="utf-8") as fh:
        return tuple((r["code"], r["name"]) for r in csv.DictReader(fh))


def provinces() -> dict[str, str]:
    return {c: n for c, n in _rows() if "." not in c}


def regencies() -> dict[str, str]:
    return {c: n for c, n in _rows() if "." in c}


def province_name(code: str) -> str:
    return provinces().get(code[:2], code[:2])


def regency_name(code: str) -> str:
    return regencies().get(code, code)


# Indonesia's three time zones by province (Permendagri: WIB UTC+7, WITA UTC+8, WIT UTC+9).
_WITA = {"51", "52", "53", "63", "64", "65", "71", "72", "73", "74", "75", "76"}
_WIT = {"81", "82", "91", "92", "93", "94", "95", "96"}
ZONES = {"WIB": 7, "WITA": 8, "WIT": 9}


def zone(code: str) -> str:
    """The time zone of a province or regency: WIB, WITA or WIT."""
    p = code[:2]
    return "WITA" if p in _WITA else "WIT" if p in _WIT else "WIB"


def local_time(t: float | None, zone_name: str = "WIB", fmt: str = "%Y-%m-%d %H:%M") -> str:
    """Unix seconds as people read them in a zone, with the zone's name."""
    import datetime as dt

    if t is None:
        return "-"
    tz = dt.timezone(dt.timedelta(hours=ZONES[zone_name]), zone_name)
    return dt.datetime.fromtimestamp(t, tz).strftime(fmt) + f" {zone_name}"
