"""Alerts as people read them: labels (kinds, severities, states, legs, seal events) and each alert's description.

The labels are English source strings marked for the catalog; show them with a translator
(`t._(KIND_LABELS[kind])`). Machine names (`seal_unauthorised`, `critical`, `loop_open`) stay what
scripts, topics and the JSON use, and the alert row keeps its English `message` for them.

`describe(t, alert, names)` words an alert for a reader: a catalog template per kind, filled from
the alert and its `detail` (times in the reader's zone, places by name, legs and seal events by
their labels). A kind without a template falls back to the stored message; tests/rules/
test_alert_words.py fails when a kind of `segel.custody.alerts.KINDS` has no label or template.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import string
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

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
    "revoked_tracker_heard": N_("Revoked tracker heard"),
    "replayed_frame": N_("Replayed frame"),
    "seal_numbers_differ": N_("Seal numbers differ"),
    "bad_mac_flood": N_("Flood of forged frames"),
    "acks_stopped": N_("Tracker gets no acknowledgements"),
    "power_lost": N_("Tracker lost power"),
    "invalid_pairing": N_("Paired with an unknown TPS"),
    "wrong_tps": N_("At the wrong TPS"),
    "off_corridor": N_("Off its corridor"),
    "long_stop": N_("Long stop outside any place"),
    "receipt_wrong_place": N_("Handover receipt at the wrong place"),
    "receipt_no_arrival": N_("Handover receipt without an arrival"),
    "silent": N_("Tracker silent"),
    "behind_schedule": N_("Behind schedule"),
    "downlink_counters_low": N_("Downlink counters running out"),
    "low_battery": N_("Low battery"),
    "seal_authorised": N_("Seal opened as planned"),
    "arrived": N_("Arrived at a custody point"),
}
# What a tracker reports about its seal (segel.protocol.SealEvent, lower-cased).
SEAL_EVENT_LABELS = {
    "armed": N_("armed"), "loop_open": N_("seal wire opened"), "loop_closed": N_("seal wire closed"),
    "lid_open": N_("lid opened"), "lid_closed": N_("lid closed"), "case_open": N_("tracker case opened"),
    "rearmed": N_("re-armed"), "power_restored": N_("power restored"),
    "wake_unexplained": N_("seal opened and closed again while the tracker slept"),
}
# The legs of a custody plan (segel.custody.plan).
LEG_LABELS = {"warehouse_to_ppk": N_("warehouse to PPK"), "ppk_to_pps": N_("PPK to PPS"), "pps_to_tps": N_("PPS to TPS"),
              "tps_to_pps": N_("TPS to PPS"), "pps_to_ppk": N_("PPS to PPK"), "ppk_to_warehouse": N_("PPK to warehouse")}
# Why a plan allows a seal to be opened at a place (segel.custody.plan writes these).
PERMIT_LABELS = {"voting and counting at its TPS": N_("voting and counting at its TPS"),
                 "recapitulation at its PPK": N_("recapitulation at its PPK"),
                 "handover at its PPS": N_("handover at its PPS"), "storage at the warehouse": N_("storage at the warehouse")}


@dataclass(frozen=True)
class Wording:
    """One way to describe a kind: used when every field in `needs` is known."""

    text: str
    needs: tuple[str, ...] = ()


def _w(text: str, *needs: str) -> Wording:
    return Wording(text, needs)


# Per kind, the wordings from the most to the least detailed; the last needs nothing the detail may lack.
TEMPLATES: dict[str, tuple[Wording, ...]] = {
    "seal_unauthorised": (
        _w(N_("Seal opened at {place}, where no opening is authorised at that time ({event})"), "place", "event"),
        _w(N_("Seal opened away from any place where it may be opened ({event})"), "event"),
        _w(N_("Seal opened outside an authorised place and time"))),
    "case_opened": (_w(N_("The tracker's own case was opened at {place}"), "place"),
                    _w(N_("The tracker's own case was opened"))),
    "tamper_latched": (_w(N_("The tracker reports tampering, but no seal event came before it (lost or not yet "
                             "received)")),),
    "forged_frame": (_w(N_("A frame under tracker {device}'s id failed its MAC check: forged or corrupted"), "device"),
                     _w(N_("A frame failed its MAC check: forged or corrupted"))),
    "revoked_tracker_heard": (
        _w(N_("The revoked tracker {device} sent a frame, heard through {via}: find it there"), "device", "via"),
        _w(N_("A revoked (stolen or lost) tracker sent a frame: find it where it was heard"))),
    "replayed_frame": (_w(N_("A frame of tracker {device} was sent again with other bytes or after its replay window: "
                             "a captured frame replayed"), "device"),
                       _w(N_("A captured frame was sent again (replayed)"))),
    "seal_numbers_differ": (
        _w(N_("Seal numbers differ from the previous receipt at {previous_place}: missing {missing}; new {new}"),
           "previous_place", "missing", "new"),
        _w(N_("A handover receipt lists other seal numbers than the last recorded ones"))),
    "bad_mac_flood": (
        _w(N_("{count} frames with a bad MAC through bridge {bridge} within {window} s: someone is sending forged "
              "frames"), "count", "window", "bridge"),
        _w(N_("{count} frames with a bad MAC for tracker {device} within {window} s: someone is sending forged "
              "frames"), "count", "window", "device"),
        _w(N_("Many frames with a bad MAC in a short time: someone is sending forged frames"))),
    "acks_stopped": (_w(N_("Tracker {device} has used up its downlink counters: it gets no acknowledgements until it "
                           "is re-keyed"), "device"),
                     _w(N_("The tracker has used up its downlink counters: it gets no acknowledgements until it is "
                           "re-keyed"))),
    "power_lost": (_w(N_("The tracker lost power while armed and started again at {place}: removed, or its battery "
                         "pulled?"), "place"),
                   _w(N_("The tracker lost power while armed and started again: removed, or its battery pulled?"))),
    "invalid_pairing": (_w(N_("Paired with {tps}, which is not a known TPS: the box has no custody plan until the "
                              "pairing is fixed"), "tps"),
                        _w(N_("Paired with a TPS that is not known: the box has no custody plan until the pairing is "
                              "fixed"))),
    "wrong_tps": (_w(N_("At {place}, which is not its own TPS ({own_tps})"), "place", "own_tps"),
                  _w(N_("At {place}, which is not its own TPS"), "place"),
                  _w(N_("At a TPS that is not its own"))),
    "off_corridor": (_w(N_("Outside every road and river corridor of its plan, and not at any place")),),
    "long_stop": (_w(N_("Stood still for {duration} outside any place"), "duration"),
                  _w(N_("Stood still for a long time outside any place"))),
    "receipt_wrong_place": (
        _w(N_("The officer's phone was {distance} m outside {place} when the receipt was confirmed"), "distance", "place"),
        _w(N_("Receipt at {place}, which is not a custody point of the box's plan"), "place", "plan_points"),
        _w(N_("A handover receipt at a place the box's plan does not name, or from a phone away from the place"))),
    "receipt_no_arrival": (_w(N_("Receipt at {place}, but the tracker recorded no arrival there"), "place"),
                           _w(N_("A handover receipt, but the tracker recorded no arrival at that place and time"))),
    "silent": (_w(N_("Not heard since {last_heard} ({duration} without a frame)"), "last_heard", "duration"),
               _w(N_("No frame for longer than its report interval allows"))),
    "behind_schedule": (_w(N_("Not at {place} when the leg {leg} closed ({deadline})"), "place", "leg", "deadline"),
                        _w(N_("Not at the leg's destination when its window closed"))),
    "downlink_counters_low": (
        _w(N_("Tracker {device} has {left} downlink counters left: re-key it before its acknowledgements stop"),
           "device", "left"),
        _w(N_("The tracker's downlink counters are nearly used up: re-key it"))),
    "low_battery": (_w(N_("Battery at {volts} V"), "volts"), _w(N_("The tracker reports a low battery"))),
    "seal_authorised": (_w(N_("Seal opened at {place} as its plan allows: {why}"), "place", "why"),
                        _w(N_("Seal opened at {place} as its plan allows"), "place"),
                        _w(N_("Seal opened at an authorised place within its window"))),
    "arrived": (_w(N_("Arrived at {place}: the handover is recorded"), "place"),
                _w(N_("Arrived at a custody point of its plan"))),
}

Names = Mapping[str, str] | Callable[[str], str | None] | None


def kind_label(t: i18n.Translator, kind: str) -> str:
    return t._(KIND_LABELS[kind]) if kind in KIND_LABELS else kind


def event_label(t: i18n.Translator, event: str | None) -> str:
    """A seal event (loop_open ...) in words; an unknown one as it is."""
    return t._(SEAL_EVENT_LABELS[event]) if event in SEAL_EVENT_LABELS else (event or "")


def fields(template: str) -> set[str]:
    """The {names} a template fills."""
    return {f for _, f, _, _ in string.Formatter().parse(template) if f}


def namer(names: Names) -> Callable[[str | None], str | None]:
    """A place's name by its code (the code when `names` does not know it; None for no place)."""
    def name(code: str | None) -> str | None:
        if not code:
            return None
        if names is None:
            return code
        got = names.get(code) if isinstance(names, Mapping) else names(code)
        return got or code
    return name


def _num(v: object) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _epoch(iso: object) -> float | None:
    if not isinstance(iso, str):
        return None
    try:
        return dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def detail_of(alert: Mapping) -> dict:
    """An alert's detail from a database row (JSON text) or a published alert (a dict)."""
    d = alert.get("detail")
    if isinstance(d, str):
        try:
            d = json.loads(d or "{}")
        except ValueError:
            return {}
    return d if isinstance(d, dict) else {}


def facts(t: i18n.Translator, alert: Mapping, names: Names = None) -> dict[str, str | None]:
    """What the templates fill, in the reader's words; None where the alert does not say."""
    d = detail_of(alert)
    name = namer(names)
    # a database row has unix times; the published JSON has ISO text there and unix times in *_ts
    when = _num(alert["device_ts"] if "device_ts" in alert else alert.get("device_time"))
    raised = _num(alert["raised_ts"] if "raised_ts" in alert else alert.get("raised_at"))
    heard = _epoch(d.get("last_heard"))
    # a long stop says its minutes; a silence is measured from the last frame to when it was raised
    minutes = _num(d.get("minutes"))
    if minutes is None and heard is not None and raised is not None:
        minutes = (raised - heard) // 60  # whole minutes, as the stored message counts them
    seconds = minutes * 60 if minutes is not None else None

    def num(v: object, digits: int = 0) -> str | None:
        x = _num(v)
        return None if x is None else t.number(x, digits)

    def codes(v: object) -> str | None:
        return (", ".join(str(x) for x in v) or "-") if isinstance(v, list) else None

    def word(labels: dict[str, str], v: object) -> str | None:
        if v is None:
            return None
        return t._(labels[v]) if isinstance(v, str) and v in labels else str(v)

    def text(v: object) -> str | None:
        return None if v is None else str(v)

    mv = _num(d.get("battery_mv"))
    return {
        "place": name(text(alert.get("place"))), "device": text(alert.get("device")), "box": text(alert.get("box")),
        "deadline": t.datetime(when) if when is not None else None,
        "event": word(SEAL_EVENT_LABELS, d.get("event")), "leg": word(LEG_LABELS, d.get("leg")),
        "own_tps": name(text(d.get("own_tps"))), "tps": name(text(d.get("tps"))),
        "previous_place": name(text(d.get("previous_place"))),
        "duration": t.duration(seconds) if seconds is not None else None,
        "last_heard": t.datetime(heard) if heard is not None else None,
        "volts": num(mv / 1000 if mv is not None else None, 2),
        "why": word(PERMIT_LABELS, d.get("why")),
        "left": num(d.get("left")), "count": num(d.get("count")), "window": num(d.get("window_s")),
        "distance": num(d.get("distance_m")), "bridge": text(d.get("bridge")), "via": text(d.get("via")),
        "missing": codes(d.get("missing")), "new": codes(d.get("new")),
        "plan_points": ", ".join(name(str(c)) or "" for c in d["plan_points"]) if isinstance(d.get("plan_points"), list)
        else None,
    }


def describe(t: i18n.Translator, alert: Mapping, names: Names = None) -> str:
    """One line saying what happened, in the reader's language and zone. `alert` is a database row
    or a published alert; `names` maps place codes to names (a dict or a function) when the caller
    has the places. A kind without a template gives the stored (English) message."""
    ways = TEMPLATES.get(str(alert.get("kind")))
    if not ways:
        return str(alert.get("message") or "")
    f = facts(t, alert, names)
    way = next((w for w in ways if all(f.get(n) not in (None, "") for n in w.needs)), ways[-1])
    values = {k: "" if v is None else str(v) for k, v in f.items()}
    try:
        return t._(way.text).format(**values)
    except (KeyError, IndexError, ValueError):  # a translation that broke a placeholder: the source string
        return way.text.format(**values)


def place_codes(alerts: Iterable[Mapping]) -> set[str]:
    """Every place code the alerts' descriptions may name (for one look-up of their names)."""
    out: set[str] = set()
    for a in alerts:
        d = detail_of(a)
        out.update(c for c in (a.get("place"), a.get("district"), d.get("own_tps"), d.get("tps"),
                               d.get("previous_place")) if isinstance(c, str) and c)
        points = d.get("plan_points")
        out.update(c for c in points if isinstance(c, str)) if isinstance(points, list) else None
    return out


def alert_table(conn: sqlite3.Connection, rows: list[dict], language: str | None, timezone: str | None) -> str:
    """`segel alerts list`: a header, local times with the zone's name, places by name, and under
    each alert what happened, in the reader's words."""
    t = i18n.translator(language, timezone)
    if not rows:
        return t._("No alerts.")
    names = places_io.names(conn, place_codes(rows))
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
    indent = " " * (widths[0] + 2)
    out = lines[:2]
    for r, line in zip(rows, lines[2:]):
        out += [line, indent + describe(t, r, names)]
    return "\n".join(out)


def alert_sheet(conn: sqlite3.Connection, row: dict, history: list[tuple], language: str | None,
                timezone: str | None) -> str:
    """`segel alerts show`: one alert as people read it, with its history, in local time."""
    t = i18n.translator(language, timezone)
    names = places_io.names(conn, place_codes([row]))

    def place(code: str | None) -> str:
        return f"{names[code]} ({code})" if code in names else (code or "-")

    happened = t.datetime(row["device_time"]) or "-"
    if row["late"]:
        happened += " " + t._("LATE")
    facts_ = [(t._("Box"), row["box"] or row["subject"]), (t._("Tracker"), row["device"] or "-"),
              (t._("Place"), place(row["place"])), (t._("District"), place(row["district"])),
              (t._("Happened"), happened), (t._("Raised"), t.datetime(row["raised_at"])),
              (t._("Occurrences"), t.ngettext("%(n)d time", "%(n)d times", row["occurrences"]) % {"n": row["occurrences"]})]
    if row["lat"] is not None:
        facts_.append((t._("Where"), f"{row['lat']:.5f}, {row['lon']:.5f}"))
    width = max(len(k) for k, _ in facts_)
    sev = t._(SEVERITY_LABELS.get(row["severity"], row["severity"]))
    state = t._(STATE_LABELS.get(row["state"], row["state"]))
    lines = [f"{row['id']} · {sev} · {state}", f"{kind_label(t, row['kind'])} ({row['kind']})",
             describe(t, row, names), ""]
    lines += [f"{k.rjust(width)}: {v}" for k, v in facts_]
    lines += ["", t._("History") + f" ({t.zone_name}):"]
    for at, ev, by, note in history:
        what = t._(EVENT_LABELS.get(ev, ev))
        said = f"“{note}”" if note and ev not in ("raised", "repeated") else ""  # those notes are the finding's key
        lines.append("  " + "  ".join(x for x in (t.datetime(at, zone_suffix=False), what, by or "", said) if x))
    return "\n".join(lines)
