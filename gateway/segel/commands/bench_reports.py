"""`segel bench reports`: custody reports for every box of a rehearsal, per box and in total, and a district report."""

from __future__ import annotations

import json
from pathlib import Path

import click

from segel.commands._common import DB_HELP


def register(group: click.Group) -> None:
    from segel.commands._common import subgroup

    grp = subgroup(group, "bench", "Benchmarks that print figures (never pass/fail).")

    @grp.command("reports", epilog="""\b
Examples:
  segel demo --keep rehearsal                      the full Kutai Timur rehearsal, kept
  segel bench reports --db rehearsal/segel.db      a report for each of its 1,402 boxes
  segel bench reports --db rehearsal/segel.db --boxes 100 --district 64.08.04 --json
\b
For every box: its story read from the database, then the whole report (story, map, tables,
PDF written). Prints mean, median, 95th percentile and worst per box, the total, and the
district report's time; the baseline, measured in the same run, is what fpdf2 takes for a
one-page PDF with one line of text.""")
    @click.option("--db", required=True, help=DB_HELP)
    @click.option("--boxes", type=click.IntRange(min=1), help="Only the first N boxes (default: every box).")
    @click.option("--district", default="largest", show_default=True,
                  help="PPK for the district report (largest = the one with most boxes; none = skip).")
    @click.option("--lang", type=click.Choice(["id", "en"]), default="id", show_default=True,
                  help="Language of the reports: id = Bahasa Indonesia, en = English.")
    @click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Keep the PDFs in this folder.")
    @click.option("--json", "as_json", is_flag=True, help="The figures as one JSON object.")
    def reports_cmd(db: str, boxes: int | None, district: str, lang: str, out: Path | None, as_json: bool) -> None:
        """Time a custody report for every box of a rehearsal database, and a district report."""
        from segel.bench import reports as bench
        from segel.report.context import ContextError, open_custody

        try:
            c = open_custody(None, db)
        except ContextError as e:
            raise click.ClickException(str(e)) from None
        names = sorted(c.boxes)[:boxes] if boxes else sorted(c.boxes)
        if not names:
            raise click.ClickException(f"{db} has no boxes (run `segel demo --keep DIR` first)")
        if district == "largest":
            counts: dict[str, int] = {}
            for b in c.boxes:
                d = c.district_of(b)
                if d:
                    counts[d] = counts.get(d, 0) + 1
            district = max(counts, key=lambda k: counts[k]) if counts else "none"
        r = bench.run(c, names, None if district == "none" else district, lang, out,
                      progress=None if as_json else lambda i, n: click.echo(f"  {i}/{n} box reports", err=True))
        if as_json:
            click.echo(json.dumps(r.as_dict()))
            return
        b, s = r.box_report, r.story
        click.echo(f"custody reports for {r.boxes} boxes ({lang}), {r.pages} pages")
        click.echo(f"  baseline (one-page PDF, one line)   {r.baseline_empty_pdf_ms:8.1f} ms")
        click.echo(f"  story only (database reads)         mean {s.mean_ms:6.1f} ms   p50 {s.p50_ms:6.1f}   "
                   f"p95 {s.p95_ms:6.1f}   max {s.max_ms:6.1f}")
        click.echo(f"  box report (story + PDF)            mean {b.mean_ms:6.1f} ms   p50 {b.p50_ms:6.1f}   "
                   f"p95 {b.p95_ms:6.1f}   max {b.max_ms:6.1f}   total {b.total_s:.1f} s")
        click.echo("  slowest: " + ", ".join(f"{box} {t * 1000:.0f} ms" for box, t in r.slowest))
        if r.district:
            click.echo(f"  district report {r.district} ({r.district_boxes} boxes)  {r.district_s:.2f} s")
