"""`segel places ...`: import places and boxes, look positions up, show a box's custody plan."""

from __future__ import annotations

import json
from pathlib import Path

import click

from segel.commands._common import db_options, open_db


def register(group: click.Group) -> None:
    from segel.commands._common import subgroup

    grp = subgroup(group, "places", "Places, corridors and boxes: import, look up, plans (docs/places.md).")

    @grp.command("import", epilog="""\b
Examples:
  segel places import places.csv
  segel places import places.csv corridors.geojson --db segel.db
  segel places import places.csv --strict             refuse places outside the region or far from their parent
  segel places import papua.csv --region 130,-9.5,141.1,0 --max-parent-km 120
\b
CSV columns: code, kind, name, parent, lat, lon, radius_m, wkt, width_m, from, to, margin_m,
dwell_s; separated by ',' or, as spreadsheets save them in the Indonesian locale, by ';' with
decimal commas (detected from the header). GeoJSON: a FeatureCollection whose properties hold
the same fields (Point + radius_m, Polygon, LineString + width_m). Files given together are one
import; every bad line or feature is listed in one pass (file:line or feature index, field,
reason) and then nothing is imported. A place outside the region (custody.region, default
Indonesia) or farther from its parent than a TPS (50 km), PPS (150 km) or PPK (500 km) usually
is gets a warning; --strict refuses the import instead.""")
    @click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.option("--strict", is_flag=True, help="Refuse the import when any place gets a warning.")
    @click.option("--region", metavar="W,S,E,N", help="Bounding box places must be in, degrees (custody.region).")
    @click.option("--max-parent-km", type=click.FloatRange(min=0, min_open=True), metavar="KM",
                  help="Warn when a TPS, PPS or PPK is farther than this from its parent (default 50/150/500).")
    @db_options
    def import_cmd(files: tuple[Path, ...], strict: bool, region: str | None, max_parent_km: float | None,
                   config_path: Path | None, db: str | None) -> None:
        """Import places (CSV, GeoJSON), all files or nothing."""
        from segel import config as cfgmod
        from segel.places.checks import MAX_PARENT_KM, Region
        from segel.places.io import ImportErrors, import_report

        try:
            text = region or cfgmod.load(config_path, overrides={"gateway.db": db}).custody.region
            box = Region.parse(text)
        except (ValueError, cfgmod.ConfigError) as e:
            raise click.BadParameter(str(e), param_hint="--region") from None
        limits = {k: max_parent_km for k in MAX_PARENT_KM} if max_parent_km else None
        conn = open_db(config_path, db)
        try:
            rep = import_report(conn, files, box, limits, strict)
        except ImportErrors as e:
            for err in e.errors:
                click.echo(str(err), err=True)
            raise click.ClickException(f"{len(e.errors)} error(s); nothing was imported") from None
        for note in rep.notes:
            click.echo(note, err=True)
        for w in rep.warnings:
            click.echo(f"warning: {w}", err=True)
        click.echo(f"{rep.count} places imported" + (f", {len(rep.warnings)} warning(s) (--strict refuses them)"
                                                      if rep.warnings else ""))

    @grp.command("boxes", epilog="""\b
Examples:
  segel places boxes boxes.csv                     pair the trackers named in the file
  segel places boxes boxes.csv --register          ... registering trackers not yet known
  segel places boxes boxes.csv --assign-devices    give every box without a device a new one
\b
Columns: box, tps, device (optional, six hex digits), contest (optional). Pairing goes through
the registry (history kept); a bad file changes nothing. Import the places first.""")
    @click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.option("--register", is_flag=True, help="Register devices the registry does not know yet.")
    @click.option("--assign-devices", "assign", is_flag=True, help="Register and pair a new device for boxes without one.")
    @click.option("--force", is_flag=True, help="Move a tracker that is already on another box (recorded).")
    @db_options
    def boxes_cmd(file: Path, register: bool, assign: bool, force: bool, config_path: Path | None, db: str | None) -> None:
        """Import boxes and their TPS; pair their trackers through the registry."""
        from segel.custody.boxes import BoxesError, import_boxes
        from segel.places.io import load

        conn = open_db(config_path, db)
        places = {p.code: p for p in load(conn)}
        if not places:
            raise click.ClickException("no places imported yet: run `segel places import` first")
        try:
            n = import_boxes(conn, file, places, register=register, assign=assign, force=force)
        except BoxesError as e:
            for err in e.errors:
                click.echo(err, err=True)
            raise click.ClickException(f"{len(e.errors)} error(s); nothing was imported") from None
        click.echo(f"{n} boxes imported")

    @grp.command("list", epilog="""\b
Examples:
  segel places list --kind ppk
  segel places list --kind tps --parent 64.08.04.2001 --json""")
    @click.option("--kind", help="Only this kind (warehouse, ppk, pps, tps, zone, corridor).")
    @click.option("--parent", help="Only places with this parent.")
    @click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
    @db_options
    def list_cmd(kind: str | None, parent: str | None, as_json: bool, config_path: Path | None, db: str | None) -> None:
        """List the imported places."""
        from segel.places.io import load

        for p in load(open_db(config_path, db, must_exist=True)):
            if (kind and p.kind != kind) or (parent and p.parent != parent):
                continue
            click.echo(json.dumps(p.to_json()) if as_json else f"{p.code:<22} {p.kind:<9} {p.parent or '-':<18} {p.name}")

    @grp.command("lookup", epilog="""\b
Examples:
  segel places lookup 0.505 117.546
\b
Prints the places whose shape holds the point (core) and those whose hysteresis halo
(shape + margin_m) holds it.""")
    @click.argument("lat", type=float)
    @click.argument("lon", type=float)
    @db_options
    def lookup_cmd(lat: float, lon: float, config_path: Path | None, db: str | None) -> None:
        """Which places hold a position."""
        from segel.places import PlaceIndex
        from segel.places.io import load

        idx = PlaceIndex(load(open_db(config_path, db, must_exist=True)))
        lk = idx.lookup(lat, lon)
        click.echo(f"inside: {', '.join(sorted(lk.core)) or '-'}")
        click.echo(f"in halo only: {', '.join(sorted(lk.halo_only())) or '-'}")

    @grp.command("plan", epilog="""\b
Examples:
  segel places plan 64.08.04.2001-001-GUB --calendar calendar.toml
  segel places plan 64.08.04.2001-001-GUB --calendar calendar.toml --json
\b
The plan is generated from the box's TPS, the place hierarchy and the calendar (staged per PPK,
overridden per box); times are shown in the calendar's time zone.""")
    @click.argument("box")
    @click.option("--calendar", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
                  help="The election calendar (TOML, docs/custody.md).")
    @click.option("--json", "as_json", is_flag=True, help="The plan as one JSON object.")
    @db_options
    def plan_cmd(box: str, calendar: Path, as_json: bool, config_path: Path | None, db: str | None) -> None:
        """Show a box's custody plan: legs, windows, corridors, seal permits."""
        from segel.custody.boxes import load_boxes
        from segel.custody.plan import (
            CalendarError,
            PlanError,
            load_calendar,
            make_plan,
        )
        from segel.places.io import load

        conn = open_db(config_path, db, must_exist=True)
        boxes = load_boxes(conn)
        if box not in boxes:
            raise click.ClickException(f"box {box!r} is not known: import it with `segel places boxes`")
        try:
            cal = load_calendar(calendar)
            plan = make_plan(box, boxes[box][0], {p.code: p for p in load(conn)}, cal)
        except (CalendarError, PlanError) as e:
            raise click.ClickException(str(e)) from None

        view = plan.describe(cal.tz)
        if as_json:
            click.echo(json.dumps(view))
            return
        click.echo(f"box {plan.box} -> TPS {plan.tps} (district {plan.district}); times {cal.tz.tzname(None)}")
        for lg in view["legs"]:
            click.echo(f"  {lg['leg']:<17} {lg['from']:>18} -> {lg['to']:<18} {lg['depart']} .. "
                       f"{lg['arrive_by']}  {', '.join(lg['corridors']) or '(no corridor)'}")
        for sp in view["seal"]:
            click.echo(f"  seal may open at {sp['place']} {sp['open']} .. {sp['close']} ({sp['why']})")
