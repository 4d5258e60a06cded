"""Import places from CSV or GeoJSON, all or nothing, and keep them in the gateway's SQLite.

Formats: docs/places.md. Every row or feature is parsed and checked, then the whole set (together
with the places already stored, for parents) is checked for the hierarchy; only when nothing is
wrong is anything written, in one transaction. Errors name the file, the line or feature, the
field and the reason.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import shapely  # type: ignore[import-untyped]

from segel.places.model import (
    CORRIDOR,
    DEFAULT_DWELL_S,
    DEFAULT_MARGIN_M,
    Area,
    Circle,
    Corridor,
    Place,
    PlaceError,
    Shape,
    check_hierarchy,
    hierarchy_errors,
    validate,
)
from segel.places.checks import Region, plausibility
from segel.registry import transaction

log = logging.getLogger("segel.places")

SCHEMA = """
CREATE TABLE IF NOT EXISTS places (
    code      TEXT PRIMARY KEY,
    kind      TEXT NOT NULL,
    parent    TEXT,
    body      TEXT NOT NULL  -- Place.to_json()
);
CREATE INDEX IF NOT EXISTS places_parent ON places(parent);
"""

CSV_COLUMNS = ("code", "kind", "name", "parent", "lat", "lon", "radius_m", "wkt", "width_m", "from", "to",
               "margin_m", "dwell_s")


class ImportErrors(ValueError):
    """Every problem found in a file; nothing was imported."""

    def __init__(self, errors: list[PlaceError], failed: frozenset[str] = frozenset()) -> None:
        self.errors = errors
        self.failed = failed  # codes whose own line or feature has an error
        more = f" (and {len(errors) - 20} more)" if len(errors) > 20 else ""
        super().__init__("\n".join(str(e) for e in errors[:20]) + more)


def _num(where: str, fld: str, text: str | None, default: float | None = None, decimal_comma: bool = False) -> float:
    if text is None or str(text).strip() == "":
        if default is None:
            raise PlaceError(where, fld, "missing")
        return default
    raw = str(text).strip()
    if decimal_comma and raw.count(",") == 1 and "." not in raw:
        raw = raw.replace(",", ".")  # a ';'-separated CSV from a locale that writes 0,5
    try:
        v = float(raw)
    except (TypeError, ValueError):
        hint = ""
        if isinstance(text, str) and "," in text:
            hint = " (a decimal comma? write 0.5, or save the CSV with ';' separators)"
        raise PlaceError(where, fld, f"{text!r} is not a number{hint}") from None
    if not math.isfinite(v):
        raise PlaceError(where, fld, f"{text!r} is not a finite number")
    return v


def _coords(geom: shapely.Geometry) -> tuple[tuple[float, float], ...]:
    return tuple((float(x), float(y)) for x, y in shapely.get_coordinates(geom).tolist())


def _shape_from_geom(where: str, kind: str, geom: shapely.Geometry, get: dict, decimal_comma: bool = False) -> Shape:
    gt = geom.geom_type
    if gt == "Point":
        if kind == CORRIDOR:
            raise PlaceError(where, "geometry", "a corridor needs a line, not a point")
        return Circle(float(geom.y), float(geom.x), _num(where, "radius_m", get.get("radius_m"), decimal_comma=decimal_comma))
    if gt == "Polygon":
        if len(geom.interiors):
            raise PlaceError(where, "geometry", "polygons with holes are not supported")
        if not geom.is_valid:
            raise PlaceError(where, "geometry", f"invalid polygon ({shapely.is_valid_reason(geom)}): "
                                                "a ring must not cross itself")
        return Area(_coords(geom.exterior))
    if gt == "LineString":
        return Corridor(_coords(geom), _num(where, "width_m", get.get("width_m"), decimal_comma=decimal_comma),
                        (get.get("from") or None), (get.get("to") or None))
    raise PlaceError(where, "geometry", f"{gt} is not supported (Point with radius_m, Polygon, LineString)")


def _place(where: str, props: dict, shape: Shape, decimal_comma: bool = False) -> Place:
    code = str(props.get("code") or "").strip()
    kind = str(props.get("kind") or "").strip().lower()
    if not code:
        raise PlaceError(where, "code", "missing")
    if not kind:
        raise PlaceError(where, "kind", "missing")
    p = Place(
        code=code, kind=kind, name=str(props.get("name") or code).strip(), shape=shape,
        parent=(str(props["parent"]).strip() or None) if props.get("parent") else None,
        margin_m=_num(where, "margin_m", props.get("margin_m"), DEFAULT_MARGIN_M, decimal_comma),
        dwell_s=_num(where, "dwell_s", props.get("dwell_s"), DEFAULT_DWELL_S, decimal_comma),
    )
    validate(p, where)
    return p


def sniff_delimiter(text: str) -> str:
    """',' or ';': a spreadsheet saved in the Indonesian (or any decimal-comma) locale writes
    ';' between columns and 0,5 for numbers. Decided by the header line alone."""
    header = text.split("\n", 1)[0]
    return ";" if header.count(";") > header.count(",") else ","


@dataclass
class Parsed:
    """What one file gave: its good places (and where each is), every error, and the codes of
    the lines that failed (so places naming them as parent are not blamed a second time)."""

    places: list[Place] = field(default_factory=list)
    where_of: dict[str, str] = field(default_factory=dict)
    errors: list[PlaceError] = field(default_factory=list)
    failed: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)

    def result(self) -> tuple[list[Place], dict[str, str]]:
        if self.errors:
            raise ImportErrors(self.errors, frozenset(self.failed))
        return self.places, self.where_of


def parse_csv(text: str, name: str = "<csv>") -> tuple[list[Place], dict[str, str]]:
    """Places from CSV text (',' or ';' separated); raises ImportErrors listing every bad line."""
    return read_csv(text, name).result()


def read_csv(text: str, name: str = "<csv>") -> Parsed:
    """Every place and every error of a CSV text (',' or ';' separated, decimal commas with ';')."""
    res = Parsed()
    delim = sniff_delimiter(text)
    decimal_comma = delim == ";"
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delim)
    if decimal_comma:
        res.notes.append(f"{name}: read as ';'-separated with decimal commas (a spreadsheet's export in a "
                         "decimal-comma locale)")
    try:
        cols = [c.strip() for c in (reader.fieldnames or [])]
    except csv.Error as e:
        res.errors.append(PlaceError(f"{name}:1", None, f"not readable as CSV ({e})"))
        return res
    errors = res.errors
    unknown = [c for c in cols if c not in CSV_COLUMNS]
    if not cols or "code" not in cols or "kind" not in cols:
        errors.append(PlaceError(f"{name}:1", None, f"the header must name at least code and kind (columns: {', '.join(CSV_COLUMNS)})"))
        return res
    if unknown:
        errors.append(PlaceError(f"{name}:1", None, f"unknown column(s) {', '.join(unknown)}; known: {', '.join(CSV_COLUMNS)}"))
        return res
    out, where_of = res.places, res.where_of
    rows = iter(reader)
    while True:
        try:
            row = next(rows)
        except StopIteration:
            break
        except csv.Error as e:  # a stray quote or NUL: that line is reported, the others still read
            errors.append(PlaceError(f"{name}:{reader.line_num}", None, f"not readable as CSV ({e})"))
            continue
        where = f"{name}:{reader.line_num}"
        row = {(k or "").strip(): (v or "").strip() if isinstance(v, str) else "" for k, v in row.items() if k is not None}
        try:
            kind = row.get("kind", "").lower()
            if row.get("wkt"):
                try:
                    geom = shapely.from_wkt(row["wkt"])
                except (shapely.errors.GEOSException, ValueError) as e:
                    raise PlaceError(where, "wkt", f"not valid WKT ({e})") from None
                shape = _shape_from_geom(where, kind, geom, row, decimal_comma)
            elif kind == CORRIDOR:
                raise PlaceError(where, "wkt", "a corridor needs a LINESTRING(lon lat, ...) in wkt")
            else:
                shape = Circle(_num(where, "lat", row.get("lat"), decimal_comma=decimal_comma),
                               _num(where, "lon", row.get("lon"), decimal_comma=decimal_comma),
                               _num(where, "radius_m", row.get("radius_m"), decimal_comma=decimal_comma))
            _add(out, where_of, _place(where, row, shape, decimal_comma), where)
        except PlaceError as e:
            errors.append(e)
            if row.get("code"):
                res.failed.add(row["code"])
    return res


def _add(out: list[Place], where_of: dict[str, str], p: Place, where: str) -> None:
    """Collect a parsed place, refusing a code the same file already defined."""
    if p.code in where_of:
        raise PlaceError(where, "code", f"{p.code!r} is defined twice (first at {where_of[p.code]})")
    where_of[p.code] = where
    out.append(p)


def parse_geojson(text: str, name: str = "<geojson>") -> tuple[list[Place], dict[str, str]]:
    """Places from a GeoJSON FeatureCollection; raises ImportErrors listing every bad feature."""
    return read_geojson(text, name).result()


def read_geojson(text: str, name: str = "<geojson>") -> Parsed:
    """Every place and every error of a GeoJSON FeatureCollection."""
    res = Parsed()
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        res.errors.append(PlaceError(f"{name}:{e.lineno}", None, f"not JSON: {e.msg}"))
        return res
    except RecursionError:
        res.errors.append(PlaceError(name, None, "not usable JSON: nested too deeply"))
        return res
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection" or not isinstance(doc.get("features"), list):
        res.errors.append(PlaceError(name, None, "not a GeoJSON FeatureCollection"))
        return res
    for i, feat in enumerate(doc["features"]):
        props = feat.get("properties") if isinstance(feat, dict) else None
        props = props if isinstance(props, dict) else {}
        code = props.get("code")
        where = f"{name}: feature {i}" + (f" ({code})" if isinstance(code, (str, int)) and code != "" else "")
        try:
            if not isinstance(feat, dict) or feat.get("type") != "Feature" or not isinstance(feat.get("geometry"), dict):
                raise PlaceError(where, "geometry", "not a Feature with a geometry")
            try:
                geom = shapely.from_geojson(json.dumps(feat["geometry"]))
            except (shapely.errors.GEOSException, ValueError, TypeError, RecursionError) as e:
                raise PlaceError(where, "geometry", f"not valid GeoJSON geometry ({str(e)[:200]})") from None
            if geom is None or geom.is_empty:
                raise PlaceError(where, "geometry", "empty geometry")
            shape = _shape_from_geom(where, str(props.get("kind", "")).lower(), geom, props)
            _add(res.places, res.where_of, _place(where, props, shape), where)
        except PlaceError as e:
            res.errors.append(e)
            if isinstance(code, str) and code.strip():
                res.failed.add(code.strip())
    return res


def read_file(path: str | Path) -> Parsed:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        return Parsed(errors=[PlaceError(p.name, None, f"not UTF-8 text ({e.reason} at byte {e.start}): save it "
                                                       "as CSV UTF-8")])
    if p.suffix.lower() in (".geojson", ".json"):
        return read_geojson(text, p.name)
    if p.suffix.lower() == ".csv":
        return read_csv(text, p.name)
    return Parsed(errors=[PlaceError(p.name, None, "unknown format: use .csv, .geojson or .json")])


def parse_file(path: str | Path) -> tuple[list[Place], dict[str, str]]:
    return read_file(path).result()


def ensure_schema(conn: sqlite3.Connection) -> None:
    # statement by statement: executescript() would commit the caller's open transaction
    for stmt in SCHEMA.split(";"):
        if stmt.strip():
            conn.execute(stmt)


def load(conn: sqlite3.Connection) -> list[Place]:
    ensure_schema(conn)
    return [Place.from_json(json.loads(b)) for (b,) in conn.execute("SELECT body FROM places ORDER BY code")]


def store(conn: sqlite3.Connection, places: Iterable[Place], where_of: dict[str, str] | None = None) -> int:
    """Checks the hierarchy against what is stored, then writes all in one transaction (upsert)."""
    ensure_schema(conn)
    new = list(places)
    merged = {p.code: p for p in load(conn)}
    merged.update({p.code: p for p in new})
    try:
        check_hierarchy(merged, where_of or {})
    except PlaceError as e:
        raise ImportErrors([e]) from None
    with transaction(conn):
        conn.executemany(
            "INSERT INTO places(code, kind, parent, body) VALUES (?,?,?,?) ON CONFLICT(code) DO UPDATE SET "
            "kind=excluded.kind, parent=excluded.parent, body=excluded.body",
            [(p.code, p.kind, p.parent, json.dumps(p.to_json(), separators=(",", ":"))) for p in new],
        )
    return len(new)


def import_file(conn: sqlite3.Connection, path: str | Path) -> int:
    """Parse, check and store one file; all or nothing. Returns the number of places written."""
    return import_files(conn, [path])


def import_files(conn: sqlite3.Connection, paths: Iterable[str | Path], region: Region | None = None,
                 max_parent_km: dict[str, float] | None = None, strict: bool = False) -> int:
    """Several files as one import (a corridors file may name places of a places file).
    Plausibility warnings are logged; with strict they refuse the import."""
    report = import_report(conn, paths, region, max_parent_km, strict)
    for w in report.warnings:
        log.warning("places: %s", w)
    return report.count


@dataclass
class ImportReport:
    count: int
    warnings: list[PlaceError] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def import_report(conn: sqlite3.Connection, paths: Iterable[str | Path], region: Region | None = None,
                  max_parent_km: dict[str, float] | None = None, strict: bool = False) -> ImportReport:
    """Check every file in one pass (each line's own errors, then the hierarchy of every good
    line against the others and the stored places), then plausibility (region, distance to the
    parent) as warnings; write all in one transaction only when nothing is wrong. Raises
    ImportErrors with every problem; with strict, the warnings are among them."""
    ensure_schema(conn)
    allp: list[Place] = []
    where_of: dict[str, str] = {}
    errors: list[PlaceError] = []
    failed: set[str] = set()
    notes: list[str] = []
    for path in paths:
        parsed = read_file(path)
        errors += parsed.errors
        failed |= parsed.failed
        notes += parsed.notes
        for p in parsed.places:
            if p.code in where_of:
                errors.append(PlaceError(parsed.where_of[p.code], "code",
                                         f"{p.code!r} is defined twice (first at {where_of[p.code]})"))
                continue
            allp.append(p)
            where_of[p.code] = parsed.where_of[p.code]
    merged = {p.code: p for p in load(conn)}
    merged.update({p.code: p for p in allp})
    errors += hierarchy_errors({c: merged[c] for c in merged}, where_of, frozenset(failed))
    warnings = plausibility(allp, where_of, merged, region, max_parent_km)
    if strict and warnings:
        errors += [PlaceError(w.where, w.field, f"{w.reason} (refused: --strict)") for w in warnings]
    if errors:
        raise ImportErrors(errors, frozenset(failed))
    return ImportReport(store(conn, allp, where_of), warnings, notes)


def names(conn: sqlite3.Connection, codes: Iterable[str]) -> dict[str, str]:
    """{code: name} of the given place codes that are stored."""
    ensure_schema(conn)
    want = sorted({c for c in codes if c})
    out: dict[str, str] = {}
    for i in range(0, len(want), 400):
        chunk = want[i:i + 400]
        out.update(conn.execute(f"SELECT code, json_extract(body, '$.name') FROM places WHERE code IN "
                                f"({','.join('?' * len(chunk))})", chunk).fetchall())
    return out
