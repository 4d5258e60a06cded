"""Languages and local time for everything people read: gettext catalogs (Bahasa Indonesia first), zones, formats.

    t = i18n.translator("id", "Asia/Makassar")
    t._("Open alerts")            -> "Peringatan terbuka"
    t.datetime(1732683900)        -> "27 Nov 2024 13.05 WITA"
    t.ago(1732683900, now)        -> "3 menit yang lalu"
    t.duration(7800)              -> "130 menit"
    t.number(1402)                -> "1.402"

Source strings are English; `locale/id/LC_MESSAGES/segel.po` holds the Indonesian catalog (the
default language), read once per process with Babel and compiled in memory, so the repository
keeps only the text catalog. English needs no catalog (the source strings are English).
Update the catalog after adding strings: `bash tools/i18n-update.sh` (docs/console.md);
`tests/gateway/test_i18n.py` fails while a string is missing from it or untranslated.
"""

from __future__ import annotations

import datetime as dt
import gettext as _gettext
import io
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.dates import format_datetime, format_timedelta
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal

DOMAIN = "segel"
LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGES: dict[str, str] = {"id": "Bahasa Indonesia", "en": "English"}
DEFAULT_LANGUAGE = "id"
DEFAULT_ZONE = "Asia/Makassar"  # WITA: Kutai Timur, East Kalimantan

# Indonesia's three zones by the names people use; any IANA zone works too.
ZONE_ALIASES = {"WIB": "Asia/Jakarta", "WITA": "Asia/Makassar", "WIT": "Asia/Jayapura", "UTC": "UTC"}
ZONE_NAMES = {"Asia/Jakarta": "WIB", "Asia/Pontianak": "WIB", "Asia/Makassar": "WITA", "Asia/Jayapura": "WIT",
              "UTC": "UTC", "Etc/UTC": "UTC"}
# Babel patterns per language: Indonesian writes 27 Nov 2024 13.05, English 27 Nov 2024 13:05.
_PATTERNS = {"id": ("d MMM y HH.mm", "HH.mm", "d MMM y"), "en": ("d MMM y HH:mm", "HH:mm", "d MMM y")}


def N_(message: str) -> str:
    """Mark a string for the catalog where it is defined; translate it where it is shown."""
    return message


def zone(name: str | None) -> ZoneInfo:
    """The zone for an IANA name or WIB/WITA/WIT; ValueError naming the value when unknown."""
    key = ZONE_ALIASES.get((name or DEFAULT_ZONE).upper(), name or DEFAULT_ZONE)
    try:
        return ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name too long for a file name
        shown = key if len(key) <= 40 else key[:40] + "..."
        raise ValueError(f"unknown time zone {shown!r}: use WIB, WITA, WIT or an IANA name like Asia/Makassar") from None


def zone_label(z: dt.tzinfo, at: dt.datetime | None = None) -> str:
    """WIB/WITA/WIT for Indonesia's zones, else the UTC offset (UTC+08:00). A fixed offset (an
    election calendar's `timezone = "WITA"`, what reports use) goes by the name it was given."""
    key = getattr(z, "key", None)
    if key in ZONE_NAMES:
        return ZONE_NAMES[key]
    when = at or dt.datetime.now(dt.timezone.utc)
    if key is None and (name := z.tzname(when.astimezone(z))):
        return name
    off = when.astimezone(z).utcoffset() or dt.timedelta()
    minutes = int(off.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def language(code: str | None) -> str:
    """A supported language code for `code` (id, en, id-ID, en_US ...); the default otherwise."""
    base = (code or "").replace("_", "-").split("-")[0].strip().lower()
    return base if base in LANGUAGES else DEFAULT_LANGUAGE


def negotiate(accept_language: str | None, default: str = DEFAULT_LANGUAGE) -> str:
    """The best supported language of an HTTP Accept-Language header (q-values honoured)."""
    best: tuple[float, str] | None = None
    for i, part in enumerate((accept_language or "").split(",")):
        bits = part.strip().split(";")
        code = bits[0].strip().replace("_", "-").split("-")[0].lower()
        q = 1.0
        for b in bits[1:]:
            if b.strip().startswith("q="):
                try:
                    q = float(b.strip()[2:])
                except ValueError:
                    q = 0.0
        if code in LANGUAGES and q > 0 and (best is None or q > best[0]):
            best = (q - i * 1e-6, code)
    return best[1] if best else default


_catalogs: dict[str, _gettext.NullTranslations] = {}
_lock = threading.Lock()


def po_path(lang: str) -> Path:
    return LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


def _catalog(lang: str) -> _gettext.NullTranslations:
    with _lock:
        cat = _catalogs.get(lang)
        if cat is None:
            p = po_path(lang)
            if not p.exists():
                cat = _gettext.NullTranslations()
            else:
                with p.open("rb") as f:
                    po = read_po(f, locale=lang, domain=DOMAIN)
                buf = io.BytesIO()
                write_mo(buf, po, use_fuzzy=False)
                buf.seek(0)
                cat = _gettext.GNUTranslations(buf)
            _catalogs[lang] = cat
        return cat


@dataclass(frozen=True)
class Translator:
    """Translations and formats for one language and one zone (cheap: catalogs are cached)."""

    lang: str
    tz: dt.tzinfo  # a ZoneInfo, or a fixed offset such as an election calendar's

    def _(self, message: str) -> str:
        return _catalog(self.lang).gettext(message)

    gettext = _

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return _catalog(self.lang).ngettext(singular, plural, n)

    @property
    def zone_name(self) -> str:
        return zone_label(self.tz)

    def local(self, ts: float) -> dt.datetime:
        return dt.datetime.fromtimestamp(ts, self.tz)

    def datetime(self, ts: float | None, zone_suffix: bool = True) -> str:
        """27 Nov 2024 13.05 WITA ("" for no time)."""
        if ts is None:
            return ""
        d = self.local(ts)
        out = format_datetime(d, _PATTERNS[self.lang][0], locale=self.lang)
        return f"{out} {zone_label(self.tz, d)}" if zone_suffix else out

    def time(self, ts: float | None) -> str:
        return "" if ts is None else format_datetime(self.local(ts), _PATTERNS[self.lang][1], locale=self.lang)

    def date(self, ts: float | None) -> str:
        return "" if ts is None else format_datetime(self.local(ts), _PATTERNS[self.lang][2], locale=self.lang)

    def iso_local(self, ts: float | None) -> str:
        """2024-11-27T13:05:00+08:00 (exports: machine-readable, still local)."""
        return "" if ts is None else self.local(ts).isoformat(timespec="seconds")

    def ago(self, ts: float | None, now: float) -> str:
        """"3 menit yang lalu" / "3 minutes ago" ("" for no time)."""
        if ts is None:
            return ""
        return format_timedelta(dt.timedelta(seconds=ts - now), add_direction=True, threshold=1.0, locale=self.lang)

    def duration(self, seconds: float) -> str:
        """"130 menit" / "130 minutes", "47 jam", "4 hari": a length of time in the largest unit
        that still counts three or more (so the number stays precise enough to act on)."""
        return format_timedelta(dt.timedelta(seconds=seconds), threshold=3.0, locale=self.lang)

    def number(self, n: float, digits: int = 0) -> str:
        """1.402 / 1,402; 3,5 / 3.5 with `digits` decimals."""
        fmt = "#,##0" + ("." + "0" * digits if digits else "")
        return format_decimal(n, format=fmt, locale=self.lang)


def translator(lang: str | None = None, tz: str | dt.tzinfo | None = None) -> Translator:
    return Translator(language(lang), tz if isinstance(tz, dt.tzinfo) else zone(tz))


def messages(lang: str) -> Iterable[tuple[str, str]]:
    """(msgid, translation) of a language's catalog file, for checks and tools."""
    with po_path(lang).open("rb") as f:
        po = read_po(f, locale=lang, domain=DOMAIN)
    for m in po:
        if m.id:
            text = m.string if isinstance(m.string, str) else (m.string or ("",))[0]
            yield (m.id if isinstance(m.id, str) else m.id[0]), text
