"""`segel report box BOX`: one box's custody report as a PDF, Bahasa Indonesia by default.

Page one: who and what, a summary, the route map. Then the legs against the plan's windows (a
timeline and a table), seal events, handover receipts, alerts with how they were handled, the
tracker's health and pairings, and last the ledger head, the signed checkpoint, the public key
and a QR code to verify them. Times are local to the election calendar's zone (WITA for Kutai Timur).
"""

from __future__ import annotations

from pathlib import Path

from fpdf import FPDF

from segel import qrdraw
from segel.custody import checkpoints
from segel.report import mapdraw
from segel.report.context import Custody
from segel.report.story import BoxStory, box_story
from segel.report.texts import Texts, texts

MARGIN = 15.0
HEAD_FILL = (225, 228, 235)


class ReportPDF(FPDF):
    """A4 with a footer; text outside Latin-1 (the PDF core fonts) is shown as '?' instead of failing."""

    def __init__(self, title: str, page_note: str) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.title_text = title
        self.page_note = page_note  # "page {n} of {m}"
        self.set_margins(MARGIN, MARGIN, MARGIN)
        self.set_auto_page_break(True, MARGIN + 4)
        self.set_title(title)
        self.set_creator("Segel")

    def normalize_text(self, text: str) -> str:
        return super().normalize_text(text.encode("latin-1", "replace").decode("latin-1"))

    def footer(self) -> None:
        self.set_y(-MARGIN)
        self.set_font("Helvetica", "", 7)
        self.set_text_color(110, 110, 110)
        self.cell(0, 4, self.title_text, align="L")
        self.set_x(MARGIN)
        self.cell(0, 4, self.page_note.format(n=self.page_no(), m="{nb}"), align="R")
        self.set_text_color(0, 0, 0)


def heading(pdf: FPDF, text: str, need: float = 30) -> None:
    """A section title, on a new page unless `need` mm (the title and what must follow it) still fit."""
    if pdf.get_y() + need > pdf.h - MARGIN - 6:
        pdf.add_page()
    pdf.ln(3)
    pdf.set_font("Helvetica", "B", 11)
    pdf.cell(0, 6, text, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 8)


def wrap(pdf: FPDF, text: str, width: float) -> list[str]:
    """Greedy word wrap with the current font (a word longer than the width is cut)."""
    text = pdf.normalize_text(text) if hasattr(pdf, "normalize_text") else text
    if pdf.get_string_width(text) <= width:
        return [text]
    lines: list[str] = []
    cur = ""
    for word in text.split(" "):
        trial = f"{cur} {word}" if cur else word
        if pdf.get_string_width(trial) <= width:
            cur = trial
            continue
        if cur:
            lines.append(cur)
        while pdf.get_string_width(word) > width and len(word) > 1:
            cut = max(1, int(len(word) * width / pdf.get_string_width(word)))
            lines.append(word[:cut])
            word = word[cut:]
        cur = word
    if cur:
        lines.append(cur)
    return lines


def table(pdf: FPDF, header: list[str], rows: list[list[str]], widths: tuple[float, ...], empty: str) -> None:
    """A table with wrapped cells, zebra rows and the header again after a page break (drawn
    directly: fpdf2's own table layout costs more than the rest of a report)."""
    if not rows:
        pdf.set_font("Helvetica", "I", 8)
        pdf.cell(0, 5, empty, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", "", 8)
        return
    total = sum(widths)
    widths = tuple(w * (pdf.w - 2 * MARGIN) / total for w in widths)
    line_h, pad = 3.7, 0.9

    def draw(cells: list[str], bold: bool, fill: tuple[int, int, int] | None) -> None:
        pdf.set_font("Helvetica", "B" if bold else "", 7.5)
        wrapped = [wrap(pdf, c, w - 2 * pad) for c, w in zip(cells, widths)]
        h = max(len(x) for x in wrapped) * line_h + 2 * pad
        if pdf.get_y() + h > pdf.h - MARGIN - 6:
            pdf.add_page()
            if not bold:
                draw(header, True, HEAD_FILL)
        y, x = pdf.get_y(), MARGIN
        if fill:
            pdf.set_fill_color(*fill)
            pdf.rect(MARGIN, y, pdf.w - 2 * MARGIN, h, style="F")
        for lines, w in zip(wrapped, widths):
            for n, line in enumerate(lines):
                pdf.set_xy(x + pad, y + pad + n * line_h)
                pdf.cell(w - 2 * pad, line_h, line)
            x += w
        pdf.set_draw_color(200, 200, 200)
        pdf.set_line_width(0.1)
        pdf.line(MARGIN, y + h, pdf.w - MARGIN, y + h)
        pdf.set_xy(MARGIN, y + h)

    draw(header, True, HEAD_FILL)
    for i, r in enumerate(rows):
        draw(r, False, (244, 246, 248) if i % 2 else None)
    pdf.set_font("Helvetica", "", 8)


def pairs(pdf: FPDF, items: list[tuple[str, str]], key_w: float = 62) -> None:
    for k, v in items:
        pdf.set_font("Helvetica", "B", 8)
        pdf.cell(key_w, 4.6, k)
        pdf.set_font("Helvetica", "", 8)
        pdf.multi_cell(0, 4.6, v, new_x="LMARGIN", new_y="NEXT")


def render_box(c: Custody, box: str, output: Path, lang: str = "id") -> BoxStory:
    """Write the report of `box` to `output`; returns the story it was made from."""
    s = box_story(c, box)
    tx = texts(lang, c.tz, c.tz_name)
    pdf = build_box(c, s, tx)
    pdf.output(str(output))
    return s


def build_box(c: Custody, s: BoxStory, tx: Texts) -> ReportPDF:
    _ = tx._
    pdf = ReportPDF(_("Ballot box custody report: {box}").format(box=s.box), _("page {n} of {m}"))
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 15)
    pdf.cell(0, 8, _("Ballot box custody report"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "B", 12)
    pdf.cell(0, 7, s.box, new_x="LMARGIN", new_y="NEXT")
    place = c.places.get(s.tps or "")
    ppk = c.places.get(s.district or "")
    import time

    pairs(pdf, [
        (_("Polling station (TPS)"), f"{s.tps or '-'}  {place.name if place else ''}"),
        (_("District (PPK)"), f"{s.district or '-'}  {ppk.name if ppk else ''}"),
        (_("Tracker"), f"{s.device:06x}" if s.device is not None else "-"),
        (_("Report made"), _("{when}  (instance: {instance})").format(when=tx.when(time.time(), zone=True),
                                                                       instance=c.instance)),
    ])
    pdf.set_font("Helvetica", "I", 7.5)
    pdf.cell(0, 4, _("Times are local ({zone}).").format(zone=c.tz_name), new_x="LMARGIN", new_y="NEXT")
    _summary(pdf, s, tx)
    heading(pdf, _("Route map"))
    pdf.set_font("Helvetica", "", 7.5)
    pdf.cell(0, 4, _("The tracker's fixes over the places and roads of the box's plan (drawn offline)."),
             new_x="LMARGIN", new_y="NEXT")
    top = pdf.get_y() + 1
    labels = {"start": _("start"), "end": _("end"), "none": _("None recorded."), "detail": _("around its TPS"),
              "track": _("track (fixes)"), "road": _("planned road"), "seal_bad": _("seal opened without authority"),
              "seal_ok": _("authorised opening")}
    h = mapdraw.draw_pair(pdf, s, c.places, MARGIN, top, pdf.w - 2 * MARGIN, min(pdf.h - MARGIN - 14 - top, 120),
                          labels)
    mapdraw.legend(pdf, MARGIN, top + h + 1.5, labels)
    pdf.set_y(top + h + 6)
    _legs(pdf, s, tx)
    _seals(pdf, s, tx, c)
    _receipts(pdf, s, tx)
    _alerts(pdf, s, tx, c)
    _health(pdf, s, tx)
    _ledger(pdf, s, tx)
    return pdf


def _summary(pdf: FPDF, s: BoxStory, tx: Texts) -> None:
    _ = tx._
    heading(pdf, _("Summary"))
    back = any(lr.arrived for lr in s.legs if lr.leg.name == "ppk_to_warehouse")
    cut = [r for r in s.seals if r.kind in ("seal_unauthorised", "case_opened")]
    open_ = [a for a in s.alerts if a["state"] in ("open", "acknowledged")]
    seal = _("opened without authority: {times}").format(times=", ".join(tx.when(r.t) for r in cut)) if cut else \
        _("intact, or opened only with authority")
    pairs(pdf, [
        (_("Delivered to its TPS"), _("yes") if s.delivered else _("no")),
        (_("Back at the warehouse"), _("yes") if back else _("no")),
        (_("Seal"), seal),
        (_("Open alerts"), ", ".join(tx.label(a["kind"]) for a in open_) or "-"),
        (_("Handover receipts"), str(len(s.receipts))),
    ])


def _legs(pdf: FPDF, s: BoxStory, tx: Texts) -> None:
    _ = tx._
    heading(pdf, _("Custody legs against the plan"), need=5.0 * len(s.legs) + 30)
    if s.plan is None:
        pdf.cell(0, 5, _("no plan (no calendar stored in the database)"), new_x="LMARGIN", new_y="NEXT")
        return
    _timeline(pdf, s, tx)
    rows = [[tx.label(lr.leg.name), lr.leg.from_code, lr.leg.to_code,
             f"{tx.short(lr.leg.window.start)} - {tx.short(lr.leg.window.end)}", tx.short(lr.departed),
             tx.short(lr.arrived), tx.label(lr.status)] for lr in s.legs]
    table(pdf, [_("Leg"), _("From"), _("To"), _("Window"), _("Left"), _("Arrived"), _("Status")], rows,
          (24, 30, 34, 36, 18, 18, 20), _("None recorded."))


def _timeline(pdf: FPDF, s: BoxStory, tx: Texts) -> None:
    """One row per leg: the planned window (light bar) and the actual leg (dark bar, arrival mark)."""
    legs = s.legs
    ts = [t for lr in legs for t in (lr.leg.window.start, lr.leg.window.end, lr.departed, lr.arrived) if t]
    if not ts:
        return
    t0, t1 = min(ts), max(ts)
    x0, w = MARGIN + 28, pdf.w - 2 * MARGIN - 30
    row_h = 5.0
    if pdf.get_y() + row_h * len(legs) + 12 > pdf.h - MARGIN - 6:
        pdf.add_page()
    y = pdf.get_y() + 1

    def X(t: float) -> float:
        return x0 + (t - t0) / max(1.0, t1 - t0) * w
    pdf.set_font("Helvetica", "", 6)
    day = 86400
    import datetime as dt

    first = dt.datetime.fromtimestamp(t0, tx.tz).replace(hour=0, minute=0, second=0).timestamp() + day
    pdf.set_draw_color(215, 215, 215)
    pdf.set_line_width(0.1)
    d = first
    while d < t1:
        pdf.line(X(d), y, X(d), y + row_h * len(legs))
        pdf.set_xy(X(d) - 8, y + row_h * len(legs))
        pdf.cell(16, 3, tx.when(d, date_only=True), align="C")
        d += day
    for i, lr in enumerate(legs):
        ry = y + i * row_h
        pdf.set_xy(MARGIN, ry + 0.6)
        pdf.cell(27, 3.5, tx.label(lr.leg.name))
        pdf.set_fill_color(200, 220, 240)
        pdf.rect(X(lr.leg.window.start), ry + 0.8, max(0.4, X(lr.leg.window.end) - X(lr.leg.window.start)), 3.4, style="F")
        col = {"on_time": (30, 120, 60), "late": (200, 100, 0), "not_arrived": (190, 20, 20)}[lr.status]
        pdf.set_fill_color(*col)
        if lr.arrived:
            start = lr.departed or lr.arrived
            pdf.rect(X(start), ry + 1.7, max(0.8, X(lr.arrived) - X(start)), 1.6, style="F")
            pdf.ellipse(X(lr.arrived) - 0.9, ry + 1.6, 1.8, 1.8, style="F")
    pdf.set_y(y + row_h * len(legs) + 4)
    pdf.set_font("Helvetica", "", 6.5)
    pdf.set_fill_color(200, 220, 240)
    pdf.rect(MARGIN, pdf.get_y() + 0.8, 5, 2, style="F")
    pdf.set_x(MARGIN + 6)
    pdf.cell(30, 3.5, tx._("Planned window"))
    pdf.set_fill_color(30, 120, 60)
    pdf.rect(MARGIN + 40, pdf.get_y() + 1.2, 5, 1.2, style="F")
    pdf.set_x(MARGIN + 46)
    pdf.cell(30, 3.5, tx._("Actual"), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(1)


def _seals(pdf: FPDF, s: BoxStory, tx: Texts, c: Custody) -> None:
    _ = tx._
    heading(pdf, _("Seal events"))
    rows = []
    for r in s.seals:
        kind = tx.label(r.kind).upper() if r.kind in ("seal_unauthorised", "case_opened", "power_lost") else tx.label(r.kind)
        note = _("; late (learned after the fact)") if r.late else ""
        rows.append([tx.when(r.t), tx.label(r.event), r.place or "-", kind + note + (f" ({tx.label(r.why)})" if r.why else "")])
    table(pdf, [_("Time"), _("Event"), _("Place"), _("Kind")], rows, (32, 40, 38, 70), _("None recorded."))


def _receipts(pdf: FPDF, s: BoxStory, tx: Texts) -> None:
    _ = tx._
    heading(pdf, _("Handover receipts"))
    rows = []
    for r in s.receipts:
        o, wit = r["officer"], r["witness"]
        arrival = tx.when(r["arrival_t"]) if r["arrival_t"] else (tx.label("pending") if r["state"] == "pending"
                                                                  else _("not recorded"))
        rows.append([tx.when(r["confirmed_at"]), r["place"], f"{o['name']} ({o['role']}, {o['id_number']})",
                     f"{wit['name']} ({wit['role']})" if wit else "-", ", ".join(r["seals"]), tx.label(r["condition"]), arrival])
    table(pdf, [_("Time"), _("Place"), _("Received by"), _("Witness"), _("Seal numbers"), _("Condition"),
                _("Tracker arrival")], rows, (24, 26, 38, 28, 26, 16, 22), _("None recorded."))


def _alerts(pdf: FPDF, s: BoxStory, tx: Texts, c: Custody) -> None:
    _ = tx._
    heading(pdf, _("Alerts"))
    rows = []
    for a in s.alerts:
        ack = f"{tx.label(a['acked_by'])}, {tx.short(a['acked_at'])}: {tx.label(a['ack_note'] or '')}" if a["acked_by"] else "-"
        res = f"{tx.label(a['resolved_by'])}, {tx.short(a['resolved_at'])}: {tx.label(a['resolve_note'] or '')}" \
            if a["resolved_by"] else "-"
        late = f" ({tx.label('late')})" if a["late"] else ""
        rows.append([tx.when(a["device_time"] or a["raised_at"]), tx.label(a["kind"]) + late,
                     tx.describe(a, c.place_name), tx.label(a["severity"]), tx.label(a["state"]), ack, res])
    table(pdf, [_("Time"), _("Alert"), _("What happened"), _("Severity"), _("State"), _("Acknowledged"), _("Resolved")],
          rows, (22, 26, 50, 17, 17, 32, 32), _("None recorded."))


def _health(pdf: FPDF, s: BoxStory, tx: Texts) -> None:
    _ = tx._
    h = s.health
    heading(pdf, _("Tracker health"))
    batt = "-" if h.battery_first is None else f"{h.battery_first} / {h.battery_min} / {h.battery_last} mV"
    fix = f"{h.fixes} / {h.positions}" + (f" ({100 * h.fixes / h.positions:.0f} %)" if h.positions else "")
    gap = _("{hours} hours ({when})").format(hours=f"{h.longest_gap_s / 3600:.1f}", when=tx.when(h.longest_gap_at)) \
        if h.longest_gap_at else "-"
    pairs(pdf, [(_("Frames received"), str(h.frames)), (_("Positions with a fix"), fix),
                (_("First heard"), tx.when(h.first_rx)), (_("Last heard"), tx.when(h.last_rx)),
                (_("Longest silence"), gap), (_("Frames received late (store-and-forward)"), str(h.late_frames)),
                (_("Battery (first, lowest, last)"), batt), (_("Rejected frames under its id"), str(h.security))])
    for at, ev, body in s.pairings:
        pairs(pdf, [(_("Pairing"), _("{when}: {change} {device} by {who}").format(
                         when=tx.when(at), change=tx.label(ev), device=body.get("device"), who=body.get("by") or "-")
                     + (f" ({tx.label(body['reason'])})" if body.get("reason") else ""))])


def _ledger(pdf: FPDF, s: BoxStory, tx: Texts) -> None:
    _ = tx._
    heading(pdf, _("Custody ledger and signature"), need=95)
    cp = s.checkpoint
    if cp is None:
        signed = _("none yet")
    elif cp.get("signature"):
        signed = _("covers entries 0 to {seq}, signed {when}").format(seq=cp["seq"], when=tx.when(cp["at_ms"] / 1000,
                                                                                                    zone=True))
    else:
        signed = _("NOT SIGNED: {why}").format(why=cp.get("missing") or "-")
    pub = s.public_key or "-"
    pub_groups = " ".join(pub[i:i + 8] for i in range(0, len(pub), 8)) if s.public_key else "-"
    top = pdf.get_y()
    pdf.set_right_margin(MARGIN + 48)
    pairs(pdf, [(_("Ledger entries"), str(s.entries)), (_("Head (last entry's hash)"), s.head),
                (_("Signed checkpoint"), signed + (_("; its head {head}").format(head=cp["head"])
                                                  if cp and cp["seq"] != s.entries - 1 else "")),
                (_("Signing key"), cp.get("key") or "-" if cp else "-"), (_("Public key"), pub_groups)], key_w=40)
    pdf.set_right_margin(MARGIN)
    if cp is not None and cp.get("signature"):
        # a fixed mask: choosing the best of eight costs more than the rest of the report together
        qrdraw.draw(pdf, qrdraw.matrix(checkpoints.qr_text(cp, cp["signature"]), mask_pattern=2),
                    pdf.w - MARGIN - 42, top, 42)
    pdf.set_y(max(pdf.get_y(), top + 44) + 2)
    heading(pdf, _("How to verify"))
    pdf.multi_cell(0, 4, _("Ask the election office for this box's bundle (segel ledger export) and check it anywhere, "
                           "without a network: segel verify BUNDLE --key PUBLIC_KEY. It says VALID, or which ledger "
                           "entry was altered, removed or reordered. The QR code holds the signed checkpoint above; "
                           "segel verify --qr TEXT --key PUBLIC_KEY checks its signature, and with the bundle that "
                           "the bundle holds that head."), new_x="LMARGIN", new_y="NEXT")
