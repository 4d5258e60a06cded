"""`segel report box|district|track`: custody reports (PDF) and track exports for oversight."""

from __future__ import annotations

from pathlib import Path

import click

from segel.commands._common import CONFIG_HELP, DB_HELP, subgroup


def _options(fn):  # type: ignore[no-untyped-def]
    fn = click.option("--calendar", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                      help="The election calendar (default: the one the gateway stored in its database).")(fn)
    fn = click.option("--db", help=DB_HELP)(fn)
    return click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), help=CONFIG_HELP)(fn)


def _lang(fn):  # type: ignore[no-untyped-def]
    return click.option("--lang", type=click.Choice(["id", "en"]), default="id", show_default=True,
                        help="Language: id = Bahasa Indonesia, en = English.")(fn)


def _custody(config_path: Path | None, db: str | None, calendar: Path | None):  # type: ignore[no-untyped-def]
    from segel.report.context import ContextError, open_custody

    try:
        return open_custody(config_path, db, calendar)
    except ContextError as e:
        raise click.ClickException(str(e)) from None


def register(group: click.Group) -> None:
    grp = subgroup(group, "report", "Custody reports (PDF) and track exports for oversight (docs/custody.md).")

    @grp.command("box", epilog="""\b
Examples:
  segel report box 64.08.17.2002-002-GUB --config segel.toml
  segel report box 64.08.17.2002-002-GUB --db rehearsal/segel.db --lang en -o box-en.pdf
\b
The report holds a map of the track over the plan's places and roads (drawn offline), the legs
against the plan's windows, seal events, handover receipts, alerts and how they were handled,
the tracker's health, and the ledger head with its signed checkpoint, the public key and a QR
code to verify it. Times are in the calendar's zone (WITA for Kutai Timur).""")
    @click.argument("box")
    @click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="PDF to write "
                  "(default: <box>.pdf).")
    @_lang
    @_options
    def box_cmd(box: str, output: Path | None, lang: str, config_path: Path | None, db: str | None,
                calendar: Path | None) -> None:
        """A box's custody report as a PDF (Bahasa Indonesia by default)."""
        from segel.report.pdf import render_box
        from segel.report.story import UnknownBox

        c = _custody(config_path, db, calendar)
        out = output or Path(f"{box}.pdf")
        try:
            s = render_box(c, box, out, lang)
        except UnknownBox as e:
            raise click.ClickException(str(e)) from None
        cp = s.checkpoint
        signed = "signed checkpoint" if cp and cp.get("signature") else "NO signed checkpoint"
        click.echo(f"{out}: box {box}, {len(s.track)} fixes, {len(s.seals)} seal events, {len(s.receipts)} receipts, "
                   f"{len(s.alerts)} alerts, ledger {s.entries} entries ({signed})")

    @grp.command("district", epilog="""\b
Examples:
  segel report district 64.08.17 --config segel.toml
  segel report district 64.08.17 --db rehearsal/segel.db -o batu-ampar.pdf
\b
Every box of the PPK: delivered to its TPS and returned to the warehouse on time or not, its
receipts, and every critical or high alert with how it was handled.""")
    @click.argument("district")
    @click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
                  help="PDF to write (default: district-<code>.pdf).")
    @_lang
    @_options
    def district_cmd(district: str, output: Path | None, lang: str, config_path: Path | None, db: str | None,
                     calendar: Path | None) -> None:
        """A district's (PPK's) report: every box, on time or not, incidents."""
        from segel.report.district import DistrictError, render_district

        c = _custody(config_path, db, calendar)
        out = output or Path(f"district-{district}.pdf")
        try:
            d = render_district(c, district, out, lang)
        except DistrictError as e:
            raise click.ClickException(str(e)) from None
        click.echo(f"{out}: district {district}, {len(d.boxes)} boxes, delivered on time "
                   f"{d.count('pps_to_tps', 'on_time')}, returned on time {d.count('ppk_to_warehouse', 'on_time')}")

    @grp.command("track", epilog="""\b
Examples:
  segel report track 64.08.14.2005-001-GUB -o detour.gpx --config segel.toml
  segel report track 64.08.14.2005-001-GUB --format geojson --db rehearsal/segel.db > track.geojson
\b
Every accepted fix in device-time order (UTC; CSV and GeoJSON also local time), and in
GeoJSON, GPX and KML the seal events where the box was. The format follows the file's
extension unless --format says otherwise.""")
    @click.argument("box")
    @click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="File to write (default: stdout).")
    @click.option("--format", "fmt", type=click.Choice(["csv", "geojson", "gpx", "kml"]),
                  help="csv, geojson, gpx or kml (default: from the output's extension, else csv).")
    @_options
    def track_cmd(box: str, output: Path | None, fmt: str | None, config_path: Path | None, db: str | None,
                  calendar: Path | None) -> None:
        """Export a box's track as CSV, GeoJSON, GPX or KML."""
        from segel.report.exports import FORMATS, export
        from segel.report.story import UnknownBox, box_story

        if fmt is None:
            ext = output.suffix.lower().lstrip(".") if output else "csv"
            fmt = {"json": "geojson"}.get(ext, ext)
            if fmt not in FORMATS:
                raise click.UsageError(f"cannot tell the format from {output}: give --format ({', '.join(FORMATS)})")
        c = _custody(config_path, db, calendar)
        try:
            s = box_story(c, box)
        except UnknownBox as e:
            raise click.ClickException(str(e)) from None
        text = export(s, fmt, c.tz)
        if output is None:
            click.echo(text, nl=False)
        else:
            output.write_text(text, encoding="utf-8")
            click.echo(f"{output}: {len(s.track)} fixes of box {box} ({fmt})", err=True)
