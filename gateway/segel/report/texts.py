"""The words of reports: gettext (segel.i18n's catalog, Bahasa Indonesia first), labels for the codes
the data holds (legs, alert kinds, seal events, states; the ones the console shares come from
segel.custody.display), and times in the calendar's zone.

`Texts(lang, tz, zone)._("...")` translates a source string; `label(code)` translates a code
(`warehouse_to_ppk`, `seal_unauthorised`, `loop_open`, ...) through its English label, and the
notes the system writes (`heard again (counter 5)`) through their patterns.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from segel import i18n
from segel.custody import display
from segel.i18n import N_

LABELS: dict[str, str] = {
    **display.LEG_LABELS,  # legs of a plan
    # a leg against its window
    "on_time": N_("on time"), "late": N_("late"), "not_arrived": N_("not arrived"),
    **display.SEAL_EVENT_LABELS,  # seal events (segel.protocol.SealEvent)
    # findings and alert kinds (segel.custody.alerts.KINDS), as the report's tables name them
    "seal_event": N_("recorded"), "seal_unauthorised": N_("seal opened without authority"),
    "seal_authorised": N_("authorised seal opening"), "case_opened": N_("tracker case opened"),
    "tamper_latched": N_("tamper flag"), "forged_frame": N_("forged frame"), "replayed_frame": N_("replayed frame"),
    "bad_mac_flood": N_("many forged frames"), "acks_stopped": N_("acknowledgements stopped"),
    "power_lost": N_("power lost"), "wrong_tps": N_("at the wrong TPS"), "off_corridor": N_("off its roads"),
    "long_stop": N_("long stop"), "silent": N_("tracker silent"), "behind_schedule": N_("behind schedule"),
    "downlink_counters_low": N_("downlink counters low"), "low_battery": N_("battery low"), "arrived": N_("arrived"),
    "seal_numbers_differ": N_("seal numbers differ"), "receipt_wrong_place": N_("receipt at the wrong place"),
    "receipt_no_arrival": N_("receipt without an arrival"),
    # severities and states of alerts
    **display.SEVERITY_LABELS, **display.STATE_LABELS,
    # ledger events (segel.custody.ledger.EVENTS) not named above
    "frame": N_("tracker report"), "enter": N_("entered"), "exit": N_("left"), "security": N_("rejected frame"),
    "receipt": N_("handover receipt"), "receipt_arrival": N_("receipt linked to the arrival"),
    "raised": N_("raised"), "repeated": N_("repeated"), "device_command": N_("device command"),
    # pairings, receipts
    "paired": N_("paired"), "unpaired": N_("unpaired"), "pending": N_("pending"),
    "intact": N_("intact"), "damaged": N_("damaged"), "wet": N_("wet"), "seal_broken": N_("seal broken"),
    "other": N_("other"),
    # what the system writes (plan permits, system resolutions)
    **display.PERMIT_LABELS, "system": N_("system"), "informational": N_("informational"),
}
# Notes the system writes with a number or a place in them: pattern -> source string of the same groups
SYSTEM_NOTES = (
    (re.compile(r"^heard again \(counter (\d+)\)$"), N_("heard again (counter {0})")),
    (re.compile(r"^disproved by frame (\d+) received late$"), N_("disproved by frame {0} received late")),
    (re.compile(r"^the tracker's arrival at (\S+) was received late$"),
     N_("the tracker's arrival at {0} was received late")),
    (re.compile(r"^moved to (\S+)$"), N_("moved to {0}")),
    (re.compile(r"^replaced by (\S+)$"), N_("replaced by {0}")),
)
MONTHS_ID = ("Jan", "Feb", "Mar", "Apr", "Mei", "Jun", "Jul", "Agu", "Sep", "Okt", "Nov", "Des")
MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True)
class Texts:
    lang: str
    tz: dt.timezone
    zone: str

    def _(self, message: str) -> str:
        return i18n.translator(self.lang)._(message)

    @property
    def translator(self) -> i18n.Translator:
        """The same language and zone as a segel.i18n translator (for segel.custody.display)."""
        return i18n.Translator(self.lang, self.tz)

    def describe(self, alert: dict, names: display.Names = None) -> str:
        """What the alert says happened, in the report's language and zone (segel.custody.display)."""
        return display.describe(self.translator, alert, names)

    def label(self, code: str | None) -> str:
        """A code of the data in words (the code itself when it has no label)."""
        if not code:
            return ""
        if code in LABELS:
            return self._(LABELS[code])
        if code in display.KIND_LABELS:  # a kind the report's tables have no word of their own for
            return self._(display.KIND_LABELS[code])
        for pat, text in SYSTEM_NOTES:
            m = pat.match(code)
            if m:
                return self._(text).format(*m.groups())
        return code

    def when(self, t: float | None, date_only: bool = False, zone: bool = False) -> str:
        """27 Nov 2024 13.05 (id) / 27 Nov 2024 13:05 (en), in the report's zone (the formats of
        segel.i18n, written here for a fixed-offset zone such as a calendar's +08:00)."""
        if t is None:
            return "-"
        d = dt.datetime.fromtimestamp(t, self.tz)
        mon = (MONTHS_ID if self.lang == "id" else MONTHS_EN)[d.month - 1]
        day = f"{d.day} {mon} {d.year}"
        if date_only:
            return day
        sep = "." if self.lang == "id" else ":"
        return f"{day} {d.hour:02d}{sep}{d.minute:02d}" + (f" {self.zone}" if zone else "")

    def short(self, t: float | None) -> str:
        """27/11 13.05: for tables where the year is obvious."""
        if t is None:
            return "-"
        d = dt.datetime.fromtimestamp(t, self.tz)
        sep = "." if self.lang == "id" else ":"
        return f"{d.day:02d}/{d.month:02d} {d.hour:02d}{sep}{d.minute:02d}"


def texts(lang: str, tz: dt.timezone, zone: str) -> Texts:
    if lang not in i18n.LANGUAGES:
        raise ValueError(f"language {lang!r}: reports are in {', '.join(i18n.LANGUAGES)}")
    return Texts(lang, tz, zone)
