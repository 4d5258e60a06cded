"""Alerts as people read them: labels of kinds, severities, states and events, and the CLI's table.

The labels are English source strings marked for the catalog; show them with a translator
(`t._(KIND_LABELS[kind])`). Machine names (`seal_unauthorised`, `critical`) stay what scripts,
topics and the JSON use.
"""

from __future__ import annotations

import sqlite3

from segel import i18n
from segel.i18n import N_
from segel.places import io as places_io

SEVERITY_LABELS = {"critical": N_("critical"), "high": N_("high"), "warning": N_("warning"), "info": N_("info")}
STATE_LABELS = {"open": N_("open"), "acknowledged": N_("acknowledged"), "resolved": N_("resolved"),
                "withdrawn": N_("withdrawn")}
EVENT_LABELS = {"raised": N_("raised"), "repeated": N_("occurred again"), "renotify": N_("notified again"),
                "acknowledged": N_("acknowledged"), "resolved": N_("resolved"), "withdrawn": N_("withdrawn"),
                "updated": N_("updated"), "occurrence_withdrawn": N_("one occurrence withdrawn")}
KIND_LABELS = {
    "seal_unauthorised": N_("Seal opened where it may not be"),
    "case_opened": N_("Tracker case opened"),
    "tamper_latched": N_("Tamper flag without a seal event"),
    "forged_frame": N_("Forged frame"),
    "replayed_frame": N_("Replayed frame"),
    "power_lost": N_("Tracker lost power"),
    "wrong_tps": N_("At the wrong TPS"),
    "off_corridor": N_("Off its corridor"),
    "long_stop": N_("Long stop outside any place"),
    "silent": N_("Tracker silent"),
    "behind_schedule": N_("Behind schedule"),
    "low_battery": N_("Low battery"),
    "seal_authorised": N_("Seal opened as planned"),
    "arrived": N_("Arrived at a custody point"),
}


def kind_label(t: i18n.Translator, kind: str) -> str:
    return t._(KIND_LABELS[kind]) if kind in KIND_LABELS else kind


def alert_table(conn: sqlite3.Connection, rows: list[dict], language: str | None, timezone: str | None) -> str:
    """`segel alerts list`: a header, local times with the zone's name, places by name."""
    t = i18n.translator(language, timezone)
    if not rows:
        return t._("No alerts.")
    names = places_io.names(conn, [r["place"] for r in rows if r["place"]])
    head = [t._("ID"), t._("Severity"), t._("State"), t._("Kind"), t._("Box"), t._("Place"),
            t._("When (%(zone)s)") % {"zone": t.zone_name}, t._("Seen")]
    table = [head]
    for r in rows:
        when = t.datetime(r["device_time"] if r["device_time"] is not None else r["raised_at"], zone_suffix=False)
        if r["late"]:
            when += " " + t._("LATE")
        place = names.get(r["place"], r["place"]) if r["place"] else "-"
        table.append([r["id"], t._(SEVERITY_LABELS.get(r["severity"], r["severity"])),
                      t._(STATE_LABELS.get(r["state"], r["state"])), r["kind"], r["box"] or r["subject"], place, when,
                      t.ngettext("%(n)d time", "%(n)d times", r["occurrences"]) % {"n": r["occurrences"]}])
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
