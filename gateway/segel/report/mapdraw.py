"""A box's route drawn offline into a PDF: the plan's places and corridors, the track, seal events.

No tiles, no network: an equirectangular projection around the map's centre (metres are true to a
fraction of a percent over a district), places as their shapes or as symbols when too small to
see at the scale, corridors as their buffered width, the track as a polyline of its fixes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from fpdf import FPDF

from segel.places.model import CORRIDOR, Area, Circle, Corridor, Place
from segel.report.story import BoxStory

EARTH_M = 6_371_008.8
KIND_COLOUR = {"warehouse": (90, 60, 150), "ppk": (30, 110, 170), "pps": (40, 150, 120), "tps": (200, 120, 20),
               "zone": (120, 120, 120)}
TRACK = (20, 40, 120)
SEAL_BAD = (200, 20, 20)
SEAL_OK = (40, 140, 60)


@dataclass(frozen=True)
class Frame:
    """Page rectangle (mm) and the projection that fills it."""

    x: float
    y: float
    w: float
    h: float
    lat0: float
    lon0: float
    scale: float  # mm per metre
    cx: float  # projected centre (m)
    cy: float

    def xy(self, lat: float, lon: float) -> tuple[float, float]:
        mx, my = _proj(lat, lon, self.lat0, self.lon0)
        return (self.x + self.w / 2 + (mx - self.cx) * self.scale, self.y + self.h / 2 - (my - self.cy) * self.scale)


def _proj(lat: float, lon: float, lat0: float, lon0: float) -> tuple[float, float]:
    return (math.radians(lon - lon0) * EARTH_M * math.cos(math.radians(lat0)), math.radians(lat - lat0) * EARTH_M)


def fit(points: Sequence[tuple[float, float]], x: float, y: float, w: float, h: float, pad: float = 0.08,
        min_span_m: float = 1500.0) -> Frame:
    lat0 = sum(p[0] for p in points) / len(points)
    lon0 = sum(p[1] for p in points) / len(points)
    xs, ys = zip(*(_proj(la, lo, lat0, lon0) for la, lo in points))
    span_x, span_y = max(max(xs) - min(xs), min_span_m), max(max(ys) - min(ys), min_span_m)
    scale = min(w * (1 - 2 * pad) / span_x, h * (1 - 2 * pad) / span_y)
    return Frame(x, y, w, h, lat0, lon0, scale, (max(xs) + min(xs)) / 2, (max(ys) + min(ys)) / 2)


def _points(shape: object) -> list[tuple[float, float]]:
    if isinstance(shape, Circle):
        return [(shape.lat, shape.lon)]
    if isinstance(shape, (Area, Corridor)):
        ring = shape.ring if isinstance(shape, Area) else shape.line
        return [(la, lo) for lo, la in ring]
    return []


DETAIL_M = 4000.0  # the detail map shows this far around the TPS (and its PPS, if farther)


def draw_pair(pdf: FPDF, s: BoxStory, places: dict[str, Place], x: float, y: float, w: float, h_max: float,
              label: dict[str, str]) -> float:
    """The whole route, and beside it the last kilometres around the TPS when the route is long.
    Returns the height used."""
    pts = _content(s, places)
    if not pts:
        pdf.set_xy(x, y + 2)
        pdf.cell(w, 5, label["none"], align="C")
        return 8.0
    tps = places.get(s.tps or "")
    h = height(pts, w, h_max)
    whole = fit(pts, x, y, w, h)
    if tps is None or not isinstance(tps.shape, Circle) or whole.scale * DETAIL_M * 4 > w:
        draw(pdf, s, places, whole, label)
        return h
    near = [p for p in pts if _dist(p, (tps.shape.lat, tps.shape.lon)) <= DETAIL_M]
    pps = places.get(tps.parent or "")
    if pps is not None and isinstance(pps.shape, Circle):
        near.append((pps.shape.lat, pps.shape.lon))
    wl = w * 0.6
    h = height(pts, wl, h_max)
    draw(pdf, s, places, fit(pts, x, y, wl - 1.5, h), label)
    draw(pdf, s, places, fit(near, x + wl + 1.5, y, w - wl - 1.5, h, min_span_m=800), label, label["detail"])
    return h


def height(pts: list[tuple[float, float]], w: float, h_max: float, h_min: float = 70.0) -> float:
    """The map's height: the content's own proportions at width w, between h_min and h_max."""
    lat0, lon0 = pts[0]
    xs, ys = zip(*(_proj(la, lo, lat0, lon0) for la, lo in pts))
    span_x, span_y = max(max(xs) - min(xs), 1.0), max(max(ys) - min(ys), 1.0)
    return max(h_min, min(h_max, w * span_y / span_x * 1.25))


def _dist(a: tuple[float, float], b: tuple[float, float]) -> float:
    mx, my = _proj(a[0], a[1], b[0], b[1])
    return math.hypot(mx, my)


def _content(s: BoxStory, places: dict[str, Place]) -> list[tuple[float, float]]:
    pts: list[tuple[float, float]] = [(f.lat, f.lon) for f in s.track]
    for code in _plan_codes(s, places):
        pts += _points(places[code].shape)
    return pts


def _plan_codes(s: BoxStory, places: dict[str, Place]) -> list[str]:
    codes = sorted(s.plan.custody_points) if s.plan else ([s.tps] if s.tps else [])
    return [c for c in codes if c in places]


def draw(pdf: FPDF, s: BoxStory, places: dict[str, Place], fr: Frame, label: dict[str, str],
         title: str = "") -> None:
    auto, margin = pdf.auto_page_break, pdf.b_margin
    pdf.set_auto_page_break(False)  # a label near the page's foot must not break the page inside the clip
    with pdf.rect_clip(fr.x, fr.y, fr.w, fr.h):
        _draw(pdf, s, places, fr, label)
    pdf.set_draw_color(160, 160, 160)
    pdf.set_line_width(0.2)
    pdf.rect(fr.x, fr.y, fr.w, fr.h, style="D")
    if title:
        pdf.set_font("Helvetica", "B", 6.5)
        pdf.set_xy(fr.x + 1.5, fr.y + 1.5)
        pdf.cell(fr.w - 12, 3, title)
    _scale_bar(pdf, fr)
    pdf.set_auto_page_break(auto, margin)


def _draw(pdf: FPDF, s: BoxStory, places: dict[str, Place], fr: Frame, label: dict[str, str]) -> None:
    plan_codes = _plan_codes(s, places)
    corridors = [places[c] for c in sorted(s.plan.corridors) if c in places] if s.plan else []
    pdf.set_fill_color(246, 246, 240)
    pdf.rect(fr.x, fr.y, fr.w, fr.h, style="F")
    # corridors: their true width when it shows, else a thin band
    pdf.set_draw_color(240, 215, 180)
    for c in corridors:
        line = [fr.xy(la, lo) for lo, la in c.shape.line]  # type: ignore[union-attr]
        pdf.set_line_width(min(6.0, max(0.9, c.shape.width_m * fr.scale)))  # type: ignore[union-attr]
        pdf.polyline(line)
    # the track
    if len(s.track) > 1:
        pdf.set_draw_color(*TRACK)
        pdf.set_line_width(0.35)
        pdf.polyline([fr.xy(f.lat, f.lon) for f in s.track])
    pdf.set_fill_color(*TRACK)
    for f in s.track:
        px, py = fr.xy(f.lat, f.lon)
        if _inside(px, py, fr):
            pdf.ellipse(px - 0.45, py - 0.45, 0.9, 0.9, style="F")
    # the plan's places on top, with their codes (a label that would cover another one moves down)
    pdf.set_font("Helvetica", "", 6)
    taken: list[tuple[float, float]] = []
    for code in plan_codes:
        p = places.get(code)
        if p is None or p.kind == CORRIDOR:
            continue
        col = KIND_COLOUR.get(p.kind, (100, 100, 100))
        pdf.set_draw_color(*col)
        pdf.set_fill_color(*col)
        pdf.set_line_width(0.3)
        if isinstance(p.shape, Circle):
            px, py = fr.xy(p.shape.lat, p.shape.lon)
            r = max(1.3, p.shape.radius_m * fr.scale)
            pdf.ellipse(px - r, py - r, 2 * r, 2 * r, style="D")
            pdf.ellipse(px - 0.6, py - 0.6, 1.2, 1.2, style="F")
        elif isinstance(p.shape, Area):
            ring = [fr.xy(la, lo) for lo, la in p.shape.ring]
            pdf.polygon(ring, style="D")
            px, py = ring[0]
        else:
            continue
        pdf.set_text_color(*col)
        text = p.name if len(p.name) <= 40 else p.name.split(" (")[0][:40]
        tw = pdf.get_string_width(text) + 1
        lx = px + 1.6 if px + 1.6 + tw < fr.x + fr.w else px - 1.6 - tw  # near the right edge: to the left
        ly = py - 2.2
        while any(abs(ly - ty) < 3 and abs(lx - tx) < tw for tx, ty in taken):
            ly += 3
        taken.append((lx, ly))
        pdf.set_xy(lx, ly)
        pdf.cell(tw, 3, text)
    pdf.set_text_color(0, 0, 0)
    _ends_and_seals(pdf, s, fr, label)


def _ends_and_seals(pdf: FPDF, s: BoxStory, fr: Frame, label: dict[str, str]) -> None:
    if s.track:
        ends = [(s.track[0], (30, 150, 30), label["start"]), (s.track[-1], (0, 0, 0), label["end"])]
        if _dist((s.track[0].lat, s.track[0].lon), (s.track[-1].lat, s.track[-1].lon)) * fr.scale < 4:
            ends = [(s.track[-1], (0, 0, 0), f"{label['start']}/{label['end']}")]
        for f, col, text in ends:
            px, py = fr.xy(f.lat, f.lon)
            pdf.set_fill_color(*col)
            pdf.rect(px - 1.1, py - 1.1, 2.2, 2.2, style="F")
            pdf.set_font("Helvetica", "B", 6)
            tw = pdf.get_string_width(text) + 1
            pdf.set_xy(px + 1.4 if px + 1.4 + tw < fr.x + fr.w else px - 1.4 - tw, py + 0.2)
            pdf.cell(tw, 3, text)
    # seal openings where the box was when they happened (the nearest fix in time)
    # authorised openings first, so an unauthorised one (larger, red) is drawn on top of them
    marks = sorted((x for x in s.seals if x.kind in ("seal_unauthorised", "case_opened", "seal_authorised")),
                   key=lambda x: x.kind == "seal_authorised", reverse=True)
    for n, r in enumerate(marks):
        near = min(s.track, key=lambda f: abs(f.t - r.t)) if s.track else None
        if near is None:
            continue
        px, py = fr.xy(near.lat, near.lon)
        ok = r.kind == "seal_authorised"
        pdf.set_fill_color(*(SEAL_OK if ok else SEAL_BAD))
        pdf.set_draw_color(255, 255, 255)
        pdf.set_line_width(0.2)
        size, off = (1.8, 2.2 * (n % 3)) if ok else (2.6, -3.0)
        pdf.polygon([(px + off, py - 1.8 * size), (px + off - size, py - 0.2), (px + off + size, py - 0.2)], style="DF")


def _inside(px: float, py: float, fr: Frame) -> bool:
    return fr.x <= px <= fr.x + fr.w and fr.y <= py <= fr.y + fr.h


def _scale_bar(pdf: FPDF, fr: Frame) -> None:
    target = fr.w / 4 / fr.scale  # metres in a quarter of the width
    step = 10 ** math.floor(math.log10(target))
    metres = max(m for m in (step, 2 * step, 5 * step) if m <= target)
    length = metres * fr.scale
    x0, y0 = fr.x + 4, fr.y + fr.h - 5
    pdf.set_draw_color(0, 0, 0)
    pdf.set_fill_color(0, 0, 0)
    pdf.set_line_width(0.4)
    pdf.line(x0, y0, x0 + length, y0)
    pdf.line(x0, y0 - 1, x0, y0 + 1)
    pdf.line(x0 + length, y0 - 1, x0 + length, y0 + 1)
    pdf.set_font("Helvetica", "", 6)
    pdf.set_xy(x0, y0 - 4)
    pdf.cell(length, 3, f"{metres / 1000:g} km" if metres >= 1000 else f"{metres:g} m", align="C")
    nx, ny = fr.x + fr.w - 6, fr.y + 4
    pdf.polygon([(nx, ny), (nx - 1.6, ny + 4.5), (nx + 1.6, ny + 4.5)], style="F")
    pdf.set_xy(nx - 3, ny + 4.6)
    pdf.cell(6, 3, "N", align="C")


def legend(pdf: FPDF, x: float, y: float, label: dict[str, str]) -> None:
    """One line under the maps: what the marks mean."""
    pdf.set_font("Helvetica", "", 6.5)
    pdf.set_draw_color(*TRACK)
    pdf.set_line_width(0.35)
    pdf.line(x, y + 1.5, x + 6, y + 1.5)
    pdf.set_xy(x + 7, y)
    pdf.cell(28, 3, label["track"])
    x += 32
    pdf.set_draw_color(240, 215, 180)
    pdf.set_line_width(1.5)
    pdf.line(x, y + 1.5, x + 6, y + 1.5)
    pdf.set_xy(x + 7, y)
    pdf.cell(28, 3, label["road"])
    x += 32
    for col, text in ((SEAL_BAD, label["seal_bad"]), (SEAL_OK, label["seal_ok"])):
        pdf.set_fill_color(*col)
        pdf.polygon([(x + 2, y), (x + 0.2, y + 3), (x + 3.8, y + 3)], style="F")
        pdf.set_xy(x + 5, y)
        pdf.cell(45, 3, text)
        x += 50
