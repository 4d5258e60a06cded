"""`segel report district PPK`: every box of a district (PPK), delivered and returned on time or not, incidents."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from segel.report.context import Custody
from segel.report.pdf import MARGIN, ReportPDF, heading, pairs, table
from segel.report.story import BoxStory, LegResult, box_story
from segel.report.texts import Texts, texts

INCIDENT_SEVERITIES = ("critical", "high")


class DistrictError(ValueError):
    pass


@dataclass
class DistrictSummary:
    district: str
    boxes: list[BoxStory]

    def count(self, leg: str, status: str | None) -> int:
        return sum(1 for s in self.boxes if _status(_leg(s, leg)) == status)


def _leg(s: BoxStory, name: str) -> LegResult | None:
    return next((lr for lr in s.legs if lr.leg.name == name), None)


def _status(lr: LegResult | None) -> str | None:
    return lr.status if lr is not None else None


def boxes_of(c: Custody, district: str) -> list[str]:
    if district not in c.places or c.places[district].kind != "ppk":
        known = sorted(code for code, p in c.places.items() if p.kind == "ppk")
        raise DistrictError(f"{district!r} is not a PPK (district); known: {', '.join(known[:30])}"
                            + (" ..." if len(known) > 30 else ""))
    return sorted(b for b in c.boxes if c.district_of(b) == district)


def summarise(c: Custody, district: str) -> DistrictSummary:
    return DistrictSummary(district, [box_story(c, b) for b in boxes_of(c, district)])


def render_district(c: Custody, district: str, output: Path, lang: str = "id") -> DistrictSummary:
    d = summarise(c, district)
    build_district(c, d, texts(lang, c.tz, c.tz_name)).output(str(output))
    return d


def build_district(c: Custody, d: DistrictSummary, tx: Texts) -> ReportPDF:
    _ = tx._
    ppk = c.places[d.district]
    pdf = ReportPDF(_("District custody report: {code} {name}").format(code=d.district, name=ppk.name),
                    _("page {n} of {m}"))
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 15)
    pdf.cell(0, 8, _("District custody report"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "B", 12)
    pdf.cell(0, 7, f"{d.district}  {ppk.name}", new_x="LMARGIN", new_y="NEXT")
    n = len(d.boxes)
    incidents = [(s, a) for s in d.boxes for a in s.alerts if a["severity"] in INCIDENT_SEVERITIES]
    pairs(pdf, [(_("Report made"), _("{when}  (instance: {instance})").format(when=tx.when(time.time(), zone=True),
                                                                               instance=c.instance)),
                (_("Boxes"), str(n))])
    pdf.set_font("Helvetica", "I", 7.5)
    pdf.cell(0, 4, _("Times are local ({zone}).").format(zone=c.tz_name), new_x="LMARGIN", new_y="NEXT")
    heading(pdf, _("Summary"))
    pairs(pdf, [
        (_("Delivered on time"), f"{d.count('pps_to_tps', 'on_time')} / {n}"),
        (_("Delivered late"), str(d.count("pps_to_tps", "late"))),
        (_("Not delivered"), str(d.count("pps_to_tps", "not_arrived"))),
        (_("Returned on time"), f"{d.count('ppk_to_warehouse', 'on_time')} / {n}"),
        (_("Returned late"), str(d.count("ppk_to_warehouse", "late"))),
        (_("Not returned"), str(d.count("ppk_to_warehouse", "not_arrived"))),
        (_("Critical and high alerts"), str(len(incidents))),
        (_("Open"), str(sum(1 for _s, a in incidents if a["state"] in ("open", "acknowledged")))),
    ])
    heading(pdf, _("Boxes of the district"))
    rows = []
    for s in d.boxes:
        dl, rt = _leg(s, "pps_to_tps"), _leg(s, "ppk_to_warehouse")
        bad = [a for a in s.alerts if a["severity"] in INCIDENT_SEVERITIES]
        rows.append([s.box, f"{s.device:06x}" if s.device is not None else "-", _cell(dl, tx), _cell(rt, tx),
                     str(len(s.receipts)), ", ".join(sorted({tx.label(a["kind"]) for a in bad})) or "-"])
    table(pdf, [_("Box"), _("Tracker"), _("Delivered"), _("Returned"), _("Receipts"), _("Incidents")], rows,
          (38, 13, 38, 38, 12, 41), _("None recorded."))
    heading(pdf, _("Incidents"))
    inc_rows = []
    for s, a in sorted(incidents, key=lambda sa: sa[1]["device_time"] or sa[1]["raised_at"]):
        how = f"{tx.label(a['resolved_by'])}: {tx.label(a['resolve_note'] or '')}" if a["resolved_by"] else \
            (f"{a['acked_by']}: {a['ack_note'] or ''}" if a["acked_by"] else "-")
        late = f" ({tx.label('late')})" if a["late"] else ""
        inc_rows.append([tx.when(a["device_time"] or a["raised_at"]), s.box, tx.label(a["kind"]) + late,
                         tx.describe(a, c.place_name), tx.label(a["severity"]), tx.label(a["state"]), how])
    table(pdf, [_("Time"), _("Box"), _("Alert"), _("What happened"), _("Severity"), _("State"), _("Resolved")],
          inc_rows, (22, 30, 24, 48, 17, 16, 40), _("None recorded."))
    pdf.set_x(MARGIN)
    return pdf


def _cell(lr: LegResult | None, tx: Texts) -> str:
    if lr is None:
        return "-"
    if lr.arrived is None:
        return tx.label("not_arrived")
    return f"{tx.short(lr.arrived)} {tx.label(lr.status)}"
