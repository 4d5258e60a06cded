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
import math
import sqlite3
from collections.abc import Iterable
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
    validate,
)
from segel.registry import transaction

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

    def __init__(self, errors: list[PlaceError]) -> None:
        self.errors = errors
        more = f" (and {len(errors) - 20} more)" if len(errors) > 20 else ""
        super().__init__("\n".join(str(e) for e in errors[:20]) + more)


def _num(where: str, fld: str, text: str | None, default: float | None = None) -> float:
    if text is None or str(text).strip() == "":
        if default is None:
            raise PlaceError(where, fld, "missing")
        return default
    try:
        v = float(text)
    except (TypeError, ValueError):
        raise PlaceError(where, fld, f"{text!r} is not a number") from None
    if not math.isfinite(v):
        raise PlaceError(where, fld, f"{text!r} is not a finite number")
    return v


def _coords(geom: shapely.Geometry) -> tuple[tuple[float, float], ...]:
    return tuple((float(x), float(y)) for x, y in shapely.get_coordinates(geom).tolist())


def _shape_from_geom(where: str, kind: str, geom: shapely.Geometry, get: dict) -> Shape:
    gt = geom.geom_type
    if gt == "Point":
        if kind == CORRIDOR:
            raise PlaceError(where, "geometry", "a corridor needs a line, not a point")
        return Circle(float(geom.y), float(geom.x), _num(where, "radius_m", get.get("radius_m")))
    if gt == "Polygon":
        if len(geom.interiors):
            raise PlaceError(where, "geometry", "polygons with holes are not supported")
        if not geom.is_valid:
            raise PlaceError(where, "geometry", f"invalid polygon ({shapely.is_valid_reason(geom)}): "
                                                "a ring must not cross itself")
        return Area(_coords(geom.exterior))
    if gt == "LineString":
        return Corridor(_coords(geom), _num(where, "width_m", get.get("width_m")),
                        (get.get("from") or None), (get.get("to") or None))
    raise PlaceError(where, "geometry", f"{gt} is not supported (Point with radius_m, Polygon, LineString)")


def _place(where: str, props: dict, shape: Shape) -> Place:
    code = str(props.get("code") or "").strip()
    kind = str(props.get("kind") or "").strip().lower()
    if not code:
        raise PlaceError(where, "code", "missing")
    if not kind:
        raise PlaceError(where, "kind", "missing")
    p = Place(
        code=code, kind=kind, name=str(props.get("name") or code).strip(), shape=shape,
        parent=(str(props["parent"]).strip() or None) if props.get("parent") else None,
        margin_m=_num(where, "margin_m", props.get("margin_m"), DEFAULT_MARGIN_M),
        dwell_s=_num(where, "dwell_s", props.get("dwell_s"), DEFAULT_DWELL_S),
    )
    validate(p, where)
    return p


def parse_csv(text: str, name: str = "<csv>") -> tuple[list[Place], dict[str, str]]:
    """Places from CSV text; raises ImportErrors listing every bad line."""
    reader = csv.DictReader(io.StringIO(text))
    cols = [c.strip() for c in (reader.fieldnames or [])]
    errors: list[PlaceError] = []
    unknown = [c for c in cols if c not in CSV_COLUMNS]
    if not cols or "code" not in cols or "kind" not in cols:
        raise ImportErrors([PlaceError(f"{name}:1", None, f"the header must name at least code and kind (columns: {', '.join(CSV_COLUMNS)})")])
    if unknown:
        raise ImportErrors([PlaceError(f"{name}:1", None, f"unknown column(s) {', '.join(unknown)}; known: {', '.join(CSV_COLUMNS)}")])
    out: list[Place] = []
    where_of: dict[str, str] = {}
    for row in reader:
        where = f"{name}:{reader.line_num}"
        row = {(k or "").strip(): (v or "").strip() for k, v in row.items() if k is not None}
        try:
            kind = row.get("kind", "").lower()
            if row.get("wkt"):
                try:
                    geom = shapely.from_wkt(row["wkt"])
                except shapely.errors.GEOSException as e:
                    raise PlaceError(where, "wkt", f"not valid WKT ({e})") from None
                shape = _shape_from_geom(where, kind, geom, row)
            elif kind == CORRIDOR:
                raise PlaceError(where, "wkt", "a corridor needs a LINESTRING(lon lat, ...) in wkt")
            else:
                shape = Circle(_num(where, "lat", row.get("lat")), _num(where, "lon", row.get("lon")),
                               _num(where, "radius_m", row.get("radius_m")))
            _add(out, where_of, _place(where, row, shape), where)
        except PlaceError as e:
            errors.append(e)
    if errors:
        raise ImportErrors(errors)
    return out, where_of


def _add(out: list[Place], where_of: dict[str, str], p: Place, where: str) -> None:
    """Collect a parsed place, refusing a code the same file already defined."""
    if p.code in where_of:
        raise PlaceError(where, "code", f"{p.code!r} is defined twice (first at {where_of[p.code]})")
    where_of[p.code] = where
    out.append(p)


def parse_geojson(text: str, name: str = "<geojson>") -> tuple[list[Place], dict[str, str]]:
    """Places from a GeoJSON FeatureCollection; raises ImportErrors listing every bad feature."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise ImportErrors([PlaceError(f"{name}:{e.lineno}", None, f"not JSON: {e.msg}")]) from None
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection" or not isinstance(doc.get("features"), list):
        raise ImportErrors([PlaceError(name, None, "not a GeoJSON FeatureCollection")])
    errors: list[PlaceError] = []
    out: list[Place] = []
    where_of: dict[str, str] = {}
    for i, feat in enumerate(doc["features"]):
        props = (feat or {}).get("properties") or {}
        where = f"{name}: feature {i}" + (f" ({props['code']})" if props.get("code") else "")
        try:
            if not isinstance(feat, dict) or feat.get("type") != "Feature" or not feat.get("geometry"):
                raise PlaceError(where, "geometry", "not a Feature with a geometry")
            try:
                geom = shapely.from_geojson(json.dumps(feat["geometry"]))
            except (shapely.errors.GEOSException, ValueError) as e:
                raise PlaceError(where, "geometry", f"not valid GeoJSON geometry ({e})") from None
            shape = _shape_from_geom(where, str(props.get("kind", "")).lower(), geom, props)
            _add(out, where_of, _place(where, props, shape), where)
        except PlaceError as e:
            errors.append(e)
    if errors:
        raise ImportErrors(errors)
    return out, where_of


def parse_file(path: str | Path) -> tuple[list[Place], dict[str, str]]:
    p = Path(path)
    text = p.read_text(encoding="utf-8-sig")
    if p.suffix.lower() in (".geojson", ".json"):
        return parse_geojson(text, p.name)
    if p.suffix.lower() == ".csv":
        return parse_csv(text, p.name)
    raise ImportErrors([PlaceError(p.name, None, "unknown format: use .csv, .geojson or .json")])


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


def import_files(conn: sqlite3.Connection, paths: Iterable[str | Path]) -> int:
    """Several files as one import (a corridors file may name places of a places file)."""
    allp: list[Place] = []
    where_of: dict[str, str] = {}
    errors: list[PlaceError] = []
    for path in paths:
        try:
            ps, w = parse_file(path)
        except ImportErrors as e:
            errors += e.errors
            continue
        for p in ps:
            if p.code in where_of:
                errors.append(PlaceError(w[p.code], "code", f"{p.code!r} is defined twice (first at {where_of[p.code]})"))
        allp += ps
        where_of.update(w)
    if errors:
        raise ImportErrors(errors)
    return store(conn, allp, where_of)


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
