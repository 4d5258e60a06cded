"""`segel bench reports`: a custody report for every box of a rehearsal, per box and in total, and a
district report, against a baseline measured in the same run. Figures are printed, never asserted."""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from fpdf import FPDF

from segel.report.context import Custody
from segel.report.district import render_district
from segel.report.pdf import build_box
from segel.report.story import box_story
from segel.report.texts import texts


@dataclass
class Timing:
    n: int = 0
    total_s: float = 0.0
    mean_ms: float = 0.0
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    max_ms: float = 0.0

    @classmethod
    def of(cls, seconds: list[float]) -> Timing:
        if not seconds:
            return cls()
        ms = sorted(s * 1000 for s in seconds)
        return cls(len(ms), sum(seconds), statistics.fmean(ms), ms[len(ms) // 2], ms[min(len(ms) - 1, int(len(ms) * 0.95))],
                   ms[-1])


@dataclass
class ReportBench:
    boxes: int
    baseline_empty_pdf_ms: float  # fpdf2's fixed cost: a one-page PDF with one line of text
    story: Timing  # reading one box's history from the database
    box_report: Timing  # story + PDF written to disk
    pages: int = 0
    district: str = ""
    district_boxes: int = 0
    district_s: float = 0.0
    slowest: list[tuple[str, float]] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def _baseline(out: Path, n: int = 20) -> float:
    t = []
    for _ in range(n):
        t0 = time.perf_counter()
        pdf = FPDF()
        pdf.add_page()
        pdf.set_font("Helvetica", "", 10)
        pdf.cell(0, 5, "Segel")
        pdf.output(str(out / "baseline.pdf"))
        t.append(time.perf_counter() - t0)
    return statistics.median(t) * 1000


def run(c: Custody, boxes: list[str], district: str | None, lang: str = "id", out_dir: Path | None = None,
        progress: Callable[[int, int], None] | None = None) -> ReportBench:
    tmp = tempfile.TemporaryDirectory(prefix="segel-bench-reports-") if out_dir is None else None
    out = Path(tmp.name) if tmp else out_dir
    assert out is not None
    out.mkdir(parents=True, exist_ok=True)
    try:
        base = _baseline(out)
        tx = texts(lang, c.tz, c.tz_name)
        story_s, report_s, pages = [], [], 0
        per_box: list[tuple[str, float]] = []
        for i, box in enumerate(boxes):
            t0 = time.perf_counter()
            box_story(c, box)
            story_s.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            pdf = build_box(c, box_story(c, box), tx)
            pdf.output(str(out / f"{box}.pdf"))
            dt_ = time.perf_counter() - t0
            report_s.append(dt_)
            per_box.append((box, dt_))
            pages += pdf.pages_count
            if progress and (i + 1) % 50 == 0:
                progress(i + 1, len(boxes))
        r = ReportBench(len(boxes), base, Timing.of(story_s), Timing.of(report_s), pages,
                        slowest=sorted(per_box, key=lambda x: -x[1])[:3])
        if district:
            t0 = time.perf_counter()
            d = render_district(c, district, out / f"district-{district}.pdf", lang)
            r.district, r.district_boxes, r.district_s = district, len(d.boxes), time.perf_counter() - t0
        return r
    finally:
        if tmp:
            tmp.cleanup()
